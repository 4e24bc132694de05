// Package safetensors reads and writes the safetensors format: named tensors behind a JSON
// header. gochat keeps weights (nanochat's names, PyTorch's [out, in] layout), optimizer
// state and token byte lengths in it.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"gochat/internal/atomicfile"
)

// Tensor is one named array of a safetensors file: its dtype ("F32", "F64", "BF16", "F16",
// "I64", "I32", "I8"), shape, and little-endian bytes.
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

// maxHeader bounds the JSON header a reader accepts (the format allows 100 MB).
const maxHeader = 100 << 20

var dtypeSize = map[string]int{"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I8": 1}

type headerEntry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
}

// Read reads every tensor and the metadata of a safetensors file, checking that
// the header is well formed and that every tensor's bytes match its dtype and shape.
func Read(path string) (map[string]Tensor, map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	tensors, meta, err := parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return tensors, meta, nil
}

func parse(raw []byte) (map[string]Tensor, map[string]string, error) {
	if len(raw) < 8 {
		return nil, nil, fmt.Errorf("not a safetensors file: %d bytes", len(raw))
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > maxHeader || n > uint64(len(raw)-8) {
		return nil, nil, fmt.Errorf("header of %d bytes does not fit a file of %d bytes (truncated?)", n, len(raw))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, nil, fmt.Errorf("bad header: %w", err)
	}
	data := raw[8+n:]
	meta := map[string]string{}
	tensors := make(map[string]Tensor, len(header))
	for name, msg := range header {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("bad metadata: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad entry: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
		}
		count := 1
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q: negative dimension in %v", name, e.Shape)
			}
			if d > 0 && count > len(data)/size/d { // more elements than the file holds bytes: also no overflow
				return nil, nil, fmt.Errorf("tensor %q: shape %v is larger than the file's %d data bytes", name, e.Shape, len(data))
			}
			count *= d
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin < 0 || end < begin || end > len(data) || end-begin != count*size {
			return nil, nil, fmt.Errorf("tensor %q: offsets %v do not hold %v %s in %d data bytes (truncated?)", name, e.Offsets, e.Shape, e.DType, len(data))
		}
		tensors[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: data[begin:end]}
	}
	return tensors, meta, nil
}

// Len is the number of elements.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Float64s converts a float tensor to float64.
func (t Tensor) Float64s() ([]float64, error) {
	out := make([]float64, t.Len())
	le := binary.LittleEndian
	switch t.DType {
	case "F64":
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(t.Data[8*i:]))
		}
	case "F32":
		for i := range out {
			out[i] = float64(math.Float32frombits(le.Uint32(t.Data[4*i:])))
		}
	case "BF16":
		for i := range out {
			out[i] = float64(math.Float32frombits(uint32(le.Uint16(t.Data[2*i:])) << 16))
		}
	case "F16":
		for i := range out {
			out[i] = float64(halfToFloat(le.Uint16(t.Data[2*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor of dtype %s is not float", t.DType)
	}
	return out, nil
}

// Float32s converts a float tensor to float32.
func (t Tensor) Float32s() ([]float32, error) {
	if t.DType == "F32" {
		out := make([]float32, t.Len())
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return out, nil
	}
	f, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(f))
	for i, x := range f {
		out[i] = float32(x)
	}
	return out, nil
}

// Ints converts an integer tensor to Go ints.
func (t Tensor) Ints() ([]int, error) {
	out := make([]int, t.Len())
	switch t.DType {
	case "I64":
		for i := range out {
			out[i] = int(int64(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	case "I32":
		for i := range out {
			out[i] = int(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor of dtype %s is not an integer tensor", t.DType)
	}
	return out, nil
}

// F32 makes a float32 tensor.
func F32(data []float32, shape ...int) Tensor {
	b := make([]byte, 4*len(data))
	for i, x := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: "F32", Shape: shape, Data: b}
}

// I64 makes an int64 tensor.
func I64(data []int, shape ...int) Tensor {
	b := make([]byte, 8*len(data))
	for i, x := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(int64(x)))
	}
	return Tensor{DType: "I64", Shape: shape, Data: b}
}

// I8 makes an int8 tensor.
func I8(data []int8, shape ...int) Tensor {
	b := make([]byte, len(data))
	for i, x := range data {
		b[i] = byte(x)
	}
	return Tensor{DType: "I8", Shape: shape, Data: b}
}

// Int8s returns an int8 tensor's values.
func (t Tensor) Int8s() ([]int8, error) {
	if t.DType != "I8" {
		return nil, fmt.Errorf("tensor of dtype %s is not int8", t.DType)
	}
	out := make([]int8, len(t.Data))
	for i, b := range t.Data {
		out[i] = int8(b)
	}
	return out, nil
}

// halfToFloat converts an IEEE half-precision value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: frac·2^-24
		return math.Float32frombits(sign | math.Float32bits(float32(frac)/(1<<24)))
	case exp == 31:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// Write writes tensors (in name order) and metadata atomically: to a temporary
// file in the same folder, synced, then renamed over path, so a reader never sees a
// partial file.
func Write(path string, tensors map[string]Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	offset := 0
	for _, name := range names {
		t := tensors[name]
		if size, ok := dtypeSize[t.DType]; !ok || len(t.Data) != t.Len()*size {
			return fmt.Errorf("tensor %q: %d bytes do not hold %v %s", name, len(t.Data), t.Shape, t.DType)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[name] = headerEntry{DType: t.DType, Shape: shape, Offsets: [2]int{offset, offset + len(t.Data)}}
		offset += len(t.Data)
	}
	js, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(js)%8 != 0 { // align the data to 8 bytes, as the format recommends
		js = append(js, ' ')
	}
	return atomicfile.Write(path, func(f *os.File) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
		if _, err := f.Write(n[:]); err != nil {
			return err
		}
		if _, err := f.Write(js); err != nil {
			return err
		}
		for _, name := range names {
			if _, err := f.Write(tensors[name].Data); err != nil {
				return err
			}
		}
		return nil
	})
}
