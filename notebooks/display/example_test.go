package display_test

import (
	"errors"
	"image"

	"gochat/notebooks/display"
)

// A cell's last values as the kernel shows them: an image alone (with nil beside it) as
// an image, other values printed, nothing when all are nil.
func ExampleResult() {
	display.Result(image.NewGray(image.Rect(0, 0, 1, 1)), nil)
	display.Result(42, errors.New("boom"))
	display.Result("text")
	var err error
	display.Result(err)
	// Output:
	// [display image/png, 71 bytes]
	// 42 boom
	// text
}
