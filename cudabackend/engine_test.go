//go:build linux

package cudabackend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"gochat/backend"
	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/sgemm"
	"gochat/layers"
	"gochat/optimizers"

	"gorgonia.org/tensor"
)

// engine returns the strict float32 CUDA engine, or skips the test where there is no GPU
// (unless GOCHAT_REQUIRE_CUDA says there must be one).
func engine(t *testing.T) *Engine {
	t.Helper()
	return engineOf(t, FP32)
}

// engineOf is engine with products in precision prec.
func engineOf(t *testing.T, prec Precision) *Engine {
	t.Helper()
	b, err := Load(cpubackend.New(nil), prec)
	if err == nil {
		var e backend.Backend
		if e, err = b.Engine(); err == nil {
			return e.(*Engine)
		}
	}
	if os.Getenv("GOCHAT_REQUIRE_CUDA") != "" {
		t.Fatal(err)
	}
	t.Skipf("no GPU here: %v", err)
	return nil
}

// kernelTol is the largest difference allowed between a device kernel and the Go kernel,
// relative to max(1, |Go's value|): both compute in float32, in other orders.
const kernelTol = 2e-5

// tf32KernelTol is kernelTol for kernels whose products run on tensor cores in TF32, which
// rounds their inputs to 10 mantissa bits (a relative 2⁻¹¹ each).
const tf32KernelTol = 5e-3

// bf16KernelTol is tf32KernelTol for products of bfloat16 inputs (7 mantissa bits: a
// relative 2⁻⁸ each), scaled by the ratio of the two roundings, 8.
const bf16KernelTol = 8 * tf32KernelTol

// random fills n floats of the engine's memory with values in [-scale, scale).
func random(e *Engine, r *rand.Rand, n int, scale float32) []float32 {
	return put(e, values(r, n, scale))
}

// put copies x, the host's memory, into new memory of the engine's; a failure of the copy
// is the next Sync's.
func put[T float32 | int | int8](e *Engine, x []T) []T {
	dt := tensor.Float32
	switch any(x).(type) {
	case []int:
		dt = tensor.Int
	case []int8:
		dt = tensor.Int8
	}
	y := e.Make(dt, len(x)).([]T)
	_ = e.CopyFromHost(y, x)
	return y
}

// read is a copy in Go's memory of x, the engine's, once the queued work is done: the host
// reads a GPU's memory only by copying it.
func read[T float32 | int](t *testing.T, e *Engine, x []T) []T {
	t.Helper()
	h := make([]T, len(x))
	if err := e.CopyToHost(h, x); err != nil {
		t.Fatal(err)
	}
	return h
}

// same reads what the device computed and compares it with what Go did, within kernelTol.
func same(t *testing.T, e *Engine, what string, got, want []float32) {
	t.Helper()
	within(t, e, what, got, want, kernelTol)
}

// within reads got, the engine's memory, and compares as near does.
func within(t *testing.T, e *Engine, what string, got, want []float32, tol float64) {
	t.Helper()
	h := make([]float32, len(got))
	if err := e.CopyToHost(h, got); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	near(t, what, h, want, tol)
}

// near fails unless every value of got is within tol of want's, relative to max(1, |want|).
func near(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range want {
		d := math.Abs(float64(got[i]-want[i])) / max(1, math.Abs(float64(want[i])))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("%s: element %d is %v, %v in Go (relative error %.2g > %g)", what, at, got[at], want[at], worst, tol)
	}
	t.Logf("%s: worst relative error %.2g", what, worst)
}

func TestElementwiseKernels(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(1, 2))
	const n = 100_003
	hx, hdy := values(r, n, 3), values(r, n, 1)
	x, dy := put(e, hx), put(e, hdy)
	y, want := e.Make(tensor.Float32, n).([]float32), make([]float32, n)

	e.ReLU2Forward(y, x)
	layers.ReLU2Forward(want, hx)
	same(t, e, "relu2", y, want)
	dx, wantDx := e.Make(tensor.Float32, n).([]float32), make([]float32, n)
	e.ReLU2Backward(dx, y, dy)
	layers.ReLU2Backward(wantDx, want, hdy)
	same(t, e, "relu2 gradient", dx, wantDx)

	e.SoftcapForward(y, x, 1.5)
	layers.SoftcapForward(want, hx, 1.5)
	same(t, e, "softcap", y, want)
	e.SoftcapBackward(dx, y, dy, 1.5)
	layers.SoftcapBackward(wantDx, want, hdy, 1.5)
	same(t, e, "softcap gradient", dx, wantDx)

	e.AddForward(y, x, dy)
	layers.AddForward(want, hx, hdy)
	same(t, e, "add", y, want)
	e.Scale(y, -0.5)
	for i := range want {
		want[i] *= -0.5
	}
	same(t, e, "scale", y, want)
	e.Axpy(y, x, 2)
	for i := range want {
		want[i] += 2 * hx[i]
	}
	same(t, e, "axpy", y, want)
	e.Copy(y, x)
	same(t, e, "copy", y, hx)
	e.Zero(y)
	same(t, e, "zero", y, make([]float32, n))

	ss, err := e.SumSquares([][]float32{x, dy})
	var wantSS float64
	for i := range hx {
		wantSS += float64(hx[i])*float64(hx[i]) + float64(hdy[i])*float64(hdy[i])
	}
	if err != nil || math.Abs(ss-wantSS) > 1e-9*wantSS {
		t.Fatalf("sum of squares %v (%v), want %v", ss, err, wantSS)
	}
}

func TestRowKernels(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(3, 4))
	// RMSNorm of whole rows; QK norm of 3 heads of 8 in rows of 40 and of d12's 12 heads of
	// 128 in its qkv rows (the rest, v, copied); heads that fill the row, of sizes a warp
	// does not divide. 37 rows leave the last block's warps part idle.
	for _, c := range []struct{ width, size, heads int }{{768, 768, 1}, {40, 8, 3}, {2304, 128, 12}, {45, 15, 3}, {256, 128, 2}} {
		rows := 37
		hx, hdy := values(r, rows*c.width, 2), values(r, rows*c.width, 1)
		x, dy := put(e, hx), put(e, hdy)
		y, want := e.Make(tensor.Float32, len(x)).([]float32), make([]float32, len(x))
		rstd, wantRstd := e.Make(tensor.Float32, rows*c.heads).([]float32), make([]float32, rows*c.heads)
		e.RMSNormForward(y, rstd, x, c.width, c.size, c.heads)
		layers.RMSNormForward(want, wantRstd, hx, c.width, c.size, c.heads)
		same(t, e, "rmsnorm", y, want)
		same(t, e, "rmsnorm's rstd", rstd, wantRstd)
		wantDx := make([]float32, len(x))
		layers.RMSNormBackward(wantDx, read(t, e, y), read(t, e, rstd), hdy, c.width, c.size, c.heads)
		e.RMSNormBackward(dy, y, rstd, dy, c.width, c.size, c.heads) // in place, as Gorgonia runs it
		same(t, e, "rmsnorm gradient", dy, wantDx)
	}
	// Rotary of 3 heads of 8 in rows of 40, sequences of 5 from position 2, both ways.
	table, err := backend.NewRotaryTable(16, 8, 10000)
	if err != nil {
		t.Fatal(err)
	}
	rot := backend.Rotation{Table: table, SeqLen: 5, Pos0: 2, Heads: 3}
	hx := values(r, 10*40, 1)
	x := put(e, hx)
	for _, inverse := range []bool{false, true} {
		y, want := e.Make(tensor.Float32, len(x)).([]float32), make([]float32, len(x))
		e.RotaryForward(y, x, 40, rot, inverse)
		layers.RotaryForward(want, hx, 40, rot, inverse)
		same(t, e, "rotary", y, want)
	}
	// Embedding, with repeated ids.
	hids := make([]int, 50)
	for i := range hids {
		hids[i] = r.IntN(7)
	}
	htab, hdy := values(r, 7*12, 1), values(r, 50*12, 1)
	ids, tab, dy := put(e, hids), put(e, htab), put(e, hdy)
	y, want := e.Make(tensor.Float32, 50*12).([]float32), make([]float32, 50*12)
	e.EmbeddingForward(y, tab, ids, 12)
	if err := layers.EmbeddingForward(want, htab, hids, 12); err != nil {
		t.Fatal(err)
	}
	same(t, e, "embedding", y, want)
	dt, wantDt := random(e, r, 7*12, 1), make([]float32, 7*12)
	e.EmbeddingBackward(dt, dy, ids, 12)
	layers.EmbeddingBackward(wantDt, hdy, hids, 12)
	same(t, e, "embedding gradient", dt, wantDt)
}

// TestCrossEntropyKernel: losses and gradients against the Go kernel, with and without the
// softcap, for a vocabulary wider than a block and one narrower (threads with no logit),
// with an ignored row and one whose logits rise all the way (every one a new maximum).
func TestCrossEntropyKernel(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(5, 6))
	for _, vocab := range []int{5000, 300} {
		const rows = 9
		htargets := make([]int, rows)
		for i := range htargets {
			htargets[i] = r.IntN(vocab)
		}
		htargets[3] = layers.IgnoreIndex
		targets := put(e, htargets)
		for _, cap := range []float32{15, 0} {
			hlogits := values(r, rows*vocab, 20)
			for j := range vocab {
				hlogits[5*vocab+j] = 40 * float32(j) / float32(vocab)
			}
			hscale := values(r, rows, 1)
			logits, scale := put(e, hlogits), put(e, hscale)
			losses, want := e.Make(tensor.Float32, rows).([]float32), make([]float32, rows)
			wantGrad := make([]float32, rows*vocab)
			if err := layers.CrossEntropyForward(want, hlogits, htargets, vocab, cap, wantGrad, hscale); err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("vocab %d, cap %v: ", vocab, cap)
			e.CrossEntropyForward(losses, logits, targets, vocab, cap, nil, nil)
			same(t, e, what+"losses", losses, want)
			e.CrossEntropyForward(losses, logits, targets, vocab, cap, logits, scale) // the gradient over the logits
			same(t, e, what+"losses with gradients", losses, want)
			same(t, e, what+"logit gradients", logits, wantGrad)
		}
	}
}

// TestAttentionKernels checks the fused attention against the Go kernel on shapes that
// cover one position, odd lengths, partial blocks and tiles, head dims that are not a
// multiple of 8, grouped and multi-query heads, and both head-dim bounds: in strict float32
// within kernelTol, on tensor cores (TF32 inputs) within tf32KernelTol, and in the bf16
// engine's bfloat16 (its backward pass past head dim 128 in TF32) within bf16KernelTol.
func TestAttentionKernels(t *testing.T) {
	shapes := []backend.AttnShape{
		{Batch: 3, Heads: 4, KVHeads: 2, HeadDim: 16, Tq: 37, Tk: 37},
		{Batch: 2, Heads: 3, KVHeads: 3, HeadDim: 8, Tq: 130, Tk: 130},
		{Batch: 1, Heads: 2, KVHeads: 1, HeadDim: 4, Tq: 1, Tk: 1},
		{Batch: 1, Heads: 2, KVHeads: 2, HeadDim: 128, Tq: 1, Tk: 1},
		{Batch: 2, Heads: 6, KVHeads: 6, HeadDim: 128, Tq: 200, Tk: 200},
		{Batch: 1, Heads: 4, KVHeads: 1, HeadDim: 12, Tq: 67, Tk: 67},
		{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 64, Tq: 129, Tk: 129},
		{Batch: 1, Heads: 2, KVHeads: 2, HeadDim: 136, Tq: 45, Tk: 45},
	}
	for _, c := range []struct {
		prec Precision
		tol  float64
	}{{FP32, kernelTol}, {TF32, tf32KernelTol}, {BF16, bf16KernelTol}} {
		e := engineOf(t, c.prec)
		r := rand.New(rand.NewPCG(7, 8))
		for _, s := range shapes {
			w, n := (s.Heads+2*s.KVHeads)*s.HeadDim, s.Batch*s.Tq
			qkv, dy := random(e, r, n*w, 1), random(e, r, n*s.Heads*s.HeadDim, 1)
			y, lse := e.Make(tensor.Float32, len(dy)).([]float32), e.Make(tensor.Float32, s.Batch*s.Heads*s.Tq).([]float32)
			d := e.Make(tensor.Float32, len(qkv)).([]float32)
			e.AttentionForward(s, qkv, y, lse)
			e.AttentionBackward(s, qkv, y, dy, d, lse)

			wantY, wantLSE, wantD := goAttention(s, read(t, e, qkv), read(t, e, dy))
			what := fmt.Sprintf("%v %+v: ", c.prec, s)
			within(t, e, what+"attention", y, wantY, c.tol)
			within(t, e, what+"log-sum-exps", lse, wantLSE, c.tol)
			within(t, e, what+"attention gradient", d, wantD, c.tol)
		}
	}
}

// TestAttnSharedFits checks that every attention kernel's shared memory, at every head dim
// the kernels take, fits the 227 KiB a block may have on compute capability 9.0 (the H100
// and H200).
func TestAttnSharedFits(t *testing.T) {
	const limit = 227 << 10
	for d := 1; attnBound(d) != 0; d++ {
		for _, prec := range []Precision{FP32, TF32, BF16} {
			for _, k := range []string{"attnForward", "attnForwardCached", "attnBackward"} {
				if n := attnShared(k, d, prec); n > limit {
					t.Errorf("%s at head dim %d (%v) lays out %d bytes of shared memory, past %d", k, d, prec, n, limit)
				}
			}
		}
	}
}

// goAttention is the Go kernels' attention of s over qkv: its output, log-sum-exps and,
// for the output gradient dy, the gradient of qkv.
func goAttention(s backend.AttnShape, qkv, dy []float32) (y, lse, dqkv []float32) {
	y, lse, dqkv = make([]float32, len(dy)), make([]float32, s.Batch*s.Heads*s.Tq), make([]float32, len(qkv))
	scratch := make([]float32, layers.AttnScratch(s))
	cpu := cpubackend.Gonum{}
	q, k, v, out := layers.AttnViews(s, qkv, y)
	layers.AttentionForward(cpu, s, q, k, v, out, lse, scratch)
	dq, dk, dv, dyv := layers.AttnViews(s, dqkv, dy)
	layers.AttentionBackward(cpu, s, q, k, v, out, dyv, dq, dk, dv, lse, scratch)
	return y, lse, dqkv
}

// cachedShapes are the cases of attention over a KV cache: a decoded token, a chunk after a
// prefix, a prefill that fills the cache from position 0, grouped and multi-query heads,
// both head-dim bounds.
var cachedShapes = []struct {
	s        backend.AttnShape
	capacity int
}{
	{backend.AttnShape{Batch: 2, Heads: 4, KVHeads: 2, HeadDim: 64, Tq: 1, Tk: 37}, 50},
	{backend.AttnShape{Batch: 1, Heads: 6, KVHeads: 6, HeadDim: 128, Tq: 5, Tk: 200}, 1024},
	{backend.AttnShape{Batch: 3, Heads: 4, KVHeads: 1, HeadDim: 16, Tq: 9, Tk: 9}, 9},
	{backend.AttnShape{Batch: 1, Heads: 2, KVHeads: 2, HeadDim: 136, Tq: 1, Tk: 130}, 131},
}

// TestCachedAttentionKernels: new positions stored into a KV cache (StoreKV, exactly) and
// their queries attending to the cache (AttentionCached) against the Go kernels, on
// cachedShapes; tolerances as TestAttentionKernels'.
func TestCachedAttentionKernels(t *testing.T) {
	for _, c := range []struct {
		prec Precision
		tol  float64
	}{{FP32, kernelTol}, {TF32, tf32KernelTol}, {BF16, bf16KernelTol}} {
		e := engineOf(t, c.prec)
		r := rand.New(rand.NewPCG(15, 16))
		host := layers.NewHostOps[float32](cpubackend.Gonum{})
		for _, sh := range cachedShapes {
			s := sh.s
			w, n, lane := (s.Heads+2*s.KVHeads)*s.HeadDim, s.Batch*s.Tq, s.Batch*s.KVHeads*sh.capacity*s.HeadDim
			qkv, k, v := random(e, r, n*w, 1), random(e, r, lane, 1), random(e, r, lane, 1) // the prefix: earlier keys
			hqkv, wantK, wantV := read(t, e, qkv), read(t, e, k), read(t, e, v)
			y, lse := e.Make(tensor.Float32, n*s.Heads*s.HeadDim).([]float32), e.Make(tensor.Float32, s.Batch*s.Heads*s.Tq).([]float32)
			e.StoreKV(s, sh.capacity, qkv, k, v)
			e.AttentionCached(s, sh.capacity, qkv, k, v, y, lse)

			wantY, wantLSE := make([]float32, len(y)), make([]float32, len(lse))
			host.StoreKV(s, sh.capacity, hqkv, wantK, wantV)
			host.AttentionCached(s, sh.capacity, hqkv, wantK, wantV, wantY, wantLSE)
			what := fmt.Sprintf("%v %+v, capacity %d: ", c.prec, s, sh.capacity)
			if !slices.Equal(read(t, e, k), wantK) || !slices.Equal(read(t, e, v), wantV) {
				t.Fatalf("%sthe stored keys or values differ from the Go kernel's", what)
			}
			within(t, e, what+"attention", y, wantY, c.tol)
			within(t, e, what+"log-sum-exps", lse, wantLSE, c.tol)
		}
	}
}

func TestProducts(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct {
		ta, tb  bool
		m, n, k int
	}{{false, true, 33, 70, 19}, {true, false, 40, 9, 64}, {false, false, 1, 300, 7}} {
		ha, hb, want := values(r, c.m*c.k, 1), values(r, c.k*c.n, 1), values(r, c.m*c.n, 1)
		a, b, cm := put(e, ha), put(e, hb), put(e, want)
		lda, ldb := c.k, c.n
		if c.ta {
			lda = c.m
		}
		if c.tb {
			ldb = c.k
		}
		e.Sgemm(c.ta, c.tb, c.m, c.n, c.k, 1.5, a, lda, b, ldb, 0.5, cm, c.n)
		cpubackend.Gonum{}.Sgemm(c.ta, c.tb, c.m, c.n, c.k, 1.5, ha, lda, hb, ldb, 0.5, want, c.n)
		same(t, e, "product", cm, want)
	}
	// Host memory goes through the BLAS and needs no Sync.
	a, b := []float32{1, 2, 3, 4}, []float32{5, 6, 7, 8}
	c := make([]float32, 4)
	e.Sgemm(false, false, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2)
	if c[0] != 19 || c[3] != 50 {
		t.Fatalf("host product %v", c)
	}
}

// TestInt8Products: the engine's int8 product equals the CPU's (layers.HostOps) within
// float32's kernelTol, read directly by the kernel (fewer than layers.Q8Rows rows of x;
// rows of 4-byte multiples and not) and dequantized a block of rows at a time for cuBLAS
// (more; past one block of q8Block rows, into y's columns).
func TestInt8Products(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(11, 12))
	host := cpubackend.New(cpubackend.Gonum{})
	for _, c := range []struct{ n, rows, cols int }{{1, 300, 768}, {5, 77, 33}, {layers.Q8Rows - 1, 1000, 64},
		{layers.Q8Rows, q8Block + 5, 20}, {40, 97, 36}} {
		what := fmt.Sprintf("%d×%d·(%d×%d)ᵀ in int8: ", c.n, c.cols, c.rows, c.cols)
		w := make([]float32, c.rows*c.cols)
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		q8, err := sgemm.QuantizeQ8(w, c.rows, c.cols)
		if err != nil {
			t.Fatal(err)
		}
		hx := values(r, c.n*c.cols, 1)
		q, x, scale := put(e, q8.Q), put(e, hx), put(e, q8.Scale)
		y := e.Make(tensor.Float32, c.n*c.rows).([]float32)
		want := make([]float32, len(y))
		e.MulQ8T(c.n, x, q, scale, y)
		host.MulQ8T(c.n, hx, q8.Q, q8.Scale, want)
		same(t, e, what, y, want)
	}
}

// TestMixedProducts: a product of host memory against the engine's (generation's
// activations against placed weights: Cached.Place) reads the engine's operands where they
// lie, after the queued work that writes them, and copies the others, C back to the host
// included; each against the CPU's, in every precision. A precision that rounds each
// operand to the nearest of its significant bits, 11 for TF32 and 8 for bfloat16, a
// relative error up to u (2⁻¹¹, 2⁻⁸), errs by about u·√(2/3) of each term
// a·b, at random: element (i, j) of a sum of k terms by σ = u·√(2/3)·√(Σ (a·b)²), which at
// k = 768 is about 7e-3 for TF32 whatever the element's size. Each element must land within
// 6σ of the CPU's, plus float32's kernelTol (on the H200: at most 3.5σ in TF32, 3.2σ in
// bfloat16). The shapes are generation's at d12, every one worth the GPU (MinIntensity).
func TestMixedProducts(t *testing.T) {
	for _, p := range []struct {
		prec Precision
		u    float64
	}{{FP32, 0}, {TF32, 0x1p-11}, {BF16, 0x1p-8}} {
		e := engineOf(t, p.prec)
		r := rand.New(rand.NewPCG(11, 12))
		values := func(n int) []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = 2*r.Float32() - 1
			}
			return x
		}
		const n, k = 768, 768
		for _, c := range []struct {
			name             string
			m                int
			devA, devB, devC bool
			beta             float32
		}{
			{"a decoded token against placed weights", 1, false, true, false, 0},
			{"a prompt against placed weights, added to C", 64, false, true, false, 0.5},
			{"placed activations against host weights", 256, true, false, false, 0},
			{"host activations into the engine's result", 32, false, true, true, 0.5},
		} {
			a, b, cm := values(c.m*k), values(n*k), values(c.m*n)
			want := append([]float32(nil), cm...)
			cpubackend.Gonum{}.Sgemm(false, true, c.m, n, k, 2, a, k, b, k, c.beta, want, n) // 2·x·wᵀ: see the Scale below
			sigma := make([]float64, c.m*n)
			for i := range c.m {
				for j := range n {
					var squares float64
					for l := range k {
						term := 2 * float64(a[i*k+l]) * float64(b[j*k+l])
						squares += term * term
					}
					sigma[i*n+j] = p.u * math.Sqrt(2.0/3*squares)
				}
			}
			place := func(dev bool, x []float32) []float32 {
				if !dev {
					return x
				}
				return put(e, x)
			}
			a, b, cm = place(c.devA, a), place(c.devB, b), place(c.devC, cm)
			if c.devB { // every case has A or B in the engine's memory: scale that one there,
				e.Scale(b, 2) // queued, which the product must wait for
			} else {
				e.Scale(a, 2)
			}
			e.Sgemm(false, true, c.m, n, k, 1, a, k, b, k, c.beta, cm, n)
			what := fmt.Sprintf("%v: %s", p.prec, c.name)
			if err := e.Sync(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if c.devC {
				cm = read(t, e, cm)
			}
			worst, at := 0.0, 0 // the largest error in σ
			for i, w := range want {
				d := math.Abs(float64(cm[i] - w))
				if d > 6*sigma[i]+kernelTol*max(1, math.Abs(float64(w))) || math.IsNaN(d) {
					t.Fatalf("%s: element %d is %v on the GPU, %v in Go: %.3g off, over 6σ = %.3g", what, i, cm[i], w, d, 6*sigma[i])
				}
				if sigma[i] > 0 && d/sigma[i] > worst {
					worst, at = d/sigma[i], i
				}
			}
			t.Logf("%s: largest error %.2gσ (element %d, σ %.2g)", what, worst, at, sigma[at])
		}
	}
}

// TestNewtonSchulzOnTheDevice: one matrix, and three of a shape at once (in place, as Muon
// runs them), wide and tall, against the CPU's iteration.
func TestNewtonSchulzOnTheDevice(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(11, 12))
	cpu := cpubackend.New(cpubackend.Gonum{})
	for _, shape := range [][2]int{{48, 80}, {80, 48}} {
		g := random(e, r, shape[0]*shape[1], 1)
		got, want := e.Make(tensor.Float32, len(g)).([]float32), make([]float32, len(g))
		optimizers.NewtonSchulz(e, got, g, shape[0], shape[1], optimizers.NSSteps)
		optimizers.NewtonSchulz(cpu, want, read(t, e, g), shape[0], shape[1], optimizers.NSSteps)
		within(t, e, "newton-schulz", got, want, 1e-4) // five steps amplify rounding: golden's tolerance
		var gs, wants [][]float32
		for range 3 {
			g := random(e, r, shape[0]*shape[1], 1)
			want := make([]float32, len(g))
			optimizers.NewtonSchulz(cpu, want, read(t, e, g), shape[0], shape[1], optimizers.NSSteps)
			gs, wants = append(gs, g), append(wants, want)
		}
		e.NewtonSchulz(gs, gs, shape[0], shape[1], optimizers.NSSteps, 3.4445, -4.7750, 2.0315) // optimizers' coefficients
		for i := range gs {
			within(t, e, "newton-schulz batch", gs[i], wants[i], 1e-4)
		}
	}
}

func TestOptimizerKernels(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(13, 14))
	const n = 5000
	wantBuf, hg := values(r, n, 1), values(r, n, 1)
	buf, g, upd := put(e, wantBuf), put(e, hg), e.Make(tensor.Float32, n).([]float32)
	e.MuonMomentum(buf, g, upd, 0.9)
	wantUpd := make([]float32, n)
	for i := range wantBuf {
		wantBuf[i] += 0.1 * (hg[i] - wantBuf[i])
		wantUpd[i] = hg[i] + 0.9*(wantBuf[i]-hg[i])
	}
	same(t, e, "momentum", buf, wantBuf)
	same(t, e, "nesterov update", upd, wantUpd)

	wantP, wantM, wantV := values(r, n, 1), values(r, n, 0.1), values(r, n, 0.1)
	for i := range wantV {
		wantV[i] *= wantV[i]
	}
	p, m, v := put(e, wantP), put(e, wantM), put(e, wantV)
	e.AdamW(p, g, m, v, 0.99, 0.2, 0.95, 0.01, 1.3, 1e-10)
	for i := range wantP {
		wantM[i] += 0.2 * (hg[i] - wantM[i])
		wantV[i] = 0.95*wantV[i] + 0.05*hg[i]*hg[i]
		wantP[i] = wantP[i]*0.99 - 0.01*wantM[i]/(float32(math.Sqrt(float64(wantV[i])))*1.3+1e-10)
	}
	same(t, e, "adamw moment", m, wantM)
	same(t, e, "adamw second moment", v, wantV)
	same(t, e, "adamw weights", p, wantP)
}

// TestForeignMemory: a kernel handed memory the engine did not make fails at the next Sync
// with a clear error, and touches nothing.
func TestForeignMemory(t *testing.T) {
	b, err := Load(cpubackend.New(cpubackend.Gonum{}), FP32) // a fresh engine: the error sticks to it
	if err != nil {
		if os.Getenv("GOCHAT_REQUIRE_CUDA") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	eng, err := b.Engine()
	if err != nil {
		t.Fatal(err)
	}
	e := eng.(*Engine)
	y := e.Make(tensor.Float32, 4).([]float32)
	e.ReLU2Forward(y, []float32{1, 2, 3, 4})
	if err := e.Sync(); err == nil || !strings.Contains(err.Error(), "not in the engine's memory") {
		t.Fatalf("got %v", err)
	}
}

// TestGraphStaysOnTheDevice trains a small model's graph on the engine: every addition,
// the residual stream's and the gradient sums Gorgonia inserts, runs as a kernel (none on
// the CPU, which would drag the pages back and forth), and the loss and gradients are the
// CPU engine's.
func TestGraphStaysOnTheDevice(t *testing.T) {
	e := engine(t)
	cfg := graph.Config{SequenceLen: 64, VocabSize: 300, NLayer: 3, NHead: 4, NKVHead: 2, NEmbd: 64}
	run := func(engine backend.Backend) (*graph.Model, float64) {
		m, err := graph.Build(cfg, graph.Options{Batch: 2, SeqLen: 32, Mode: graph.Train, Reduction: layers.Mean, Engine: engine})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(graph.InitWeights(cfg, 3)); err != nil {
			t.Fatal(err)
		}
		ids := make([]int, 64)
		for i := range ids {
			ids[i] = (i * 37) % cfg.VocabSize
		}
		for range 2 {
			if err := m.Run(ids, ids); err != nil {
				t.Fatal(err)
			}
		}
		return m, m.Loss()
	}
	e.StartProfile()
	m, loss := run(e)
	times, err := e.StopProfile()
	if err != nil {
		t.Fatal(err)
	}
	// Two runs of 2 residual additions and 2 gradient sums per layer.
	if got, want := times["add"].Calls, 2*4*cfg.NLayer; got != want {
		t.Errorf("%d additions ran on the device, want %d", got, want)
	}
	cpu, wantLoss := run(cpubackend.New(cpubackend.Gonum{}))
	if math.Abs(loss-wantLoss) > 1e-5*wantLoss {
		t.Errorf("loss %v on the GPU, %v on the CPU", loss, wantLoss)
	}
	grads, _ := m.Grads()
	wantGrads, _ := cpu.Grads()
	for name, g := range wantGrads {
		within(t, e, name+" gradient", grads[name], g, 1e-4)
	}
}

// TestAddOverride: Gorgonia's addition on device tensors, into a new tensor, into a
// reused one and in place, gives the standard engine's sums.
func TestAddOverride(t *testing.T) {
	e := engine(t)
	r := rand.New(rand.NewPCG(15, 16))
	dense := func() *tensor.Dense {
		return tensor.New(tensor.WithShape(30, 7), tensor.WithBacking(random(e, r, 210, 1)), tensor.WithEngine(e))
	}
	a, b, reuse := dense(), dense(), dense()
	want, ha, hb := make([]float32, 210), read(t, e, a.Float32s()), read(t, e, b.Float32s())
	for i := range want {
		want[i] = ha[i] + hb[i]
	}
	for _, c := range []struct {
		name string
		opts []tensor.FuncOpt
	}{{"new", nil}, {"reuse", []tensor.FuncOpt{tensor.WithReuse(reuse)}}, {"unsafe", []tensor.FuncOpt{tensor.UseUnsafe()}}} {
		got, err := tensor.Add(a, b, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		same(t, e, "addition "+c.name, got.Data().([]float32), want)
	}
}

// TestMemoryRefused: asking for more managed memory than the GPU had free is refused before
// CUDA is asked (Make panics with backend.OutOfMemory, which the commands report), and the
// engine goes on working.
func TestMemoryRefused(t *testing.T) {
	e := engine(t)
	asked := func(n int) (err error) {
		defer func() {
			if oom, ok := recover().(backend.OutOfMemory); ok {
				err = oom
			}
		}()
		e.Make(tensor.Float32, n)
		return nil
	}
	err := asked(int(e.usable/f32) + 1)
	if err == nil || !strings.Contains(err.Error(), "device memory asked for") {
		t.Fatalf("more than the GPU's free memory: %v", err)
	}
	t.Log(err)
	x := random(e, rand.New(rand.NewPCG(1, 1)), 1000, 1)
	want := read(t, e, x)
	layers.ReLU2Forward(want, want)
	e.ReLU2Forward(x, x)
	same(t, e, "after a refusal", x, want)
}
