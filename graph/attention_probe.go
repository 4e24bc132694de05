package graph

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gochat/backend"

	"gochat/layers"
)

// Probe is what one forward pass over a sequence shows inside the model: every head's
// attention weights and the logit lens, the residual stream after each block read out
// through the final norm and lm_head as if the model ended there.
type Probe struct {
	T int // tokens of the sequence
	// Attention[l][h] is head h of layer l: T×T row-major weights, row i the softmax over
	// positions 0..i that query i attends to (zero above the diagonal).
	Attention [][][]float32
	// Lens[l] is T×vocab row-major softcapped logits of the residual stream after block l;
	// the last layer's are the model's own logits.
	Lens [][]float32
}

// Probe runs ids (one sequence) through the model, as Forward does on a fresh cache, and
// records its attention weights and logit lens.
func (m *Cached) Probe(ids []int) (*Probe, error) {
	T := len(ids)
	if T == 0 {
		return nil, fmt.Errorf("graph: probe of an empty sequence")
	}
	if err := m.check(ids, 1, T, 0); err != nil { // ids in the vocabulary, T within the rotary table
		return nil, err
	}
	if m.placed != nil {
		if _, remote := m.placed.e.(backend.Remote); remote {
			return nil, fmt.Errorf("graph: a probe reads the weights on the host: probe a model not placed on %s", m.placed.e.Name())
		}
	}
	pass, done, _, err := m.begin(m.newKVCache(1, T, nil), ids, 1, T) // a host cache: the host's kernels
	defer done()
	if err != nil {
		return nil, err
	}
	o := &probeOps{sliceOps: *pass, probe: &Probe{T: T}}
	trunk[[]float32](o, m.Config.NLayer)
	return o.probe, nil
}

// probeOps are sliceOps that record the attention weights of each layer and the residual
// stream after each block on the way.
type probeOps struct {
	sliceOps
	probe *Probe
}

// attention computes each head's weights from the rotated, normalised q and k (the
// cache is empty: the keys are the sequence's own) before the attention itself.
func (o *probeOps) attention(l int, qkv []float32) []float32 {
	c, T := o.m.Config, o.T
	H, KV, D, W := c.NHead, c.NKVHead, c.HeadDim(), o.width()
	scale := 1 / math.Sqrt(float64(D))
	heads := make([][]float32, H)
	for h := range H {
		g := h / (H / KV) // the kv head query head h reads (grouped heads)
		w := make([]float32, T*T)
		for i := range T {
			q := qkv[i*W+h*D : i*W+(h+1)*D]
			row := w[i*T : i*T+i+1]
			top := math.Inf(-1)
			scores := make([]float64, i+1)
			for j := range i + 1 {
				k := qkv[j*W+(H+g)*D : j*W+(H+g+1)*D]
				var dot float64
				for d := range D {
					dot += float64(q[d]) * float64(k[d])
				}
				scores[j] = dot * scale
				top = max(top, scores[j])
			}
			var sum float64
			for j := range scores {
				scores[j] = math.Exp(scores[j] - top)
				sum += scores[j]
			}
			for j := range row {
				row[j] = float32(scores[j] / sum)
			}
		}
		heads[h] = w
	}
	o.probe.Attention = append(o.probe.Attention, heads)
	return o.sliceOps.attention(l, qkv)
}

// block records the residual stream after each block through the final norm and lm_head.
func (o *probeOps) block(l int, x []float32, body func([]float32) []float32) []float32 {
	x = o.sliceOps.block(l, x, body)
	cfg := o.m.Config
	normed := make([]float32, len(x))
	layers.RMSNormForward(normed, nil, x, cfg.NEmbd, cfg.NEmbd, 1)
	logits := make([]float32, o.T*cfg.VocabSize)
	o.head(normed, logits)
	o.probe.Lens = append(o.probe.Lens, logits)
	return x
}

// HeatMap draws a rows×cols row-major matrix of values in [0, 1] (attention weights,
// probabilities) as an image, each value a cell×cell square from white (0) to dark blue
// (1); values outside [0, 1] are clamped.
func HeatMap(values []float32, rows, cols, cell int) (image.Image, error) {
	if rows <= 0 || cols <= 0 || cell <= 0 || len(values) != rows*cols {
		return nil, fmt.Errorf("graph: heat map of %d values as %d×%d cells of %d pixels", len(values), rows, cols, cell)
	}
	img := image.NewRGBA(image.Rect(0, 0, cols*cell, rows*cell))
	for r := range rows {
		for c := range cols {
			v := float64(min(max(values[r*cols+c], 0), 1))
			shade := color.RGBA{R: uint8(255 - 247*v), G: uint8(255 - 207*v), B: uint8(255 - 148*v), A: 255}
			for y := r * cell; y < (r+1)*cell; y++ {
				for x := c * cell; x < (c+1)*cell; x++ {
					img.SetRGBA(x, y, shade)
				}
			}
		}
	}
	return img, nil
}
