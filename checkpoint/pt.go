package checkpoint

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gochat/graph"
	"gochat/internal/atomicfile"
	"gochat/internal/pickle"
	"gochat/safetensors"
)

// PyTorch's checkpoint format (torch.save since 1.6) is a zip archive: a folder holding
// data.pkl, the pickled object whose tensors refer to their storages by persistent id
// ("storage", storage class, key, location, numel), and data/<key>, each storage's raw
// little-endian bytes.

// storageDTypes maps PyTorch's storage classes to safetensors dtypes.
var storageDTypes = map[string]string{"FloatStorage": "F32", "BFloat16Storage": "BF16", "HalfStorage": "F16", "DoubleStorage": "F64"}

// maxPickleBytes bounds data.pkl: a state_dict's pickle holds names and geometry only, a few
// kilobytes for nanochat's models.
const maxPickleBytes = 16 << 20

// ReadPT reads the tensors of a state_dict that torch.save wrote, as float32, under their
// names (nanochat's; a "_orig_mod." prefix that torch.compile adds is removed). Every
// tensor must be a parameter of cfg, of its shape: what the file declares is checked
// before memory is given to it, and nothing is decompressed beyond what it declares.
func ReadPT(file string, cfg graph.Config) (graph.Weights, error) {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PyTorch checkpoint: %w", file, err)
	}
	defer zr.Close()
	records := map[string]*zip.File{}
	prefix := ""
	for _, f := range zr.File {
		records[f.Name] = f
		if strings.HasSuffix(f.Name, "/data.pkl") && strings.Count(f.Name, "/") == 1 {
			prefix = strings.TrimSuffix(f.Name, "data.pkl")
		}
	}
	if prefix == "" {
		return nil, fmt.Errorf("%s: no data.pkl: not a PyTorch checkpoint", file)
	}
	read := func(name string, limit int) ([]byte, error) {
		f, ok := records[prefix+name]
		if !ok {
			return nil, fmt.Errorf("%s: missing %s", file, prefix+name)
		}
		if f.UncompressedSize64 > uint64(limit) {
			return nil, fmt.Errorf("%s: %s declares %d bytes, more than the %d expected", file, name, f.UncompressedSize64, limit)
		}
		r, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, name, err)
		}
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, name, err)
		}
		if len(b) > limit {
			return nil, fmt.Errorf("%s: %s holds more than the %d bytes expected", file, name, limit)
		}
		return b, nil
	}
	shapes := map[string][2]int{}
	for _, p := range cfg.Params() {
		shapes[p.Name] = p.Shape
	}
	raw, err := read("data.pkl", maxPickleBytes)
	if err != nil {
		return nil, err
	}
	v, err := pickle.Unpickle(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	dict, ok := v.(pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: holds a %T, not a state_dict", file, v)
	}
	w := graph.Weights{}
	for key, value := range dict {
		name, ok := key.(string)
		if !ok {
			return nil, fmt.Errorf("%s: a state_dict key of type %T", file, key)
		}
		name = strings.TrimPrefix(name, "_orig_mod.")
		shape, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("%s: %s is not a parameter of the model its meta file describes", file, name)
		}
		t, err := rebuildTensor(value, shape, read)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, name, err)
		}
		if w[name], err = t.Float32s(); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, name, err)
		}
	}
	return w, nil
}

// rebuildTensor interprets torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
// ...) (inside _rebuild_parameter for a Parameter), gathering the elements in row-major
// order whatever the strides. The tensor must have the parameter's shape, and its storage
// no more elements.
func rebuildTensor(v any, shape [2]int, read func(string, int) ([]byte, error)) (safetensors.Tensor, error) {
	var t safetensors.Tensor
	call, ok := v.(*pickle.Call)
	if ok && call.Func == (pickle.Global{Module: "torch._utils", Name: "_rebuild_parameter"}) && len(call.Args) > 0 {
		call, ok = call.Args[0].(*pickle.Call)
	}
	if !ok || call.Func != (pickle.Global{Module: "torch._utils", Name: "_rebuild_tensor_v2"}) || len(call.Args) < 4 {
		return t, fmt.Errorf("not a tensor (%v)", v)
	}
	pid, ok := call.Args[0].(pickle.Persistent)
	id, ok2 := pid.ID.(pickle.Tuple)
	if !ok || !ok2 || len(id) < 5 || id[0] != "storage" {
		return t, fmt.Errorf("a tensor without a storage")
	}
	class, _ := id[1].(pickle.Global)
	key, _ := id[2].(string)
	numel, _ := id[4].(int)
	t.DType = storageDTypes[class.Name]
	if t.DType == "" || class.Module != "torch" {
		return t, fmt.Errorf("storage of %s.%s: only float tensors are read", class.Module, class.Name)
	}
	offset, ok := call.Args[1].(int)
	size, ok2 := ints(call.Args[2])
	stride, ok3 := ints(call.Args[3])
	if !ok || !ok2 || !ok3 || len(size) != len(stride) {
		return t, fmt.Errorf("malformed tensor geometry")
	}
	if len(size) != 2 || size[0] != shape[0] || size[1] != shape[1] {
		return t, fmt.Errorf("shape %v, want %v", size, shape)
	}
	if numel < 1 || numel > shape[0]*shape[1] {
		return t, fmt.Errorf("a storage of %d elements for %d×%d", numel, shape[0], shape[1])
	}
	width := map[string]int{"F32": 4, "BF16": 2, "F16": 2, "F64": 8}[t.DType]
	data, err := read("data/"+key, numel*width)
	if err != nil {
		return t, err
	}
	if len(data) != numel*width {
		return t, fmt.Errorf("storage %s has %d bytes, want %d×%d", key, len(data), numel, width)
	}
	t.Shape = size
	n := 1
	for _, s := range size {
		n *= s
	}
	t.Data = make([]byte, 0, n*width)
	idx := make([]int, len(size))
	for range n {
		at := offset
		for d := range idx {
			at += idx[d] * stride[d]
		}
		if at < 0 || (at+1)*width > len(data) {
			return t, fmt.Errorf("tensor reaches past its storage")
		}
		t.Data = append(t.Data, data[at*width:(at+1)*width]...)
		for d := len(idx) - 1; d >= 0; d-- { // next index, row-major
			if idx[d]++; idx[d] < size[d] {
				break
			}
			idx[d] = 0
		}
	}
	return t, nil
}

func ints(v any) ([]int, bool) {
	t, ok := v.(pickle.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int, len(t))
	for i, x := range t {
		if out[i], ok = x.(int); !ok || out[i] < 0 {
			return nil, false
		}
	}
	return out, true
}

// WritePT writes the config's weights as a state_dict torch.load reads (float32 tensors
// under nanochat's names, in nanochat's order), atomically.
func WritePT(file string, cfg graph.Config, w graph.Weights) error {
	if err := cfg.Check(w); err != nil {
		return err
	}
	var state pickle.OrderedDict
	var storages [][]byte
	for k, p := range cfg.Params() {
		key := fmt.Sprint(k)
		n := p.Shape[0] * p.Shape[1]
		storage := pickle.Persistent{ID: pickle.Tuple{"storage", pickle.Global{Module: "torch", Name: "FloatStorage"}, key, "cpu", n}}
		tensor := &pickle.Call{Func: pickle.Global{Module: "torch._utils", Name: "_rebuild_tensor_v2"},
			Args: pickle.Tuple{storage, 0, pickle.Tuple{p.Shape[0], p.Shape[1]}, pickle.Tuple{p.Shape[1], 1}, false,
				pickle.OrderedDict{}}}
		state = append(state, pickle.Item{Key: p.Name, Value: tensor})
		b := make([]byte, 4*n)
		for i, x := range w[p.Name] {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		storages = append(storages, b)
	}
	pkl, err := pickle.Marshal(state)
	if err != nil {
		return err
	}
	prefix := strings.TrimSuffix(path.Base(file), path.Ext(file)) + "/"
	return atomicfile.Write(file, func(f *os.File) error {
		z := &alignedZip{counter: countingWriter{w: f}}
		z.zip = zip.NewWriter(&z.counter)
		if err := z.add(prefix+"data.pkl", pkl); err != nil {
			return err
		}
		if err := z.add(prefix+"byteorder", []byte("little")); err != nil {
			return err
		}
		for k, s := range storages {
			if err := z.add(fmt.Sprintf("%sdata/%d", prefix, k), s); err != nil {
				return err
			}
		}
		if err := z.add(prefix+"version", []byte("3\n")); err != nil {
			return err
		}
		return z.zip.Close()
	})
}

// alignedZip writes stored (uncompressed) zip records whose data starts at a multiple of
// 64 bytes, as PyTorch writes them so that storages can be memory-mapped.
type alignedZip struct {
	counter countingWriter
	zip     *zip.Writer
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (z *alignedZip) add(name string, data []byte) error {
	if err := z.zip.Flush(); err != nil {
		return err
	}
	const header = 30 // a local file header's fixed part
	start := z.counter.n + header + int64(len(name)) + 4
	pad := (64 - start%64) % 64
	extra := make([]byte, 4+pad) // an extra field of id 0x4246 ("FB") holding the padding
	binary.LittleEndian.PutUint16(extra, 0x4246)
	binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
	h := &zip.FileHeader{Name: name, Method: zip.Store, Extra: extra,
		CRC32: crc32.ChecksumIEEE(data), CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data))}
	w, err := z.zip.CreateRaw(h)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// ptFile is the name nanochat gives a step's weights.
func ptFile(dir string, step int) string {
	return filepath.Join(dir, fmt.Sprintf("model_%06d.pt", step))
}

// Import converts a step of a nanochat checkpoint folder (model_{step:06d}.pt and
// meta_{step:06d}.json) into a step of the gochat run folder dst. The optimizer state is
// left behind: the imported step can be evaluated, sampled and fine-tuned, not resumed.
func Import(src string, step int, dst string) error {
	meta, err := ReadMeta(src, step)
	if err != nil {
		return err
	}
	w, err := ReadPT(ptFile(src, step), meta.ModelConfig)
	if err != nil {
		return err
	}
	if err := meta.ModelConfig.Check(w); err != nil {
		return fmt.Errorf("%s: %w", ptFile(src, step), err)
	}
	return Save(dst, w, nil, meta)
}

// Export writes a step of the gochat run folder src as nanochat's files in dst: the
// weights as model_{step:06d}.pt (float32, nanochat's state_dict names) and the meta file,
// whose nanochat fields nanochat's checkpoint manager reads.
func Export(src string, step int, dst string) error {
	c, err := Load(src, step, false)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := WritePT(ptFile(dst, step), c.Meta.ModelConfig, c.Weights); err != nil {
		return err
	}
	return writeMeta(dst, c.Meta)
}
