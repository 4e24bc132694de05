package train

import (
	"bytes"
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Series is one named line of a plot: its points' X and Y, of equal length.
type Series struct {
	Name string
	X, Y []float64
}

// palette colours the lines of a plot in turn (matplotlib's first six).
var palette = []color.RGBA{
	{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255},
	{R: 44, G: 160, B: 44, A: 255}, {R: 214, G: 39, B: 40, A: 255},
	{R: 148, G: 103, B: 189, A: 255}, {R: 140, G: 86, B: 75, A: 255},
}

// PlotPNG draws series as lines (with points when they have few) under a title and axis
// labels, with a legend when there is more than one, and returns the PNG's bytes: what a
// notebook displays inline, or a program writes to a file.
func PlotPNG(title, xlabel, ylabel string, series ...Series) ([]byte, error) {
	return Chart{Title: title, XLabel: xlabel, YLabel: ylabel}.PNG(series...)
}

// Chart is a plot's title, axis labels and scales.
type Chart struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool // logarithmic axes, for values over several orders of magnitude
}

// PNG draws series on the chart as PlotPNG does.
func (c Chart) PNG(series ...Series) ([]byte, error) {
	title := c.Title
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	if c.LogX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	if c.LogY {
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true // curves that rise leave the top left free
	for i, s := range series {
		if len(s.X) != len(s.Y) || len(s.X) == 0 {
			return nil, fmt.Errorf("plot %q: series %q has %d x and %d y values", title, s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, len(s.X))
		for j := range pts {
			pts[j] = plotter.XY{X: s.X[j], Y: s.Y[j]}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %q: series %q: %w", title, s.Name, err)
		}
		line.Color = palette[i%len(palette)]
		points.Color = line.Color
		if len(pts) > 30 {
			points.Radius = 0
		}
		p.Add(line, points)
		if len(series) > 1 {
			p.Legend.Add(s.Name, line, points)
		}
	}
	w, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return nil, fmt.Errorf("plot %q: %w", title, err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot %q: %w", title, err)
	}
	return buf.Bytes(), nil
}
