package benchmarks

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"
	"unsafe"

	"gochat/backend"
	"gochat/graph"
	"gochat/internal/parallel"
)

// SampleSpec is one generation benchmark: a model (random weights), the rows generated
// side by side, and the prompt's length.
type SampleSpec struct {
	Depth, Vocab, Batch, Prompt int
	Int8                        bool `json:",omitempty"` // the matrices in int8 (graph.Cached.Quantize)
}

// String labels the benchmark in the reports: "d4 V=8192 B=1 prompt=256", with " int8"
// when the matrices are quantised.
func (s SampleSpec) String() string {
	q := ""
	if s.Int8 {
		q = " int8"
	}
	return fmt.Sprintf("d%d V=%d B=%d prompt=%d%s", s.Depth, s.Vocab, s.Batch, s.Prompt, q)
}

// StandardSamples are the inference issues' configurations: d4 and d12, one row and eight,
// and one row with int8 weights.
var StandardSamples = []SampleSpec{
	{Depth: 4, Vocab: 8192, Batch: 1, Prompt: 256},
	{Depth: 4, Vocab: 8192, Batch: 1, Prompt: 256, Int8: true},
	{Depth: 4, Vocab: 8192, Batch: 8, Prompt: 256},
	{Depth: 12, Vocab: 65536, Batch: 1, Prompt: 512},
	{Depth: 12, Vocab: 65536, Batch: 1, Prompt: 512, Int8: true},
	{Depth: 12, Vocab: 65536, Batch: 8, Prompt: 512},
}

// SampleResult is what one generation benchmark measured.
type SampleResult struct {
	Spec          SampleSpec
	BLAS          string
	PrefillTokSec float64 // prompt tokens (all rows) per second of the prefill forward
	DecodeTokSec  float64 // tokens (all rows) per second of one-token steps after the prompt
	WeightBytes   int     // read by each decode step
	Bandwidth     Bandwidth
	// Utilisation is the weight bytes a decode step reads per second over the copy
	// bandwidth: at one row, weight bytes per token × tok/s ÷ bandwidth. OfRead is the same
	// over the read bandwidth, the ceiling of a pass that only reads its weights.
	Utilisation, OfRead float64
}

// Bandwidth is the machine's memory bandwidth in bytes/s: Copy is the bytes a large copy
// moves from one buffer to the other per second (STREAM's Copy figure counts them twice,
// read and written, and is twice this), Read the bytes a pass that only reads goes through.
type Bandwidth struct{ Copy, Read float64 }

// RunSample times the KV-cached forward pass of random-weight models: a prefill of the
// prompt in every row, then steps of one token per row.
func RunSample(spec SampleSpec, e backend.Backend, steps int, bandwidth Bandwidth) (SampleResult, error) {
	cfg := graph.ConfigForDepth(spec.Depth, spec.Vocab, 2048)
	m, err := graph.NewCached(cfg, graph.InitWeights(cfg, 1), e)
	if err != nil {
		return SampleResult{}, err
	}
	if spec.Int8 {
		err = m.Quantize()
	}
	if err == nil {
		err = m.Place(e) // as the commands that generate do
	}
	if err != nil {
		return SampleResult{}, err
	}
	r := rand.New(rand.NewPCG(1, 1))
	ids := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = r.IntN(spec.Vocab)
		}
		return out
	}
	res := SampleResult{Spec: spec, BLAS: e.Name(), WeightBytes: m.WeightBytes(), Bandwidth: bandwidth}
	best := func(run func() (time.Duration, error)) (time.Duration, error) {
		var fastest time.Duration
		for k := range 3 {
			d, err := run()
			if err != nil {
				return 0, err
			}
			if k == 0 || d < fastest {
				fastest = d
			}
		}
		return fastest, nil
	}
	var cache *graph.KVCache
	prefill, err := best(func() (time.Duration, error) {
		if cache != nil {
			cache.Release() // a device's memory, for the next run's cache
		}
		cache = m.NewKVCache(spec.Batch, spec.Prompt+steps)
		start := time.Now()
		_, err := m.Forward(cache, ids(spec.Batch*spec.Prompt), spec.Prompt)
		return time.Since(start), err
	})
	if err != nil {
		return res, err
	}
	defer cache.Release()
	res.PrefillTokSec = float64(spec.Batch*spec.Prompt) / prefill.Seconds()
	start := time.Now()
	for range steps {
		if _, err := m.Forward(cache, ids(spec.Batch), 1); err != nil {
			return res, err
		}
	}
	perStep := time.Since(start).Seconds() / float64(steps)
	res.DecodeTokSec = float64(spec.Batch) / perStep
	res.Utilisation = float64(res.WeightBytes) / perStep / bandwidth.Copy
	res.OfRead = float64(res.WeightBytes) / perStep / bandwidth.Read
	return res, nil
}

// MeasureBandwidth measures the machine's memory bandwidth on a buffer far larger than the
// caches, on every processor at once; the best of a few rounds of each.
func MeasureBandwidth() Bandwidth {
	const size = 256 << 20
	src, dst := make([]byte, size), make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	words := unsafe.Slice((*uint64)(unsafe.Pointer(&src[0])), size/8)
	sums := make([]uint64, parallel.Workers())
	var b Bandwidth
	for range 5 {
		start := time.Now()
		parallel.For(size, 1, func(lo, hi int) { copy(dst[lo:hi], src[lo:hi]) })
		b.Copy = max(b.Copy, size/time.Since(start).Seconds())
		start = time.Now()
		parallel.Split(len(sums), func(part, parts int) {
			var s uint64
			for _, w := range words[len(words)*part/parts : len(words)*(part+1)/parts] {
				s += w
			}
			sums[part] = s
		})
		b.Read = max(b.Read, size/time.Since(start).Seconds())
	}
	return b
}

// WriteSampleTable writes results as a Markdown table.
func WriteSampleTable(w io.Writer, results []SampleResult) {
	fmt.Fprintln(w, "| config | BLAS | prefill tok/s | decode tok/s | weight MB per step | copy GB/s | read GB/s | of copy | of read |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %.0f | %.1f | %.0f | %.1f | %.1f | %.0f%% | %.0f%% |\n", r.Spec, r.BLAS, r.PrefillTokSec, r.DecodeTokSec,
			float64(r.WeightBytes)/1e6, r.Bandwidth.Copy/1e9, r.Bandwidth.Read/1e9, 100*r.Utilisation, 100*r.OfRead)
	}
}
