// Package layers holds the custom Gorgonia ops of nanochat's GPT and the kernels behind them.
//
// Each file is one concern: the forward kernel, the backward kernel, and the two Gorgonia
// ops that wrap them (a forward op whose SymDiff applies the backward op). Kernels are plain
// functions over slices, generic over float32 (training) and float64 (gradient checks), so
// the sampler's cached forward calls exactly the code the training graph runs.
//
// Matrix products go through the engine of the op's inputs (see Gemm), so an accelerator
// engine sees them as well as Gorgonia's own matrix ops. An engine that is a Memory makes
// the ops' tensors in its own memory; one that is a Device also runs their float32 kernels
// (the same math, in the device's code), so that a training step stays on it.
package layers
