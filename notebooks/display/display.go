// Package display stands in for the display package the gophernotes kernel imports into
// every notebook, so that a notebook's cells also run as a Go program (notebooks/nbrun):
// display.PNG and display.Image wrap an image as Data, which a cell shows by ending with it
// (or by calling Display, which the program defines as the kernel does). Outside Jupyter,
// showing an image prints a line naming it and, when GOCHAT_NOTEBOOK_OUT names a folder,
// writes it there as 1.png, 2.png, … in the order shown.
package display

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
)

// Data is something to show: the kernel's display.Data holds a map of MIME types; the
// notebooks only show PNG images.
type Data struct {
	MIME  string
	Bytes []byte
}

// PNG is an encoded PNG image to show.
func PNG(b []byte) Data { return Data{MIME: "image/png", Bytes: b} }

// Image is img to show, encoded as PNG (a failure to encode is shown as the error).
func Image(img image.Image) Data {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Data{MIME: "text/plain", Bytes: []byte(fmt.Sprintf("display: encoding an image: %v", err))}
	}
	return PNG(buf.Bytes())
}

// shown counts the images shown, which names their files.
var shown int

// Show shows d: text is printed; an image is announced on a line of its own,
// "[display image/png, N bytes]", and written to GOCHAT_NOTEBOOK_OUT when set.
func Show(d Data) error {
	if d.MIME == "text/plain" {
		_, err := fmt.Println(string(d.Bytes))
		return err
	}
	shown++
	fmt.Printf("[display %s, %d bytes]\n", d.MIME, len(d.Bytes))
	dir := os.Getenv("GOCHAT_NOTEBOOK_OUT")
	if dir == "" {
		return nil
	}
	path := filepath.Join(dir, fmt.Sprintf("%d.png", shown))
	if err := os.WriteFile(path, d.Bytes, 0o644); err != nil {
		return fmt.Errorf("display: %w", err)
	}
	return nil
}

// Result shows the values of a cell's last expression as the kernel does: a single Data or
// image.Image (the other values nil) as itself, anything else printed.
func Result(vals ...any) {
	var show []any
	nils := 0
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			nils++
		case Data, image.Image:
			show = append(show, v)
		}
	}
	if len(show) == 1 && nils == len(vals)-1 {
		switch v := show[0].(type) {
		case Data:
			report(Show(v))
		case image.Image:
			report(Show(Image(v)))
		}
		return
	}
	if nils < len(vals) {
		fmt.Println(fmt.Sprint(vals...))
	}
}

// report prints a failure to show, as the kernel reports it in the cell's output.
func report(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
