package eval

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkCore scores the golden bundle (300 items) with the golden d2 model one item a
// forward pass, as nanochat does, and batched under token budgets; items/s is the rate.
func BenchmarkCore(b *testing.B) {
	dir := goldenCoreCases(b)[0]
	m, tok := loadGoldenModel(b, dir)
	bundle := openBundle(b, filepath.Join(dir, "bundle"))
	for _, budget := range []int{1, 1024, 4096, 16384} {
		name := fmt.Sprintf("batch-tokens=%d", budget)
		if budget == 1 {
			name = "one-at-a-time"
		}
		b.Run(name, func(b *testing.B) {
			items := 0
			for b.Loop() {
				res, err := RunCore(context.Background(), m, tok, bundle, CoreOptions{BatchTokens: budget})
				if err != nil {
					b.Fatal(err)
				}
				for _, t := range res.Tasks {
					items += len(t.Items)
				}
			}
			b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
