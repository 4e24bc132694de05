package backend

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
)

// Opener opens an engine over host, the CPU engine, which it may use for what it leaves to
// the processors (products of Go memory, float64). The CPU's own opener gets a nil host.
type Opener func(host Backend) (Backend, error)

// ErrAbsent is what an opener's error is (errors.Is) when the machine has no such device
// (no library, no GPU): auto then falls back to the CPU without a word. Absent makes one.
var ErrAbsent = errors.New("not on this machine")

// Absent marks err, unchanged in its message, as saying that the device is not there.
func Absent(err error) error { return absent{err} }

type absent struct{ error }

func (a absent) Unwrap() error      { return a.error }
func (absent) Is(target error) bool { return target == ErrAbsent }

var (
	mu      sync.Mutex
	openers = map[string]Opener{}
)

// Register makes an engine openable by name ("cpu", "cuda", ...). Engine packages call it
// from init; a program links the engines it offers by importing their packages.
func Register(name string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[name] = open
}

// Names lists the engines that can be opened: the registered ones and "auto".
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	names := []string{"auto"}
	for n := range openers {
		names = append(names, n)
	}
	sort.Strings(names[1:])
	return names
}

// autoOrder is what auto tries before the CPU: an NVIDIA GPU in strict float32 (Metal is not
// chosen until it has run on a Mac).
var autoOrder = []string{"cuda"}

// OpenOn opens the engine named over host: "cpu" is host itself; "auto" is the first
// engine of autoOrder that opens, else host, with a one-line notice on stderr when a device
// is there but its engine cannot start.
func OpenOn(name string, host Backend) (Backend, error) {
	if name == "cpu" {
		return host, nil
	}
	if name == "auto" {
		for _, n := range autoOrder {
			open, ok := opener(n)
			if !ok {
				continue
			}
			b, err := open(host)
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, ErrAbsent) {
				fmt.Fprintf(os.Stderr, "gochat: %s: %v; computing on the CPU\n", n, err)
			}
		}
		return host, nil
	}
	open, ok := opener(name)
	if !ok {
		return nil, fmt.Errorf("no engine %q in this program: want one of %s", name, strings.Join(Names(), ", "))
	}
	return open(host)
}

// opener is the registered opener of name.
func opener(name string) (Opener, bool) {
	mu.Lock()
	defer mu.Unlock()
	open, ok := openers[name]
	return open, ok
}

// Open opens the engine named over the CPU engine made by the opener registered as "cpu".
func Open(name string) (Backend, error) {
	cpu, ok := opener("cpu")
	if !ok {
		return nil, errors.New("backend: no CPU engine linked in (import gochat/cpubackend)")
	}
	host, err := cpu(nil)
	if err != nil {
		return nil, err
	}
	return OpenOn(name, host)
}

var (
	defaultOnce    sync.Once
	defaultBackend Backend
	defaultErr     error
)

// Default is the process's engine, opened once: the one GOCHAT_ENGINE names, else the CPU.
// Graphs built without an engine run on it.
func Default() (Backend, error) {
	defaultOnce.Do(func() {
		name := os.Getenv("GOCHAT_ENGINE")
		if name == "" {
			name = "cpu"
		}
		if defaultBackend, defaultErr = Open(name); defaultErr != nil {
			defaultErr = fmt.Errorf("GOCHAT_ENGINE=%s: %w", name, defaultErr)
		}
	})
	return defaultBackend, defaultErr
}

// Stored gives the stored shape of a product's operand whose logical shape is r×c: the
// transpose's when the operand is stored transposed.
func Stored(trans bool, r, c int) (int, int) {
	if trans {
		return c, r
	}
	return r, c
}

// Span is the number of elements a row-major r×c matrix with row stride ld covers.
func Span(r, c, ld int) int { return (r-1)*ld + c }

// Spans are the elements a product's A, B and C cover, stored as the flags and strides say.
func Spans(transA, transB bool, m, n, k, lda, ldb, ldc int) (a, b, c int) {
	ra, ca := Stored(transA, m, k)
	rb, cb := Stored(transB, k, n)
	return Span(ra, ca, lda), Span(rb, cb, ldb), Span(m, n, ldc)
}
