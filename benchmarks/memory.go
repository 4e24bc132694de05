package benchmarks

import (
	"fmt"
	"io"
	"strings"

	"gochat/backend"
	"gochat/graph"
	"gochat/layers"
	"gochat/train"
)

// MemoryCurve is the planned memory of one model's training step, with or without
// recomputation, at device batch sizes 1, 2, 4, ... up to the whole total batch in one
// micro-batch (the batch sizes that divide nanochat's total batches).
type MemoryCurve struct {
	Depth     int
	SeqLen    int
	Recompute graph.Recompute
	Rows      []int
	Planned   []train.Footprint // at each of Rows
	Measured  []Measured        `json:",omitempty"` // the steps that were run
}

// Measured is one step that was run: its planned and measured peak.
type Measured struct {
	Rows        int
	Planned     int64
	PeakRSS     uint64 // the process's
	DeviceBytes uint64 // an accelerator engine's tensors and scratch (0 on the CPU)
}

// PlanMemory plans the training steps of each depth at seqLen tokens a row over a vocabulary
// of vocab, a step of total tokens (micro-batches summed when there are several), on e,
// without and with recomputation.
func PlanMemory(depths []int, seqLen, vocab, total int, e backend.Backend) ([]MemoryCurve, error) {
	var curves []MemoryCurve
	for _, d := range depths {
		cfg := graph.ConfigForDepth(d, vocab, seqLen)
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		for _, rc := range []graph.Recompute{graph.RecomputeNone, graph.RecomputeBlocks} {
			c := MemoryCurve{Depth: d, SeqLen: seqLen, Recompute: rc}
			for rows := 1; rows*seqLen <= total; rows *= 2 {
				fp, err := train.PlanStep(cfg, graph.Options{Batch: rows, SeqLen: seqLen, Reduction: layers.Mean, Engine: e, Recompute: rc}, total/(rows*seqLen))
				if err != nil {
					return nil, err
				}
				c.Rows, c.Planned = append(c.Rows, rows), append(c.Planned, fp)
			}
			curves = append(curves, c)
		}
	}
	return curves, nil
}

// Largest is the largest of c's batch sizes whose step fits an engine that may use limit
// bytes (train.Usable of it), and its plan; 0 when none does.
func (c MemoryCurve) Largest(limit uint64) (int, train.Footprint) {
	var rows int
	var fp train.Footprint
	for i, p := range c.Planned {
		if train.Fits(p.Total(), limit) {
			rows, fp = c.Rows[i], p
		}
	}
	return rows, fp
}

// WriteMemoryTable prints, for each curve, the largest device batch that fits each of the
// limits (GiB an engine may use), the memory of its step, and the steps measured.
func WriteMemoryTable(w io.Writer, curves []MemoryCurve, limitsGiB []float64, engine string) {
	var head, rule strings.Builder
	for _, l := range limitsGiB {
		fmt.Fprintf(&head, " %g GiB |", l)
		rule.WriteString(" --- |")
	}
	fmt.Fprintf(w, "Largest device batch (rows of %d tokens) whose whole training step fits, planned for %s; in brackets the step's GiB\n\n", curves[0].SeqLen, engine)
	fmt.Fprintf(w, "| model | recompute | fixed GiB | activations MB/token |%s\n| --- | --- | --- | --- |%s\n", head.String(), rule.String())
	for _, c := range curves {
		first, last := c.Planned[0], c.Planned[len(c.Planned)-1]
		fixed := first.Weights + first.Gradients + first.Optimizer
		slope := float64(last.Activations-first.Activations) / float64((c.Rows[len(c.Rows)-1]-c.Rows[0])*c.SeqLen) / 1e6
		fmt.Fprintf(w, "| d%d | %v | %.2f | %.3f |", c.Depth, c.Recompute, float64(fixed)/(1<<30), slope)
		for _, l := range limitsGiB {
			rows, fp := c.Largest(uint64(l * (1 << 30)))
			if rows == 0 {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %d (%.1f) |", rows, float64(fp.Total())/(1<<30))
		}
		fmt.Fprintln(w)
	}
	var measured []string
	for _, c := range curves {
		for _, m := range c.Measured {
			used, what := m.PeakRSS, "peak RSS"
			if m.DeviceBytes > 0 {
				used, what = m.DeviceBytes, "device bytes"
			}
			measured = append(measured, fmt.Sprintf("| d%d | %v | %d | %.2f | %.2f (%s) | %+.1f%% |", c.Depth, c.Recompute, m.Rows,
				float64(m.Planned)/(1<<30), float64(used)/(1<<30), what, 100*(float64(used)/float64(m.Planned)-1)))
		}
	}
	if len(measured) > 0 {
		fmt.Fprintf(w, "\nMeasured, one whole training step on %s\n\n| model | recompute | rows | planned GiB | measured GiB | measured / planned |\n| --- | --- | --- | --- | --- | --- |\n", engine)
		fmt.Fprintln(w, strings.Join(measured, "\n"))
	}
}

// MemoryPlot draws each curve's planned step memory against the device batch size.
func MemoryPlot(curves []MemoryCurve) ([]byte, error) {
	var series []train.Series
	for _, c := range curves {
		s := train.Series{Name: fmt.Sprintf("d%d, recompute %v", c.Depth, c.Recompute)}
		for i, fp := range c.Planned {
			s.X = append(s.X, float64(c.Rows[i]))
			s.Y = append(s.Y, float64(fp.Total())/(1<<30))
		}
		series = append(series, s)
	}
	return train.Chart{Title: fmt.Sprintf("a training step's memory, T=%d, as planned", curves[0].SeqLen),
		XLabel: "device batch size (rows)", YLabel: "GiB", LogX: true, LogY: true}.PNG(series...)
}
