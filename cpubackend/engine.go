package cpubackend

import (
	"fmt"
	"gochat/backend"
	"gochat/internal/measure"
	"gochat/layers"
	"gochat/optimizers"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Engine is the CPU's backend.Backend: Gorgonia's standard engine with matrix products done
// by a BLAS (for Gorgonia's own matrix ops, through tensor.MatMuler, and for gochat's kernels,
// which call Sgemm and Dgemm on raw slices), tensors in Go's memory, and the Go kernels of
// layers and optimizers.
type Engine struct {
	G.StandardEngine
	BLAS
	layers.HostOps[float32]
	optimizers.HostSteps
}

// New returns an engine over b, or over the process default when b is nil.
func New(b BLAS) *Engine {
	if b == nil {
		b = Default()
	}
	return &Engine{BLAS: b, HostOps: layers.NewHostOps[float32](b), HostSteps: optimizers.NewHostSteps(b)}
}

// Name implements backend.Backend: the engine and its BLAS.
func (e *Engine) Name() string { return "cpu(" + e.BLAS.Name() + ")" }

// String is Name.
func (e *Engine) String() string { return e.Name() }

// Make implements backend.Memory with Go's memory.
func (e *Engine) Make(dt tensor.Dtype, n int) any {
	switch dt {
	case tensor.Int:
		return make([]int, n)
	case tensor.Int8:
		return make([]int8, n)
	}
	return make([]float32, n)
}

// MemoryLimit implements backend.Budget: the machine's memory.
func (e *Engine) MemoryLimit() uint64 { return measure.TotalMemory() }

// Workspace implements backend.Budget: the attention kernels' scratch and Newton-Schulz's
// workspaces.
func (e *Engine) Workspace(w backend.Workload) uint64 {
	return e.AttentionWorkspace(w.Attention) + e.NewtonSchulzWorkspace(w.Matrices)
}

// Sync implements backend.Memory: the CPU's work is done when its call returns.
func (e *Engine) Sync() error { return nil }

// MatMul implements tensor.MatMuler: prealloc = a·b for matrices, where a and b may be
// transposed views (Gorgonia passes transposes un-materialised and batched products as one
// call per slice). prealloc must be contiguous and row-major.
func (e *Engine) MatMul(a, b, prealloc tensor.Tensor) error {
	am, err := decode(a)
	if err != nil {
		return fmt.Errorf("matmul left operand: %w", err)
	}
	bm, err := decode(b)
	if err != nil {
		return fmt.Errorf("matmul right operand: %w", err)
	}
	cm, err := decode(prealloc)
	if err != nil || cm.trans {
		return fmt.Errorf("matmul result must be a contiguous row-major matrix")
	}
	if am.cols != bm.rows || cm.rows != am.rows || cm.cols != bm.cols {
		return fmt.Errorf("matmul shapes %v·%v into %v do not fit", a.Shape(), b.Shape(), prealloc.Shape())
	}
	m, n, k := am.rows, bm.cols, am.cols
	switch c := cm.data.(type) {
	case []float32:
		e.Sgemm(am.trans, bm.trans, m, n, k, 1, am.data.([]float32), am.ld, bm.data.([]float32), bm.ld, 0, c, cm.ld)
	case []float64:
		e.Dgemm(am.trans, bm.trans, m, n, k, 1, am.data.([]float64), am.ld, bm.data.([]float64), bm.ld, 0, c, cm.ld)
	default:
		return e.StandardEngine.MatMul(a, b, prealloc)
	}
	return nil
}

// matrix is a 2-D operand as BLAS sees it: logical rows×cols, stored transposed or not, with
// row stride ld in its backing slice.
type matrix struct {
	rows, cols int
	trans      bool
	ld         int
	data       any
}

// decode reads a 2-D dense tensor or view. A stride of 1 on the last axis means plain
// row-major storage with row stride strides[0]; a stride of 1 on the first axis means a
// transposed view of a row-major matrix whose row stride is strides[1].
func decode(t tensor.Tensor) (matrix, error) {
	d, ok := t.(tensor.DenseTensor)
	if !ok || t.Dims() != 2 {
		return matrix{}, fmt.Errorf("want a 2-D dense tensor, got %T of shape %v", t, t.Shape())
	}
	shape, strides := t.Shape(), t.Strides()
	mat := matrix{rows: shape[0], cols: shape[1], data: d.Data()}
	switch {
	case strides[1] == 1 || shape[1] == 1:
		mat.ld = max(strides[0], shape[1])
	case strides[0] == 1 || shape[0] == 1:
		mat.trans, mat.ld = true, max(strides[1], shape[0])
	default:
		return matrix{}, fmt.Errorf("strides %v are not those of a matrix or its transpose", strides)
	}
	return mat, nil
}

// init registers the CPU engine over the process's BLAS (GOCHAT_BLAS) as "cpu", the host of
// every other engine.
func init() {
	backend.Register("cpu", func(backend.Backend) (backend.Backend, error) { return New(Default()), nil })
}

// The CPU engine is a whole backend.
var _ backend.Backend = (*Engine)(nil)
