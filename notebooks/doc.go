// Package notebooks holds gochat's Jupyter notebooks for the gophernotes kernel
// (01_tokenizer, 02_tiny_model, 03_inside_the_model, 04_engines: README.md's "Notebooks"
// says what each shows) and the test that runs them as the kernel would: nbrun turns each
// into a Go program, display stands in for the kernel's display package, and TestNotebooks
// builds and runs them all at a small size, checking their "// expect:" lines.
package notebooks
