package layers

import "testing"

// BenchmarkCrossEntropyForward: one row block of d4's head (1024 tokens, 8,192 logits each)
// with its gradient, per logit.
func BenchmarkCrossEntropyForward(b *testing.B) {
	const n, v = 1024, 8192
	logits, grad, losses := make([]float32, n*v), make([]float32, n*v), make([]float32, n)
	targets, scale := make([]int, n), make([]float32, n)
	for i := range logits {
		logits[i] = float32(i%97)/10 - 4
	}
	for b.Loop() {
		CrossEntropyForward(losses, logits, targets, v, 15, grad, scale)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/(n*v), "ns/logit")
}
