package train_test

import (
	"bytes"
	"fmt"
	"image/png"

	"gochat/train"
)

// Two curves on one plot, as PNG bytes a notebook displays.
func ExamplePlotPNG() {
	steps := []float64{1, 2, 3, 4}
	b, err := train.PlotPNG("loss", "step", "nats",
		train.Series{Name: "train", X: steps, Y: []float64{5, 4, 3.5, 3.2}},
		train.Series{Name: "validation", X: steps, Y: []float64{5.1, 4.2, 3.8, 3.6}})
	if err != nil {
		panic(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	fmt.Println(img.Bounds())
	// Output: (0,0)-(576,384)
}
