//go:build linux

package cudabackend

import "gochat/backend"

// profile times the engine's queued work with pairs of CUDA events around each call,
// resolved at every Sync; events are reused.
type profile struct {
	pending []timing
	free    []uintptr
	times   map[string]backend.KernelTime
}

type timing struct {
	name       string
	start, end uintptr
}

// StartProfile implements backend.Profiler.
func (e *Engine) StartProfile() {
	e.b.w.wait(func() { e.prof = &profile{times: map[string]backend.KernelTime{}} })
}

// StopProfile implements backend.Profiler.
func (e *Engine) StopProfile() (map[string]backend.KernelTime, error) {
	var p *profile
	e.b.w.wait(func() {
		e.sync()
		p, e.prof = e.prof, nil
	})
	if p == nil {
		return nil, e.err()
	}
	return p.times, e.err()
}

// timed runs call, which queues one call on the device, between two events when
// profiling; on the worker.
func (e *Engine) timed(name string, call func()) {
	if e.prof == nil {
		call()
		return
	}
	start, end := e.event(), e.event()
	e.b.rt.recordEvent(start, 0)
	call()
	e.b.rt.recordEvent(end, 0)
	e.prof.pending = append(e.prof.pending, timing{name, start, end})
}

func (e *Engine) event() uintptr {
	p := e.prof
	if n := len(p.free); n > 0 {
		ev := p.free[n-1]
		p.free = p.free[:n-1]
		return ev
	}
	var ev uintptr
	e.b.rt.createEvent(&ev)
	return ev
}

// resolve adds up the pending timings; the device must be idle.
func (p *profile) resolve(rt *cudart) {
	for _, t := range p.pending {
		var ms float32
		rt.elapsed(&ms, t.start, t.end)
		kt := p.times[t.name]
		kt.Calls++
		kt.Seconds += float64(ms) / 1e3
		p.times[t.name] = kt
		p.free = append(p.free, t.start, t.end)
	}
	p.pending = p.pending[:0]
}
