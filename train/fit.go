package train

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"gochat/backend"
	"gochat/graph"
	"gochat/layers"
)

// Usable is the share of an engine's memory limit a planned step may take: the rest is for
// what the plan does not count (the Go runtime, the data being read, the buffers of the
// libraries underneath, the allocator's rounding).
const Usable = 0.9

// BusyTokens is the micro-batch, in tokens, from which a device is about as fast per token
// as with any larger one: the fit recomputes activations (a third more compute) only to
// reach it.
const BusyTokens = 16384

// MemoryLimit is the memory a run on e plans against: GOCHAT_MEMORY_LIMIT when it is set (a
// number of bytes, or with a unit: 24GB, 27.5GiB, 512MiB), else e's own limit
// (backend.Budget); 0 when neither says.
func MemoryLimit(e backend.Backend) (uint64, error) {
	if v := os.Getenv("GOCHAT_MEMORY_LIMIT"); v != "" {
		n, err := ParseBytes(v)
		if err != nil {
			return 0, fmt.Errorf("GOCHAT_MEMORY_LIMIT: %w", err)
		}
		return n, nil
	}
	if b, ok := e.(backend.Budget); ok {
		return b.MemoryLimit(), nil
	}
	return 0, nil
}

// ParseBytes reads a size: a number of bytes, or a number with one of the units B, KB, MB,
// GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case.
func ParseBytes(s string) (uint64, error) {
	units := []struct {
		suffix string
		size   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1}}
	t := strings.ToLower(strings.TrimSpace(s))
	scale := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, scale = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.size
			break
		}
	}
	x, err := strconv.ParseFloat(t, 64)
	if err != nil || !(x > 0) || x*scale >= 1<<63 {
		return 0, fmt.Errorf("%q is not a size: want a positive number of bytes, such as 24GB or 16GiB", s)
	}
	return uint64(x * scale), nil
}

// Fit is the device batch size and recomputation a run trains with, and the plan of their
// step against the engine's limit.
type Fit struct {
	Rows      int
	Recompute graph.Recompute
	Step      Footprint
	Limit     uint64 // the engine's memory limit; 0 when unknown (every plan fits)
}

// String is the plan and the limit, as training prints it.
func (f Fit) String() string {
	s := fmt.Sprintf("%s at %d rows (recompute %v)", f.Step, f.Rows, f.Recompute)
	if f.Limit > 0 {
		s += fmt.Sprintf(", of the %s the engine may use", graph.Size(int64(f.Limit)))
	}
	return s
}

// Fitter plans the training steps of one model at the device batch sizes a run allows.
type Fitter struct {
	Model     graph.Config
	SeqLen    int
	Reduction layers.Reduction
	Engine    backend.Backend
	Limit     uint64             // 0: unknown, every plan fits
	Rows      []int              // the device batch sizes allowed, ascending
	Accum     func(rows int) int // the micro-batches of a step at rows
}

// Plan is the footprint of a step at rows with rc.
func (f Fitter) Plan(rows int, rc graph.Recompute) (Footprint, error) {
	return PlanStep(f.Model, graph.Options{Batch: rows, SeqLen: f.SeqLen, Reduction: f.Reduction, Engine: f.Engine, Recompute: rc}, f.Accum(rows))
}

// fits says whether a step of fp leaves the limit's headroom.
func (f Fitter) fits(fp Footprint) bool { return Fits(fp.Total(), f.Limit) }

// Fits says whether bytes leave an engine of the given limit its headroom: at most Usable of
// it (every size fits an unknown limit, 0).
func Fits(bytes int64, limit uint64) bool {
	return limit == 0 || float64(bytes) <= Usable*float64(limit)
}

// Largest is the largest allowed batch size whose step fits with rc, and its plan (rows 0
// when none does). A step's memory grows with its rows while it keeps summed gradients:
// those batches are bisected; a batch that is the whole step (one micro-batch, no summed
// gradients) may take less than smaller ones and is planned on its own.
func (f Fitter) Largest(rc graph.Recompute) (int, Footprint, error) {
	var summed []int // the rows whose steps sum micro-batches, ascending
	rows, best := 0, Footprint{}
	for _, r := range f.Rows {
		if f.Accum(r) > 1 {
			summed = append(summed, r)
			continue
		}
		fp, err := f.Plan(r, rc)
		if err != nil {
			return 0, fp, err
		}
		if f.fits(fp) && r > rows {
			rows, best = r, fp
		}
	}
	lo, hi := 0, len(summed) // summed[:lo] fit; summed[hi:] do not
	for lo < hi {
		mid := (lo + hi) / 2
		fp, err := f.Plan(summed[mid], rc)
		if err != nil {
			return 0, fp, err
		}
		if f.fits(fp) {
			lo = mid + 1
			if summed[mid] > rows {
				rows, best = summed[mid], fp
			}
		} else {
			hi = mid
		}
	}
	return rows, best, nil
}

// Choose settles the batch size (rows 0: the largest that fits) and the recomputation
// (recompute "" or "auto": by the fit), or refuses, in one line naming the largest batch
// that fits, a step that does not fit.
//
// By the fit: without recomputation when the step fits so; with it when it does not, and,
// when the batch is the fit's too, when recomputing fits more rows and the batch without
// it is under BusyTokens.
func (f Fitter) Choose(rows int, recompute string) (Fit, error) {
	if floor := f.floor(); !f.fits(Footprint{Memory: graph.Memory{Weights: floor}}) {
		return Fit{}, fmt.Errorf("%s needs %s for its weights, gradients and optimizer state alone, more than %.0f%% of the %s %s may use: a smaller model or a machine with more memory",
			describe(f.Model), graph.Size(floor), 100*Usable, graph.Size(int64(f.Limit)), f.engine())
	}
	modes := []graph.Recompute{graph.RecomputeNone, graph.RecomputeBlocks}
	if recompute != "" && recompute != "auto" {
		rc, err := graph.ParseRecompute(recompute)
		if err != nil {
			return Fit{}, err
		}
		modes = []graph.Recompute{rc}
	}
	if rows > 0 {
		var needs []string
		for _, rc := range modes {
			fp, err := f.Plan(rows, rc)
			if err != nil {
				return Fit{}, err
			}
			if f.fits(fp) {
				return Fit{Rows: rows, Recompute: rc, Step: fp, Limit: f.Limit}, nil
			}
			needs = append(needs, fmt.Sprintf("%s with --recompute %v", graph.Size(fp.Total()), rc))
		}
		return Fit{}, f.refuse(fmt.Sprintf("at %d rows of %d tokens needs %s", rows, f.SeqLen, strings.Join(needs, ", ")))
	}
	if len(f.Rows) == 0 {
		return Fit{}, fmt.Errorf("no device batch size divides the step's batch")
	}
	var fit Fit
	for _, rc := range modes {
		n, fp, err := f.Largest(rc)
		if err != nil {
			return Fit{}, err
		}
		if n == 0 {
			continue
		}
		if fit.Rows == 0 || n > fit.Rows && fit.Rows*f.SeqLen < BusyTokens {
			fit = Fit{Rows: n, Recompute: rc, Step: fp, Limit: f.Limit}
		}
	}
	if fit.Rows == 0 {
		fp, err := f.Plan(f.Rows[0], modes[len(modes)-1])
		if err != nil {
			return Fit{}, err
		}
		return Fit{}, f.refuse(fmt.Sprintf("at %d rows of %d tokens needs %s with --recompute %v", f.Rows[0], f.SeqLen, graph.Size(fp.Total()), modes[len(modes)-1]))
	}
	return fit, nil
}

// floor is the least memory a step takes at any batch size: the weights, their gradients
// and the optimizers' state.
func (f Fitter) floor() int64 {
	matrices, embeddings := paramGroups(f.Model)
	return 8*int64(f.Model.NumParams()) + 4*(2*elements(embeddings)+elements(matrices))
}

// engine names the fitter's engine for a message.
func (f Fitter) engine() string {
	if f.Engine == nil {
		return "the engine"
	}
	return f.Engine.Name()
}

// refuse is the error of a step that does not fit: what it needs, the limit, and the largest
// batch that fits with and without recomputation.
func (f Fitter) refuse(needs string) error {
	var fitting []string
	for _, rc := range []graph.Recompute{graph.RecomputeNone, graph.RecomputeBlocks} {
		n, _, err := f.Largest(rc)
		if err != nil {
			return err
		}
		if n > 0 {
			fitting = append(fitting, fmt.Sprintf("%d with --recompute %v", n, rc))
		}
	}
	advice := "not even the smallest batch fits: a smaller model, a shorter --max-seq-len or a machine with more memory"
	if len(fitting) > 0 {
		advice = "the largest --device-batch-size that fits is " + strings.Join(fitting, ", ")
	}
	return fmt.Errorf("%s %s, more than %.0f%% of the %s %s may use: %s",
		describe(f.Model), needs, 100*Usable, graph.Size(int64(f.Limit)), f.engine(), advice)
}

// FitRows is Choose for a step of one micro-batch of rows rows of seqLen tokens on e, as the
// model and benchmark commands take it: a refusal names the largest batch up to rows that
// fits.
func FitRows(cfg graph.Config, rows, seqLen int, recompute string, e backend.Backend) (Fit, error) {
	limit, err := MemoryLimit(e)
	if err != nil {
		return Fit{}, err
	}
	f := Fitter{Model: cfg, SeqLen: seqLen, Reduction: layers.Mean, Engine: e, Limit: limit, Accum: func(int) int { return 1 }}
	for r := 1; r <= rows; r++ {
		f.Rows = append(f.Rows, r)
	}
	return f.Choose(rows, recompute)
}
