package train

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"gochat/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Record is one line of a run's metrics.jsonl: a training step (Kind "train"), an
// evaluation (Kind "eval") or Run.Metrics' measures (Kind "metrics").
type Record struct {
	Kind string `json:"kind"`
	Step int    `json:"step"`

	Loss         float64 `json:"loss,omitempty"`        // the step's mean loss
	SmoothLoss   float64 `json:"smooth_loss,omitempty"` // debiased EMA, β = 0.9
	LRMultiplier float64 `json:"lrm,omitempty"`
	GradNorm     float64 `json:"grad_norm,omitempty"`
	Seconds      float64 `json:"dt,omitempty"`
	TokPerSec    float64 `json:"tok_per_sec,omitempty"`
	MFU          float64 `json:"mfu,omitempty"`       // percent of the engine's measured peak
	DataWait     float64 `json:"data_wait,omitempty"` // seconds the step waited for batches

	ValBPB  float64   `json:"val_bpb,omitempty"`
	ValLoss float64   `json:"val_loss,omitempty"`  // SFT's
	PassAtK []float64 `json:"pass_at_k,omitempty"` // RL's: pass@1, pass@2, …

	Metrics map[string]float64 `json:"metrics,omitempty"` // Run.Metrics (Kind "metrics")

	Padding float64 `json:"padding,omitempty"` // SFT's share of the step's positions that held no conversation

	Reward float64 `json:"reward,omitempty"`  // RL's mean reward of the step's replies
	SeqLen float64 `json:"seq_len,omitempty"` // and their mean length, prompt included
}

// metrics appends records to dir/metrics.jsonl and redraws the plots.
type metrics struct {
	dir     string // "": the records are kept in memory only (a rank other than 0's)
	records []Record
}

const metricsFile = "metrics.jsonl"

// openMetrics reads the records a run already has before step from (a resumed run
// repeats what came after) and rewrites the file with just those.
func openMetrics(dir string, from int) (*metrics, error) {
	m := &metrics{dir: dir}
	f, err := os.Open(filepath.Join(dir, metricsFile))
	if errors.Is(err, fs.ErrNotExist) || from == 0 {
		if err == nil {
			f.Close()
		}
		return m, m.rewrite()
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Step < from {
			m.records = append(m.records, r)
		}
	}
	return m, m.rewrite()
}

func (m *metrics) rewrite() error {
	if m.dir == "" {
		return nil
	}
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(m.dir, metricsFile), func(f *os.File) error {
		enc := json.NewEncoder(f)
		for _, r := range m.records {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// add appends a record to the file.
func (m *metrics) add(r Record) error {
	m.records = append(m.records, r)
	if m.dir == "" {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(m.dir, metricsFile), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	err = json.NewEncoder(f).Encode(r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// plot draws loss.png (the smoothed training loss) and the validation's curve:
// val_bpb.png, val_loss.png (SFT) or pass_at_k.png (RL, pass@1 and pass@k), with
// reward.png (RL's mean reward a step).
func (m *metrics) plot() error {
	if m.dir == "" {
		return nil
	}
	var loss, bpb, vloss, pass1, passK, reward plotter.XYs
	for _, r := range m.records {
		switch {
		case r.Kind == "train":
			loss = append(loss, plotter.XY{X: float64(r.Step + 1), Y: r.SmoothLoss})
			if r.SeqLen > 0 {
				reward = append(reward, plotter.XY{X: float64(r.Step + 1), Y: r.Reward})
			}
		case r.Kind == "metrics":
		case r.PassAtK != nil:
			pass1 = append(pass1, plotter.XY{X: float64(r.Step), Y: r.PassAtK[0]})
			passK = append(passK, plotter.XY{X: float64(r.Step), Y: r.PassAtK[len(r.PassAtK)-1]})
		case r.ValBPB > 0:
			bpb = append(bpb, plotter.XY{X: float64(r.Step), Y: r.ValBPB})
		default:
			vloss = append(vloss, plotter.XY{X: float64(r.Step), Y: r.ValLoss})
		}
	}
	for _, c := range []struct {
		file, title, ylabel string
		pts                 plotter.XYs
	}{
		{"loss.png", "training loss (EMA)", "loss (nats)", loss},
		{"val_bpb.png", "validation bits per byte", "bpb", bpb},
		{"val_loss.png", "validation loss", "loss (nats)", vloss},
		{"reward.png", "mean reward of the step's replies", "reward", reward},
		{"pass_at_1.png", "pass@1 on held-out problems", "pass@1", pass1},
		{"pass_at_k.png", "pass@k on held-out problems", "pass@k", passK},
	} {
		if err := drawCurve(filepath.Join(m.dir, c.file), c.title, c.ylabel, c.pts); err != nil {
			return err
		}
	}
	return nil
}

// drawCurve writes a line plot of pts (points too when there are few) as a PNG, atomically.
func drawCurve(path, title, ylabel string, pts plotter.XYs) error {
	if len(pts) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick { // whole steps: 250, not 250.00
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
			}
		}
		return ticks
	})
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	line, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return fmt.Errorf("plotting %s: %w", path, err)
	}
	line.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	points.Color = line.Color
	if len(pts) > 30 {
		points.Radius = 0
	}
	p.Add(line, points)
	w, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(f *os.File) error {
		_, err := w.WriteTo(f)
		return err
	})
}
