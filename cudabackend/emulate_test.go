//go:build linux

package cudabackend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"gochat/backend"
	"gochat/cpubackend"
	"gochat/internal/sgemm"
	"gochat/layers"
)

// launch is one kernel launch for emulate: a grid of one-dimensional blocks of threads,
// their dynamic shared memory, and the kernel's arguments in order: []float32, []int (as
// long long), []int8 and []uint16 buffers, offsets into them, and int (long long) and
// float32 values.

type launch struct {
	kernel string
	grid   [2]int
	block  int
	shared int // bytes of dynamic shared memory a block
	args   []any
}

// emulation is a batch of launches, run in one emulated program, and the checks of what
// they computed.
type emulation struct {
	launches []launch
	checks   []func()
}

// run emulates the batch's launches of source's kernels, then runs its checks.
func (b *emulation) run(t *testing.T, source string, options []string) {
	t.Helper()
	emulate(t, source, options, b.launches...)
	for _, check := range b.checks {
		check()
	}
}

// offset is a kernel argument that points by elements into buffer (a slice emulate takes).
type offset struct {
	buffer any
	by     int
}

// emulatorCompiler finds clang++ and checks, once, that its C++ library has the C++20 parts
// testdata/emulate.h uses (std::barrier, std::atomic_ref): an older library is a machine
// that cannot emulate, not a kernel that is wrong.
var emulatorCompiler = sync.OnceValues(func() (string, error) {
	clang, err := exec.LookPath("clang++")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "gochat-emulator")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	probe := "#include <atomic>\n#include <barrier>\nint main() { float f = 0; std::atomic_ref<float>(f).fetch_add(1); std::barrier<> b(1); b.arrive_and_wait(); }\n"
	if err := os.WriteFile(filepath.Join(dir, "probe.cpp"), []byte(probe), 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command(clang, "-std=c++20", "-pthread", "-o", "probe", "probe.cpp")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s lacks C++20's std::barrier or std::atomic_ref: %v\n%s", clang, err, out)
	}
	return clang, nil
})

// emulate runs launches of the kernels of source (kernels.cu or attention.cu, compiled
// with options) on the CPU, through testdata/emulate.h, and leaves what they wrote in the
// buffers passed. A buffer passed to several launches is one buffer throughout. It needs
// clang++ with a C++20 library (emulatorCompiler) and skips without one, unless
// GOCHAT_REQUIRE_CLANG is set.
func emulate(t *testing.T, source string, options []string, launches ...launch) {
	t.Helper()
	clang, err := emulatorCompiler()
	if err != nil {
		if os.Getenv("GOCHAT_REQUIRE_CLANG") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	code, err := os.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}
	// A block's dynamic shared memory is the emulator's buffer.
	code = []byte(strings.ReplaceAll(string(code), "extern __shared__ float smem[];", "float* smem = (float*)emu::dynamicShared;"))
	if err := os.WriteFile(filepath.Join(dir, "kernels.cu"), code, 0o644); err != nil {
		t.Fatal(err)
	}

	var buffers [][]byte // the Go slices' memory
	index := map[unsafe.Pointer]int{}
	var main strings.Builder
	main.WriteString("#include \"emulate.h\"\n#include \"kernels.cu\"\nint main() {\n")
	var arg func(a any) string
	arg = func(a any) string {
		var ctype string
		var bytes []byte
		switch v := a.(type) {
		case []float32:
			ctype, bytes = "float", unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
		case []int:
			ctype, bytes = "long long", unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 8*len(v))
		case []int8:
			ctype, bytes = "signed char", unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v))
		case []uint16:
			ctype, bytes = "unsigned short", unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v))
		case offset:
			return "(" + arg(v.buffer) + " + " + strconv.Itoa(v.by) + ")"
		case int:
			return strconv.Itoa(v) + "LL"
		case float32:
			return strconv.FormatFloat(float64(v), 'x', -1, 32) + "f"
		default:
			t.Fatalf("emulate: an argument of type %T", a)
		}
		p := unsafe.Pointer(&bytes[0])
		i, ok := index[p]
		if !ok {
			i = len(buffers)
			index[p] = i
			buffers = append(buffers, bytes)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("b%d", i)), bytes, 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&main, "\t%s* b%d = (%s*)emu::load(\"b%d\", %d);\n", ctype, i, ctype, i, len(bytes))
		}
		return fmt.Sprintf("b%d", i)
	}
	var calls strings.Builder
	for _, l := range launches {
		args := make([]string, len(l.args))
		for i, a := range l.args {
			args[i] = arg(a)
		}
		fmt.Fprintf(&calls, "\temu::launch({%d, %d, 1}, {%d, 1, 1}, %d, [&] { %s(%s); });\n", l.grid[0], l.grid[1], l.block, l.shared, l.kernel, strings.Join(args, ", "))
	}
	main.WriteString(calls.String())
	for i, b := range buffers {
		fmt.Fprintf(&main, "\temu::save(\"b%d\", b%d, %d);\n", i, i, len(b))
	}
	main.WriteString("}\n")
	if err := os.WriteFile(filepath.Join(dir, "main.cpp"), []byte(main.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	include, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-std=c++20", "-O2", "-pthread", "-DCUDA_EMULATION", "-Wno-unknown-pragmas", "-I", include,
		"-o", "emulated", "main.cpp"}, options...)
	build := exec.Command(clang, args...)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("emulating %s: the build failed:\n%s", source, out)
	}
	run := exec.Command("./emulated")
	run.Dir = dir
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("emulating %s: %v\n%s", source, err, out)
	}
	for i, b := range buffers {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("b%d", i)))
		if err != nil || len(got) != len(b) {
			t.Fatalf("emulating %s: buffer %d came back with %d bytes of %d (%v)", source, i, len(got), len(b), err)
		}
		copy(b, got)
	}
}

// TestEmulatedAttention runs attention.cu's training kernels, forward and backward, in each
// precision's build on the CPU (emulate) against the Go kernels, on shapes of one partial
// tile and of several (grouped heads, a head dim that is not a multiple of 8, two key
// blocks in the backward pass), nanochat's head dim and one past it (the other bound's
// build): on a machine with no GPU this checks the kernels' logic,
// their fragments' layouts included. The emulation multiplies in float32 but for the bf16
// build's bfloat16 roundings, so the float32 and TF32 builds are held to kernelTol and the
// bf16 build to bf16KernelTol.
func TestEmulatedAttention(t *testing.T) {
	shapes := []backend.AttnShape{
		{Batch: 1, Heads: 2, KVHeads: 1, HeadDim: 16, Tq: 37, Tk: 37},
		{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 12, Tq: 150, Tk: 150},
		{Batch: 2, Heads: 2, KVHeads: 2, HeadDim: 128, Tq: 20, Tk: 20},
		{Batch: 1, Heads: 1, KVHeads: 1, HeadDim: 136, Tq: 9, Tk: 9},
	}
	r := rand.New(rand.NewPCG(9, 10))
	eachBuild(func(prec Precision, bound int, tol float64) {
		var batch emulation
		for _, s := range shapes {
			if attnBound(s.HeadDim) != bound {
				continue
			}
			w, n := (s.Heads+2*s.KVHeads)*s.HeadDim, s.Batch*s.Tq
			qkv, dy := values(r, n*w, 1), values(r, n*s.Heads*s.HeadDim, 1)
			y, lse, d := make([]float32, len(dy)), make([]float32, s.Batch*s.Heads*s.Tq), make([]float32, len(qkv))
			wantY, wantLSE, wantD := goAttention(s, qkv, dy)
			delta := make([]float32, len(lse)) // δ = Σ dY·Y in the (b, h, t) order, as attnDelta writes it
			for b := range s.Batch {
				for h := range s.Heads {
					for tq := range s.Tq {
						var sum float32
						for i := range s.HeadDim {
							at := ((b*s.Tq+tq)*s.Heads+h)*s.HeadDim + i
							sum += dy[at] * wantY[at]
						}
						delta[(b*s.Heads+h)*s.Tq+tq] = sum
					}
				}
			}
			batch.launches = append(batch.launches,
				launch{"attnForward", attnForwardGrid(s), 32 * attnFwdWarps,
					attnShared("attnForward", s.HeadDim, prec), []any{qkv, y, lse, s.Tq, s.Heads, s.KVHeads, s.HeadDim, attnScale(s)}},
				launch{"attnBackward", attnBackwardGrid(s), 32 * attnBwdWarps(s.HeadDim),
					attnShared("attnBackward", s.HeadDim, prec), []any{qkv, dy, wantLSE, delta, d, s.Tq, s.Heads, s.KVHeads, s.HeadDim, attnScale(s)}})
			what := fmt.Sprintf("emulated %v %+v: ", prec, s)
			batch.checks = append(batch.checks, func() {
				near(t, what+"attention", y, wantY, tol)
				near(t, what+"log-sum-exps", lse, wantLSE, tol)
				near(t, what+"attention gradient", d, wantD, tol)
			})
		}
		batch.run(t, "attention.cu", attentionOptions(bound, prec))
	})
}

// TestEmulatedCachedAttention runs attention.cu's attention over a KV cache in each
// precision's build on the CPU against the Go kernel, on cachedShapes. The cache holds the
// new keys already (the Go kernel's StoreKV).
func TestEmulatedCachedAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	host := layers.NewHostOps[float32](cpubackend.Gonum{})
	eachBuild(func(prec Precision, bound int, tol float64) {
		var batch emulation
		for _, sh := range cachedShapes {
			s := sh.s
			if attnBound(s.HeadDim) != bound {
				continue
			}
			w, n, lane := (s.Heads+2*s.KVHeads)*s.HeadDim, s.Batch*s.Tq, s.Batch*s.KVHeads*sh.capacity*s.HeadDim
			qkv, k, v := values(r, n*w, 1), values(r, lane, 1), values(r, lane, 1)
			host.StoreKV(s, sh.capacity, qkv, k, v)
			y, lse := make([]float32, n*s.Heads*s.HeadDim), make([]float32, s.Batch*s.Heads*s.Tq)
			wantY, wantLSE := make([]float32, len(y)), make([]float32, len(lse))
			host.AttentionCached(s, sh.capacity, qkv, k, v, wantY, wantLSE)
			batch.launches = append(batch.launches, launch{"attnForwardCached", attnForwardGrid(s), 32 * attnFwdWarps, attnShared("attnForwardCached", s.HeadDim, prec),
				[]any{qkv, k, v, y, lse, s.Tq, s.Tk, s.Heads, s.KVHeads, s.HeadDim, sh.capacity, attnScale(s)}})
			what := fmt.Sprintf("emulated %v %+v, capacity %d: ", prec, s, sh.capacity)
			batch.checks = append(batch.checks, func() {
				near(t, what+"attention", y, wantY, tol)
				near(t, what+"log-sum-exps", lse, wantLSE, tol)
			})
		}
		batch.run(t, "attention.cu", attentionOptions(bound, prec))
	})
}

// TestEmulatedKernels runs kernels.cu's row and warp kernels on the CPU (emulate) against
// the Go kernels: the norms, a warp per chunk of a row (whole rows, QK norms of heads with
// the rest copied, heads that fill the row, sizes a warp does not divide); cross-entropy, a
// block per row of logits (wider and narrower than a block, softcapped and not, an ignored
// row, a row whose logits rise all the way); the int8 products and dequantization; the
// rounding to bfloat16, bit for bit; and attention's δ.
func TestEmulatedKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var batch emulation
	for _, c := range []struct{ width, size, heads int }{{768, 768, 1}, {40, 8, 3}, {2304, 128, 12}, {45, 15, 3}, {256, 128, 2}} {
		rows := 37
		x, dy := values(r, rows*c.width, 2), values(r, rows*c.width, 1)
		y, rstd, dx := make([]float32, len(x)), make([]float32, rows*c.heads), make([]float32, len(x))
		wantY, wantRstd, wantDX := make([]float32, len(x)), make([]float32, rows*c.heads), make([]float32, len(x))
		layers.RMSNormForward(wantY, wantRstd, x, c.width, c.size, c.heads)
		layers.RMSNormBackward(wantDX, wantY, wantRstd, dy, c.width, c.size, c.heads)
		grid := [2]int{normBlocks(rows, c.width, c.size, c.heads), 1}
		batch.launches = append(batch.launches,
			launch{"rmsNormForward", grid, rowThreads, 0, []any{y, rstd, x, rows, c.width, c.size, c.heads, float32(layers.NormEps)}},
			launch{"rmsNormBackward", grid, rowThreads, 0, []any{dx, y, rstd, dy, rows, c.width, c.size, c.heads}})
		what := fmt.Sprintf("emulated rmsnorm %+v: ", c)
		batch.checks = append(batch.checks, func() {
			near(t, what+"output", y, wantY, kernelTol)
			near(t, what+"rstd", rstd, wantRstd, kernelTol)
			near(t, what+"gradient", dx, wantDX, kernelTol)
		})
	}
	// Rotary: heads of 8 and of 12 (a half that is no power of two) with rows past the
	// rotated heads, nanochat's d12 q|k|v; forward, and inverse in place.
	for _, c := range []struct{ width, heads, dim, seqLen, pos0 int }{{40, 3, 8, 5, 2}, {36, 2, 12, 4, 0}, {2304, 12, 128, 37, 3}} {
		table, err := backend.NewRotaryTable(c.pos0+c.seqLen, c.dim, 10000)
		if err != nil {
			t.Fatal(err)
		}
		cos, sin := table.Float32()
		rot := backend.Rotation{Table: table, SeqLen: c.seqLen, Pos0: c.pos0, Heads: c.heads}
		rows := 2 * c.seqLen
		x := values(r, rows*c.width, 1)
		y, inPlace := make([]float32, len(x)), slices.Clone(x)
		wantY, wantInv := make([]float32, len(x)), make([]float32, len(x))
		layers.RotaryForward(wantY, x, c.width, rot, false)
		layers.RotaryForward(wantInv, x, c.width, rot, true)
		for _, l := range []struct {
			y, x []float32
			sign float32
		}{{y, x, 1}, {inPlace, inPlace, -1}} {
			batch.launches = append(batch.launches, launch{"rotary", [2]int{rows, 1}, rowThreads, 0,
				[]any{l.y, l.x, c.width, c.seqLen, c.pos0, c.heads, c.dim / 2, cos, sin, l.sign}})
		}
		what := fmt.Sprintf("emulated rotary %+v: ", c)
		batch.checks = append(batch.checks, func() {
			near(t, what+"forward", y, wantY, kernelTol)
			near(t, what+"inverse, in place", inPlace, wantInv, kernelTol)
		})
	}
	for _, vocab := range []int{5000, 300} {
		for _, cap := range []float32{15, 0} {
			const rows = 9
			targets := make([]int, rows)
			for i := range targets {
				targets[i] = r.IntN(vocab)
			}
			targets[3] = layers.IgnoreIndex
			logits := values(r, rows*vocab, 20)
			for j := range vocab {
				logits[5*vocab+j] = 40 * float32(j) / float32(vocab)
			}
			scale := values(r, rows, 1)
			want, wantGrad := make([]float32, rows), make([]float32, rows*vocab)
			if err := layers.CrossEntropyForward(want, logits, targets, vocab, cap, wantGrad, scale); err != nil {
				t.Fatal(err)
			}
			losses, grad := make([]float32, rows), make([]float32, rows*vocab)
			batch.launches = append(batch.launches, launch{"crossEntropy", [2]int{rows, 1}, 1024, 0, []any{losses, logits, targets, vocab, cap, grad, scale}})
			what := fmt.Sprintf("emulated cross-entropy, vocab %d, cap %v: ", vocab, cap)
			batch.checks = append(batch.checks, func() {
				near(t, what+"losses", losses, want, kernelTol)
				near(t, what+"logit gradients", grad, wantGrad, kernelTol)
			})
		}
	}
	// int8 products: fewer rows of x than layers.Q8Rows (the kernel's), rows of 4-byte
	// multiples and not, more rows of weights than a block's warps; and a block dequantized.
	for _, c := range []struct{ n, rows, cols int }{{1, 37, 768}, {5, 77, 33}, {layers.Q8Rows - 1, 9, 64}} {
		w := values(r, c.rows*c.cols, 1)
		q8, err := sgemm.QuantizeQ8(w, c.rows, c.cols)
		if err != nil {
			t.Fatal(err)
		}
		x := values(r, c.n*c.cols, 1)
		y, want := make([]float32, c.n*c.rows), make([]float32, c.n*c.rows)
		layers.NewHostOps[float32](cpubackend.Gonum{}).MulQ8T(c.n, x, q8.Q, q8.Scale, want)
		j0, block := 2, min(5, c.rows-2)
		dq, wantDQ := make([]float32, block*c.cols), make([]float32, block*c.cols)
		for i := range wantDQ {
			wantDQ[i] = q8.Scale[j0+i/c.cols] * float32(q8.Q[j0*c.cols+i])
		}
		batch.launches = append(batch.launches,
			launch{"mulQ8T", [2]int{warpBlocks(c.rows), 1}, rowThreads, 0, []any{x, q8.Q, q8.Scale, y, c.n, c.rows, c.cols}},
			launch{"dequantizeQ8", [2]int{elementwiseBlocks(block * c.cols), 1}, 256, 0, []any{dq, q8.Q, q8.Scale, j0, block, c.cols}})
		what := fmt.Sprintf("emulated int8 %+v: ", c)
		batch.checks = append(batch.checks, func() {
			near(t, what+"product", y, want, kernelTol)
			near(t, what+"dequantized rows", dq, wantDQ, 0)
		})
	}
	// Rounding to bfloat16, from sources aligned for four floats a thread and not, with tails.
	for _, n := range []int{1, 7, 4097} {
		x := values(r, n+3, 1e3) // then an infinity, a NaN and ties to even, down and up
		x[0], x[1], x[2], x[3] = float32(math.Inf(1)), float32(math.NaN()), math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000)
		for off := range 4 {
			half := make([]uint16, n)
			batch.launches = append(batch.launches, launch{"toBF16", [2]int{elementwiseBlocks((n + 3) / 4), 1}, 256, 0, []any{half, offset{x, off}, n}})
			batch.checks = append(batch.checks, func() {
				for i, h := range half {
					if want := ToBF16(x[off+i]); h != want {
						t.Fatalf("emulated toBF16, n %d, offset %d: float %d rounds to %#04x, want %#04x", n, off, i, h, want)
					}
				}
			})
		}
	}
	// Attention's δ = Σ dY·Y, a warp per (row, head), in the log-sum-exps' order.
	{
		const B, T, H, D = 2, 5, 3, 40
		rows := B * T * H
		dy, y := values(r, rows*D, 1), values(r, rows*D, 1)
		delta, want := make([]float32, rows), make([]float32, rows)
		for row := range rows {
			var sum float32
			for d := range D {
				sum += dy[row*D+d] * y[row*D+d]
			}
			h, bt := row%H, row/H
			want[(bt/T*H+h)*T+bt%T] = sum
		}
		batch.launches = append(batch.launches, launch{"attnDelta", [2]int{warpBlocks(rows), 1}, rowThreads, 0, []any{delta, dy, y, rows, T, H, D}})
		batch.checks = append(batch.checks, func() { near(t, "emulated attnDelta", delta, want, kernelTol) })
	}
	batch.run(t, "kernels.cu", kernelOptions())
}

// eachBuild calls f for each build of attention.cu the engines make: each precision at
// each head-dim bound, with the tolerance the emulation holds it to (float32's but for
// bfloat16's roundings: the emulation multiplies in float32).
func eachBuild(f func(prec Precision, bound int, tol float64)) {
	for _, prec := range []Precision{FP32, TF32, BF16} {
		tol := kernelTol
		if prec == BF16 {
			tol = bf16KernelTol
		}
		for _, bound := range []int{attnBound(1), attnBound(256)} {
			f(prec, bound, tol)
		}
	}
}

// values returns n random values in [-scale, scale).
func values(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = scale * (2*r.Float32() - 1)
	}
	return x
}
