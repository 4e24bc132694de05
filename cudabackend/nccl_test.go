//go:build linux

package cudabackend

import (
	"os"
	"slices"
	"testing"
	"time"

	"gochat/dist"

	"gorgonia.org/tensor"
)

// group joins a group of one rank on the engine's GPU, or skips the test where there is
// no GPU or no NCCL (unless GOCHAT_REQUIRE_CUDA says there must be both).
func group(t *testing.T, e *Engine) dist.Comm {
	t.Helper()
	id, err := e.NewGroupID()
	var c dist.Comm
	if err == nil {
		c, err = e.JoinGroup(id, 0, 1, time.Minute)
	}
	if err != nil {
		if os.Getenv("GOCHAT_REQUIRE_CUDA") != "" {
			t.Fatal(err)
		}
		t.Skipf("no NCCL here: %v", err)
	}
	return c
}

// TestNCCLOneRank: with one rank each collective leaves the values it was given: a sum,
// reduce-scatter and gather of the engine's tensors on the device, after the work queued
// before them; the host collectives through the device buffer, growing it; a buffer of Go
// memory is refused. (Two ranks need two GPUs: NCCL refuses two ranks on one.)
func TestNCCLOneRank(t *testing.T) {
	e := engine(t)
	c := group(t, e)
	if c.Rank() != 0 || c.Size() != 1 {
		t.Fatalf("rank %d of %d", c.Rank(), c.Size())
	}
	want := make([]float32, 1000)
	for i := range want {
		want[i] = float32(i) - 500
	}
	x := put(e, want)
	for i := range want {
		want[i] *= 3
	}
	e.Scale(x, 3) // queued: the sum must see it done
	if err := c.AllReduce(x); err != nil {
		t.Fatal(err)
	}
	if h := read(t, e, x); !slices.Equal(h, want) {
		t.Fatalf("sum over one rank changed the values: %v…, want %v…", h[:4], want[:4])
	}
	part := e.Make(tensor.Float32, 1000).([]float32)
	if err := c.ReduceScatter(x, part); err != nil || !slices.Equal(read(t, e, part), want) {
		t.Fatalf("reduce-scatter: %v, %v…", err, read(t, e, part)[:4])
	}
	all := e.Make(tensor.Float32, 1000).([]float32)
	if err := c.AllGather(part, all); err != nil || !slices.Equal(read(t, e, all), want) {
		t.Fatalf("all-gather: %v, %v…", err, read(t, e, all)[:4])
	}
	if err := c.ReduceScatter(x, part[:10]); err == nil {
		t.Error("a reduce-scatter into a part of the wrong size was accepted")
	}
	if err := c.AllReduce(make([]float32, 10)); err == nil {
		t.Error("a sum of Go memory was accepted")
	}
	for _, n := range []int{3, 5000} { // the second grows the device buffer
		h := make([]float64, n)
		for i := range h {
			h[i] = float64(i) + 0.25
		}
		w := slices.Clone(h)
		if err := c.SumHost(h); err != nil || !slices.Equal(h, w) {
			t.Fatalf("host sum of %d: %v", n, err)
		}
		if err := c.MaxHost(h); err != nil || !slices.Equal(h, w) {
			t.Fatalf("host maximum of %d: %v", n, err)
		}
	}
	got, err := dist.Exchange(c, []byte("rank zero's bytes"))
	if err != nil || len(got) != 1 || string(got[0]) != "rank zero's bytes" {
		t.Fatalf("exchange: %q %v", got, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.AllReduce(x); err == nil {
		t.Error("a sum after Close was accepted")
	}
}
