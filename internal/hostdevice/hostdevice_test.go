package hostdevice

import (
	"runtime/debug"
	"slices"
	"testing"

	"gochat/cpubackend"

	"gorgonia.org/tensor"
)

var sink float32 // what the faulting reads read, so that the compiler keeps them

// faults reports whether f faulted on memory the host may not touch.
func faults(f func()) (faulted bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { faulted = recover() != nil }()
	f()
	return false
}

// TestHostReadsFault: the device's memory faults when the host touches it, after Make and
// after a Sync, and not through the copies or in a kernel; a copy of the wrong type or
// length is an error.
func TestHostReadsFault(t *testing.T) {
	d := New(cpubackend.Gonum{})
	x := d.Make(tensor.Float32, 1000).([]float32)
	if !faults(func() { x[3] = 1 }) {
		t.Fatal("the host wrote memory Make made")
	}
	if err := d.CopyFromHost(x, slices.Repeat([]float32{2}, 1000)); err != nil {
		t.Fatal(err)
	}
	d.Scale(x, 3)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if !faults(func() { sink = x[999] }) {
		t.Fatal("the host read the device's memory after a Sync")
	}
	got := make([]float32, 1000)
	if err := d.CopyToHost(got, x); err != nil || got[0] != 6 || got[999] != 6 {
		t.Fatalf("copied back %v…%v, %v; want 6", got[0], got[999], err)
	}
	if !faults(func() { sink += x[0] }) {
		t.Fatal("the host read the device's memory after a copy")
	}
	if err := d.CopyToHost(make([]float32, 999), x); err == nil {
		t.Error("a copy into a shorter slice was accepted")
	}
	if err := d.CopyToHost(make([]int, 1000), x); err == nil {
		t.Error("a copy into ints was accepted")
	}
	if err := d.CopyToHost(got, got); err == nil {
		t.Error("a copy from the host's memory was accepted as the device's")
	}
}
