//go:build linux

package cudabackend

import (
	"math"
	"os"
	"strings"
	"testing"

	"gochat/cpubackend"
)

// TestLoad: without a GPU and its libraries (this machine, CI), asking for the engine is a
// clear error; with them, a product at the threshold matches the CPU's.
func TestLoad(t *testing.T) {
	b, err := Load(cpubackend.New(nil), FP32)
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

func TestToBF16(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3f80},
		{math.Float32frombits(0x3f808000), 0x3f80}, // a tie goes to the even neighbour
		{math.Float32frombits(0x3f818000), 0x3f82},
		{math.Float32frombits(0x3f808001), 0x3f81}, // above the tie, up
		{-2.5, 0xc020},
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80}, // rounds to infinity, as in the IEEE conversion
	} {
		if got := ToBF16(c.f); got != c.want {
			t.Errorf("ToBF16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if nan := ToBF16(float32(math.NaN())); nan&0x7f80 != 0x7f80 || nan&0x7f == 0 {
		t.Errorf("NaN became %#04x", nan)
	}
}

// TestRankDevice: a process of its own, or one GPU visible, takes the first; mpirun's ranks
// on a machine with several take one each by their local rank, and more ranks than GPUs
// are refused.
func TestRankDevice(t *testing.T) {
	for _, c := range []struct {
		local   string // OMPI_COMM_WORLD_LOCAL_RANK; "" for no mpirun
		count   int
		want    int
		refused bool
	}{
		{"", 8, 0, false},
		{"3", 1, 0, false},
		{"0", 8, 0, false},
		{"5", 8, 5, false},
		{"2", 2, 0, true},
	} {
		t.Setenv("OMPI_COMM_WORLD_LOCAL_RANK", c.local)
		got, err := rankDevice(c.count)
		if (err != nil) != c.refused || (err == nil && got != c.want) {
			t.Errorf("local rank %q of %d GPUs: device %d, %v; want %d (refused %v)", c.local, c.count, got, err, c.want, c.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "at most one rank per GPU") {
			t.Errorf("unclear refusal: %v", err)
		}
	}
}
