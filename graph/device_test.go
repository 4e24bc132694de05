package graph_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"gochat/backend"
	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/hostdevice"
	"gochat/layers"

	"gorgonia.org/tensor"
)

// TestDeviceGraphs runs the other graphs on a device: weighted per-token training losses,
// evaluation and inference; every kernel must get the device's memory (Run reports it
// otherwise), the host must touch that memory only through backend.Remote's copies (the
// device's memory faults otherwise), and the results must be the CPU's.
func TestDeviceGraphs(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	ids, targets := make([]int, 32), make([]int, 32)
	for i := range ids {
		ids[i], targets[i] = (i*7+3)%cfg.VocabSize, (i*11+5)%cfg.VocabSize
	}
	targets[3] = layers.IgnoreIndex
	for _, o := range []graph.Options{
		{Mode: graph.Train, Reduction: layers.PerToken},
		{Mode: graph.Train, Reduction: layers.Sum},
		{Mode: graph.Eval},
		{Mode: graph.Infer},
	} {
		run := func(e backend.Backend) ([]float32, float64, graph.Weights) {
			o.Batch, o.SeqLen, o.Engine = 2, 16, e
			m, err := graph.Build(cfg, o)
			if err != nil {
				t.Fatal(err)
			}
			w := graph.InitWeights(cfg, 5)
			for i := range w["lm_head.weight"] { // nanochat's zero lm_head would hide the rest
				w["lm_head.weight"][i] = 0.01 * float32(i%7-3)
			}
			if err := m.Load(w); err != nil {
				t.Fatal(err)
			}
			if o.Reduction == layers.PerToken {
				weights := make([]float32, len(ids))
				for i := range weights {
					weights[i] = float32(i%5) - 1.5
				}
				if err := m.SetLossWeights(weights); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Run(ids, targets); err != nil {
				t.Fatalf("mode %d, reduction %v: %v", o.Mode, o.Reduction, err)
			}
			var grads graph.Weights
			if o.Mode == graph.Train {
				g, err := m.Grads()
				if err != nil {
					t.Fatal(err)
				}
				if grads, err = g.OnHost(e); err != nil {
					t.Fatal(err)
				}
			}
			return m.Output(), m.Loss(), grads
		}
		out, loss, grads := run(hostdevice.New(cpubackend.Gonum{}))
		wantOut, wantLoss, wantGrads := run(cpubackend.New(cpubackend.Gonum{}))
		if math.Abs(loss-wantLoss) > 1e-5*math.Abs(wantLoss) || len(out) != len(wantOut) {
			t.Fatalf("mode %d, reduction %v: loss %v on the device, %v on the CPU", o.Mode, o.Reduction, loss, wantLoss)
		}
		for i := range wantOut {
			if math.Abs(float64(out[i]-wantOut[i])) > 1e-5 {
				t.Fatalf("mode %d: output %d is %v on the device, %v on the CPU", o.Mode, i, out[i], wantOut[i])
			}
		}
		for name, g := range wantGrads {
			for i := range g {
				if math.Abs(float64(grads[name][i]-g[i])) > 1e-6 {
					t.Fatalf("reduction %v: %s gradient %d is %v on the device, %v on the CPU", o.Reduction, name, i, grads[name][i], g[i])
				}
			}
		}
	}
}

// placing is a device engine (a backend.DeviceMemory) whose memory is host memory: what
// Cached.Place puts a generation model's weights in.
type placing struct {
	*hostdevice.Device
	made *int // the buffers Make has made
}

func (placing) DeviceBytes() uint64 { return 0 }

func (p placing) Make(dt tensor.Dtype, n int) any {
	*p.made++
	return p.Device.Make(dt, n)
}

// TestCachedPlace: a generation model placed on a device engine computes what it did, from
// copies of its matrices in the engine's memory (the weights it was made from no longer
// matter, but for the embedding, which stays); placed again it makes no more copies, and
// another device engine is refused; on the CPU engine placing changes nothing.
func TestCachedPlace(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	ids := []int{5, 17, 3, 88, 42, 1, 9}
	logits := func(m *graph.Cached) []float32 {
		t.Helper()
		out, err := m.ForwardAll(m.NewKVCache(1, len(ids)), ids, len(ids))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	made := 0
	for _, e := range []backend.Backend{placing{hostdevice.New(cpubackend.Gonum{}), &made}, cpubackend.New(cpubackend.Gonum{})} {
		w := graph.InitWeights(cfg, 3)
		for i := range w["lm_head.weight"] {
			w["lm_head.weight"][i] = float32(i%13)/13 - 0.5 // nanochat's zero lm_head would hide the rest
		}
		m, err := graph.NewCached(cfg, w, e)
		if err != nil {
			t.Fatal(err)
		}
		want := logits(m)
		if err := m.Place(e); err != nil {
			t.Fatal(err)
		}
		if got := logits(m); !slices.Equal(got, want) {
			t.Fatalf("%s: placing changed the logits", e.Name())
		}
		_, device := e.(backend.DeviceMemory)
		if device {
			once := made
			if err := m.Place(e); err != nil || made != once {
				t.Errorf("placed again: %v, %d buffers made, then %d", err, once, made)
			}
			if err := m.Place(placing{hostdevice.New(cpubackend.Gonum{}), &made}); err == nil || !strings.Contains(err.Error(), "memory") {
				t.Errorf("placed on a second device engine: %v", err)
			}
		}
		for name, x := range w {
			if name != "transformer.wte.weight" {
				clear(x)
			}
		}
		if placed := slices.Equal(logits(m), want); placed != device {
			t.Errorf("%s: the matrices were placed: %v, want %v", e.Name(), placed, device)
		}
	}
}

// TestScoreOnTheDevice: Score on a model placed on a device engine runs the whole pass
// there (every kernel gets the device's memory, Sync reports it otherwise; the weights it
// was made from no longer matter, the embedding's included) and gives the logits of the
// host's pass; on the host, Score gives what Forward gives each row from an empty cache.
// So does an int8 model (its products the device's int8 kernel), and an id outside the
// vocabulary is refused.
func TestScoreOnTheDevice(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	const B, T = 3, 9
	ids := make([]int, B*T)
	for i := range ids {
		ids[i] = (i*13 + 5) % cfg.VocabSize
	}
	weights := func() graph.Weights {
		w := graph.InitWeights(cfg, 3)
		for i := range w["lm_head.weight"] {
			w["lm_head.weight"][i] = float32(i%13)/13 - 0.5 // nanochat's zero lm_head would hide the rest
		}
		return w
	}
	score := func(m *graph.Cached) []float32 {
		t.Helper()
		var out []float32
		err := m.Score(ids, B, T, func(logits graph.Logits) error {
			rows, err := logits.Rows(0, logits.Len())
			out = slices.Clone(rows)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	host, err := graph.NewCached(cfg, weights(), cpubackend.New(cpubackend.Gonum{}))
	if err != nil {
		t.Fatal(err)
	}
	want := score(host)
	V := cfg.VocabSize
	for r := range B {
		rowLogits, err := host.ForwardAll(host.NewKVCache(1, T), ids[r*T:(r+1)*T], T)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range rowLogits {
			if got := want[r*T*V+i]; math.Abs(float64(got-x)) > 1e-6 {
				t.Fatalf("row %d, logit %d: Score %v, Forward %v", r, i, got, x)
			}
		}
	}

	made := 0
	e := placing{hostdevice.New(cpubackend.Gonum{}), &made}
	w := weights()
	m, err := graph.NewCached(cfg, w, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Place(e); err != nil {
		t.Fatal(err)
	}
	for _, x := range w {
		clear(x)
	}
	e.Calls()
	if got := score(m); !slices.Equal(got, want) {
		t.Error("the device's pass gives other logits than the host's")
	}
	calls := e.Calls()
	for _, k := range []string{"EmbeddingForward", "RMSNormForward", "RotaryForward", "AttentionForward", "AddForward", "ReLU2Forward", "SoftcapForward"} {
		if calls[k] == 0 {
			t.Errorf("%s did not run on the device: %v", k, calls)
		}
	}

	quantized := func(e backend.Backend) *graph.Cached {
		q, err := graph.NewCached(cfg, weights(), e)
		if err == nil {
			err = q.Quantize()
		}
		if err == nil {
			err = q.Place(e)
		}
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	want = score(quantized(cpubackend.New(cpubackend.Gonum{})))
	if got := score(quantized(e)); !slices.Equal(got, want) {
		t.Error("the device's int8 pass gives other logits than the host's")
	}
	if calls := e.Calls(); calls["AttentionForward"] == 0 || calls["MulQ8T"] != 4*cfg.NLayer+1 {
		t.Errorf("an int8 model did not score on the device: %v", calls)
	}
	bad := slices.Clone(ids)
	bad[4] = V
	if err := m.Score(bad, B, T, func(graph.Logits) error { return nil }); err == nil || !strings.Contains(err.Error(), "token id") {
		t.Errorf("an id outside the vocabulary: %v", err)
	}
}

// TestDecodeOnTheDevice: a model placed on a device engine keeps its KV caches there and
// decodes on it (every kernel gets the device's memory, Sync reports it otherwise): a
// prompt into a one-row cache, copied into three rows (Fill), then tokens past the cache's
// first capacity (it grows) give the host model's logits bit for bit, the same kernels
// running on the same numbers; with int8 weights too. A released cache's memory serves the
// next cache of its size.
func TestDecodeOnTheDevice(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	prompt := []int{5, 17, 3, 88, 42, 1, 9}
	build := func(e backend.Backend, int8 bool) *graph.Cached {
		w := graph.InitWeights(cfg, 3)
		for i := range w["lm_head.weight"] {
			w["lm_head.weight"][i] = float32(i%13)/13 - 0.5
		}
		m, err := graph.NewCached(cfg, w, e)
		if err == nil && int8 {
			err = m.Quantize()
		}
		if err == nil {
			err = m.Place(e)
		}
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	decode := func(m *graph.Cached) [][]float32 {
		t.Helper()
		var out [][]float32
		one := m.NewKVCache(1, len(prompt))
		logits, err := m.Forward(one, prompt, len(prompt))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, logits)
		rows := m.NewKVCache(3, len(prompt)+2) // grows on the third token
		if err := rows.Fill(one); err != nil {
			t.Fatal(err)
		}
		one.Release()
		for step := range 6 {
			ids := []int{step, 2*step + 1, 90 - step}
			if logits, err = m.Forward(rows, ids, 1); err != nil {
				t.Fatal(err)
			}
			out = append(out, logits)
		}
		rows.Release()
		return out
	}
	made := 0
	e := placing{hostdevice.New(cpubackend.Gonum{}), &made}
	var m *graph.Cached
	for _, int8 := range []bool{true, false} {
		want := decode(build(cpubackend.New(cpubackend.Gonum{}), int8))
		m = build(e, int8)
		e.Calls()
		got := decode(m)
		for i := range want {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("int8 %v, step %d: the device's logits differ from the host's", int8, i)
			}
		}
		kernels := []string{"EmbeddingForward", "StoreKV", "AttentionCached", "RMSNormForward", "SoftcapForward", "Copy"}
		if int8 {
			kernels = append(kernels, "MulQ8T")
		}
		calls := e.Calls()
		for _, k := range kernels {
			if calls[k] == 0 {
				t.Errorf("int8 %v: %s did not run on the device: %v", int8, k, calls)
			}
		}
	}
	once := made
	m.NewKVCache(3, len(prompt)+2).Release()
	m.NewKVCache(3, len(prompt)+3).Release() // a longer prompt's: within the quarter to spare
	if made != once {
		t.Errorf("caches the size of released ones, and a little larger, made %d new buffers", made-once)
	}
	if err := m.Quantize(); err == nil {
		t.Error("a placed model was quantized")
	}
}

// TestUpdate: a generation model updated to other weights computes what a model made from
// them does, on the CPU and placed on a device (where the copies are the device's);
// weights of another shape and an int8 model are refused.
func TestUpdate(t *testing.T) {
	cfg := graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 2, NHead: 4, NKVHead: 2, NEmbd: 64}
	ids := []int{5, 17, 3, 88, 42, 1, 9}
	weights := func(seed uint64) graph.Weights {
		w := graph.InitWeights(cfg, seed)
		for i := range w["lm_head.weight"] {
			w["lm_head.weight"][i] = float32((i+int(seed))%13)/13 - 0.5
		}
		return w
	}
	logits := func(m *graph.Cached) []float32 {
		t.Helper()
		c := m.NewKVCache(1, len(ids))
		defer c.Release()
		out, err := m.ForwardAll(c, ids, len(ids))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	made := 0
	for _, e := range []backend.Backend{cpubackend.New(cpubackend.Gonum{}), placing{hostdevice.New(cpubackend.Gonum{}), &made}} {
		fresh, err := graph.NewCached(cfg, weights(2), e)
		if err != nil {
			t.Fatal(err)
		}
		want := logits(fresh)
		m, err := graph.NewCached(cfg, weights(1), e)
		if err == nil {
			err = m.Place(e)
		}
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(logits(m), want) {
			t.Fatal("two seeds give the same logits")
		}
		if err := m.Update(weights(2)); err != nil {
			t.Fatal(err)
		}
		if got := logits(m); !slices.Equal(got, want) {
			t.Errorf("%s: the updated model's logits differ from a new model's", e.Name())
		}
		other := graph.InitWeights(graph.Config{SequenceLen: 32, VocabSize: 97, NLayer: 1, NHead: 4, NKVHead: 2, NEmbd: 64}, 1)
		if err := m.Update(other); err == nil {
			t.Errorf("%s: weights of another model were taken", e.Name())
		}
	}
	q, err := graph.NewCached(cfg, weights(1), cpubackend.New(cpubackend.Gonum{}))
	if err == nil {
		err = q.Quantize()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Update(weights(2)); err == nil || !strings.Contains(err.Error(), "int8") {
		t.Errorf("an int8 model was updated: %v", err)
	}
}
