package train

import (
	"fmt"
	"strings"

	"gochat/backend"
	"gochat/graph"
)

// Footprint is the memory a training step takes on its engine, planned before anything is
// allocated: the training graph's weights, gradients and activations (graph.Plan), the
// optimizers' state, the sum of the micro-batches' gradients, the engine's own scratch and,
// on a device, the generation model's copy of the weights. The evaluation graph runs in
// the training graph's memory; the token ids (8 bytes a token) and generation's KV caches
// and activations (RL's rollouts: a few percent of a step's) are left out.
type Footprint struct {
	graph.Memory
	Optimizer    int64 // AdamW's two moments of wte and lm_head, Muon's momentum of the matrices
	Accumulation int64 // the sum of the micro-batches' gradients, when a step has several
	Workspace    int64 // the engine's scratch (backend.Budget)
	Generation   int64 // on a device engine: the weights the run's generation model places there
}

// Total is the bytes of the whole step.
func (f Footprint) Total() int64 {
	return f.Memory.Total() + f.Optimizer + f.Accumulation + f.Workspace + f.Generation
}

// String lists the parts and their total.
func (f Footprint) String() string {
	parts := []string{graph.Size(f.Weights) + " weights", graph.Size(f.Gradients) + " gradients",
		graph.Size(f.Optimizer) + " optimizer state"}
	if f.Accumulation > 0 {
		parts = append(parts, graph.Size(f.Accumulation)+" summed gradients")
	}
	parts = append(parts, graph.Size(f.Activations)+" activations", graph.Size(f.Workspace)+" workspace")
	if f.Generation > 0 {
		parts = append(parts, graph.Size(f.Generation)+" generation weights")
	}
	return strings.Join(parts, ", ") + ": " + graph.Size(f.Total())
}

// PlanStep plans a training step of cfg as opt builds it (Batch, SeqLen, Reduction,
// Recompute; Mode is Train) on opt.Engine, over accum micro-batches.
func PlanStep(cfg graph.Config, opt graph.Options, accum int) (Footprint, error) {
	opt.Mode = graph.Train
	mem, err := graph.Plan(cfg, opt)
	if err != nil {
		return Footprint{}, err
	}
	f := Footprint{Memory: mem}
	matrices, embeddings := paramGroups(cfg)
	f.Optimizer = 4 * (2*elements(embeddings) + elements(matrices))
	if accum > 1 {
		f.Accumulation = 4 * int64(cfg.NumParams())
	}
	if b, ok := opt.Engine.(backend.Budget); ok {
		f.Workspace = int64(b.Workspace(workload(cfg, opt, matrices)))
	}
	if _, ok := opt.Engine.(backend.DeviceMemory); ok { // graph.Cached.Place, once a run
		f.Generation = 4 * int64(cfg.NumParams())
	}
	return f, nil
}

// paramGroups splits the parameters between the optimizers: the blocks' matrices (Muon)
// and the embedding and lm_head (AdamW), in the model's order.
func paramGroups(cfg graph.Config) (matrices, embeddings []graph.ParamSpec) {
	for _, p := range cfg.Params() {
		if strings.HasPrefix(p.Name, "transformer.h.") {
			matrices = append(matrices, p)
		} else {
			embeddings = append(embeddings, p)
		}
	}
	return matrices, embeddings
}

func elements(ps []graph.ParamSpec) int64 {
	var n int64
	for _, p := range ps {
		n += int64(p.Shape[0]) * int64(p.Shape[1])
	}
	return n
}

// workload is what a step of cfg asks of its engine besides the graph's tensors.
func workload(cfg graph.Config, opt graph.Options, matrices []graph.ParamSpec) backend.Workload {
	w := backend.Workload{
		Attention: backend.AttnShape{Batch: opt.Batch, Heads: cfg.NHead, KVHeads: cfg.NKVHead, HeadDim: cfg.HeadDim(), Tq: opt.SeqLen, Tk: opt.SeqLen},
		Operand:   max(opt.Batch*opt.SeqLen*4*cfg.NEmbd, cfg.VocabSize*cfg.NEmbd),
	}
	index := map[[2]int]int{}
	for _, p := range matrices {
		i, ok := index[p.Shape]
		if !ok {
			i = len(w.Matrices)
			index[p.Shape] = i
			w.Matrices = append(w.Matrices, backend.MatrixGroup{Rows: p.Shape[0], Cols: p.Shape[1]})
		}
		w.Matrices[i].Count++
	}
	return w
}

// describe names a model for a message: its depth and size.
func describe(cfg graph.Config) string {
	if n := cfg.NumParams(); n < 10_000_000 {
		return fmt.Sprintf("d%d (%d parameters)", cfg.NLayer, n)
	}
	return fmt.Sprintf("d%d (%dM parameters)", cfg.NLayer, (cfg.NumParams()+500_000)/1_000_000)
}
