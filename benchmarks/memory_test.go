package benchmarks

import (
	"strings"
	"testing"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/train"
)

// TestPlanMemory plans d1 at 1 to 8 rows: the steps grow with the rows, recomputation
// never takes more (and less at 8 rows), the summed gradients go once one micro-batch holds the step,
// and Largest takes the last batch under a limit's usable share.
func TestPlanMemory(t *testing.T) {
	curves, err := PlanMemory([]int{1}, 64, 512, 8*64, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(curves) != 2 || curves[0].Recompute != graph.RecomputeNone || curves[1].Recompute != graph.RecomputeBlocks {
		t.Fatalf("curves %+v", curves)
	}
	for _, c := range curves {
		if len(c.Rows) != 4 || c.Rows[3] != 8 {
			t.Fatalf("rows %v", c.Rows)
		}
		for i := 1; i < len(c.Rows); i++ {
			if c.Planned[i].Activations <= c.Planned[i-1].Activations {
				t.Errorf("%v: activations fall from %d to %d rows", c.Recompute, c.Rows[i-1], c.Rows[i])
			}
		}
		if c.Planned[2].Accumulation == 0 || c.Planned[3].Accumulation != 0 {
			t.Errorf("%v: summed gradients %d at 4 rows, %d at 8", c.Recompute, c.Planned[2].Accumulation, c.Planned[3].Accumulation)
		}
		limit := uint64(float64(c.Planned[1].Total())/train.Usable) + 1
		if rows, fp := c.Largest(limit); rows != 2 || fp != c.Planned[1] {
			t.Errorf("%v: %d rows under the limit of 2", c.Recompute, rows)
		}
		if rows, _ := c.Largest(limit - 2); rows != 1 {
			t.Errorf("%v: %d rows under a limit just below 2", c.Recompute, rows)
		}
	}
	for i := range curves[0].Rows {
		if curves[1].Planned[i].Activations > curves[0].Planned[i].Activations {
			t.Errorf("recomputation takes more memory at %d rows", curves[0].Rows[i])
		}
	}
	if curves[1].Planned[3].Activations >= curves[0].Planned[3].Activations {
		t.Errorf("recomputation saves nothing at 8 rows")
	}
	var b strings.Builder
	WriteMemoryTable(&b, curves, []float64{1}, "cpu")
	if !strings.Contains(b.String(), "| d1 | none |") || !strings.Contains(b.String(), "| 8 (") {
		t.Errorf("table:\n%s", b.String())
	}
	if png, err := MemoryPlot(curves); err != nil || len(png) == 0 {
		t.Errorf("plot: %v", err)
	}
}
