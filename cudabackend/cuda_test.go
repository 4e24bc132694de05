//go:build linux

package cudabackend

import (
	"os"
	"strings"
	"testing"

	"gochat/cpubackend"
)

// TestLoad: without a GPU and its libraries (this machine, CI), asking for the engine is a
// clear error; with them, a product at the threshold matches the CPU's.
func TestLoad(t *testing.T) {
	b, err := cpubackend.Select("cuda")
	if err != nil {
		if !strings.Contains(err.Error(), "libcudart") && !strings.Contains(err.Error(), "CUDA device") {
			t.Fatalf("unclear error: %v", err)
		}
		if os.Getenv("GOCHAT_REQUIRE_CUDA") != "" {
			t.Fatal(err)
		}
		t.Skipf("no GPU here: %v", err)
	}
	m, n, k := 64, 96, 1<<14 // 2·m·n·k = 2^27.6: on the GPU
	a, x, got, want := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n), make([]float32, m*n)
	for i := range a {
		a[i] = float32(i%7) - 3
	}
	for i := range x {
		x[i] = float32(i%5) - 2
	}
	b.Sgemm(false, false, m, n, k, 1, a, k, x, n, 0, got, n)
	cpubackend.Gonum{}.Sgemm(false, false, m, n, k, 1, a, k, x, n, 0, want, n)
	for i := range want {
		if got[i] != want[i] { // small integers: exact in float32
			t.Fatalf("element %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSpan(t *testing.T) {
	if got := span(3, 4, 10); got != 24 {
		t.Errorf("span(3, 4, 10) = %d, want 24", got)
	}
	if got := span(1, 4, 10); got != 4 {
		t.Errorf("span(1, 4, 10) = %d, want 4", got)
	}
}
