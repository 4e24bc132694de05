package backend_test

import (
	"errors"
	"strings"
	"testing"

	"gochat/backend"
	"gochat/cpubackend"
)

func TestStoredAndSpan(t *testing.T) {
	if r, c := backend.Stored(true, 3, 4); r != 4 || c != 3 {
		t.Errorf("Stored(true, 3, 4) = %d×%d", r, c)
	}
	if got := backend.Span(3, 4, 10); got != 24 {
		t.Errorf("Span(3, 4, 10) = %d, want 24", got)
	}
	if got := backend.Span(1, 4, 10); got != 4 {
		t.Errorf("Span(1, 4, 10) = %d, want 4", got)
	}
}

// TestRegistry: the CPU is "cpu" and what auto falls back to; an engine that is absent is
// left silently by auto, one that fails to start says why when asked for by name, and an
// unknown name lists the engines there are.
func TestRegistry(t *testing.T) {
	host := cpubackend.New(cpubackend.Gonum{})
	if b, err := backend.OpenOn("cpu", host); err != nil || b != host {
		t.Fatalf("cpu: %v, %v", b, err)
	}
	backend.Register("test-absent", func(backend.Backend) (backend.Backend, error) {
		return nil, backend.Absent(errors.New("no test device"))
	})
	backend.Register("test-broken", func(backend.Backend) (backend.Backend, error) {
		return nil, errors.New("the test device would not start")
	})
	if _, err := backend.OpenOn("test-absent", host); !errors.Is(err, backend.ErrAbsent) || err.Error() != "no test device" {
		t.Errorf("absent: %v", err)
	}
	if _, err := backend.OpenOn("test-broken", host); err == nil || errors.Is(err, backend.ErrAbsent) {
		t.Errorf("broken: %v", err)
	}
	if b, err := backend.OpenOn("auto", host); err != nil || b == nil {
		t.Errorf("auto: %v, %v", b, err)
	}
	_, err := backend.OpenOn("tpu", host)
	if err == nil || !strings.Contains(err.Error(), "auto") || !strings.Contains(err.Error(), "cpu") || !strings.Contains(err.Error(), "test-broken") {
		t.Errorf("unknown engine: %v", err)
	}
	if b, err := backend.Open("cpu"); err != nil || b.Name() == "" {
		t.Errorf("Open(cpu): %v, %v", b, err)
	}
}

func TestRoundBF16(t *testing.T) {
	for in, want := range map[float32]float32{
		1: 1, 1.00390625: 1, 1.01171875: 1.015625, 3.14159: 3.140625, -2.5: -2.5, 0: 0,
	} {
		if got := backend.RoundBF16(in); got != want {
			t.Errorf("RoundBF16(%v) = %v, want %v", in, got, want)
		}
	}
	table, _ := backend.NewRotaryTable(4, 8, 10000)
	cos, _ := table.BFloat16().Float32()
	c32, _ := table.Float32()
	for i := range cos {
		if cos[i] != backend.RoundBF16(c32[i]) {
			t.Fatalf("cos[%d] = %v, not %v rounded", i, cos[i], c32[i])
		}
	}
}
