package graph

import (
	"fmt"

	"gochat/internal/memplan"
	"gochat/layers"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A program runs a graph's operations in the order Gorgonia's own machine would (its
// topological sort, reversed), on memory planned for the whole step: every value the step
// writes is a piece of one allocation, and values whose lifetimes do not overlap share
// memory. With recomputation, a block's forward operations run a second time just before
// the backward pass needs them, so that between the two passes the block keeps only its
// input.
type program struct {
	steps  []step
	values []*tensor.Dense // each planned value's memory
	slab   []float32       // the allocation they lie in
	memory Memory
}

// step is one operation of the program.
type step struct {
	node   *G.Node
	inputs []*G.Node
	args   []G.Value // the inputs' values, gathered anew each run
	// writes are the buffers given memory for this step's writes, and the values they
	// hold; for one of Gorgonia's own operations, writes is its result alone, handed to it
	// as preallocated (it may be an input's memory, as the plan lets it).
	writes []binding
	result int // the value of the step's result, checked after it runs; -1 when unplanned
}

// binding is a buffer (nil for a Gorgonia operation's result) and the value it holds.
type binding struct {
	buf   *layers.Buffer
	value int
}

// Memory is what a graph's step needs, in bytes, as planned: the token ids aside (8 bytes
// a token), and the optimizers' state, which the trainer keeps.
type Memory struct {
	Weights   int64 // the parameters (a graph that shares another's counts none)
	Gradients int64 // the parameters' gradients, the results of a training step
	// Activations is the rest of the planned allocation: the forward values the backward
	// pass reads, the gradients flowing back, the lm head's chunk of logits.
	Activations int64
	// Peak is the lower bound of any placement of the same values: the most bytes alive
	// at one step, gradients included. Gradients + Activations is within a few percent.
	Peak int64
}

// Total is the bytes of the graph's memory.
func (m Memory) Total() int64 { return m.Weights + m.Gradients + m.Activations }

// Recompute says which forward values a training step computes again during the backward
// pass instead of keeping them.
type Recompute int

const (
	RecomputeNone   Recompute = iota // keep every value the backward pass reads
	RecomputeBlocks                  // each block keeps its input and runs again for its backward
)

// String is the name ParseRecompute reads: "none" or "blocks".
func (r Recompute) String() string { return [...]string{"none", "blocks"}[r] }

// ParseRecompute reads "none" or "blocks".
func ParseRecompute(s string) (Recompute, error) {
	for r := RecomputeNone; r <= RecomputeBlocks; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("recompute %q: want none or blocks", s)
}

// compile schedules the graph's operations, plans their memory and, when alloc is set,
// allocates it on the model's engine. results are read after the step: their values stay.
func (m *Model) compile(results []*G.Node, alloc bool) (*program, error) {
	sorted, err := G.Sort(m.g)
	if err != nil {
		return nil, fmt.Errorf("sorting the graph: %w", err)
	}
	var order []*G.Node
	for i := len(sorted) - 1; i >= 0; i-- {
		if sorted[i].Op() != nil {
			order = append(order, sorted[i])
		}
	}
	if m.Recompute == RecomputeBlocks && m.Mode == Train {
		order = m.recomputed(order)
	}
	p := &program{}
	for _, n := range order {
		p.steps = append(p.steps, step{node: n, inputs: inputsOf(n), result: -1})
	}
	pl := &planner{eng: m.Engine, cur: map[*layers.Buffer]int{}, nodeVals: map[*G.Node][]int{}}
	if err := pl.walk(p.steps, results); err != nil {
		return nil, err
	}
	if p.memory, err = pl.place(); err != nil {
		return nil, err
	}
	if alloc {
		var reuse []float32
		if m.Share != nil && m.ShareMemory && len(m.Share.prog.slab) >= pl.total {
			reuse = m.Share.prog.slab
		}
		p.slab, p.values = pl.allocate(reuse)
	}
	return p, nil
}

// inputsOf is a node's inputs, in order.
func inputsOf(n *G.Node) []*G.Node {
	var in []*G.Node
	for it := n.Graph().From(n.ID()); it.Next(); {
		in = append(in, it.Node().(*G.Node))
	}
	return in
}

// planner follows the values a program writes: which step writes each and which is the
// last to read it.
type planner struct {
	eng      tensor.Engine
	values   []plannedValue
	cur      map[*layers.Buffer]int // the value a buffer holds now
	nodeVals map[*G.Node][]int      // the values a node's result lies in
	aliases  []alias
	offsets  []int // of each value, once placed
	total    int   // floats of the allocation
}

type plannedValue struct {
	shape       tensor.Shape
	first, last int
	root        int  // the value whose memory this one takes (itself when none)
	result      bool // read after the step: a gradient or the output
}

// alias is a value that may take the memory of an input that dies where it is written.
type alias struct {
	step, value int
	inputs      []int // candidate values, in the op's order of preference
}

// newValue records a value written at step s.
func (pl *planner) newValue(shape tensor.Shape, s int) int {
	pl.values = append(pl.values, plannedValue{shape: shape, first: s, last: s, root: len(pl.values)})
	return len(pl.values) - 1
}

func (pl *planner) read(v, s int) { pl.values[v].last = max(pl.values[v].last, s) }

// walk follows the steps' writes and reads; the results' values live to the end.
func (pl *planner) walk(steps []step, results []*G.Node) error {
	for s := range steps {
		st := &steps[s]
		shapes := shapesOf(st.inputs)
		inVals := make([][]int, len(st.inputs))
		for i, in := range st.inputs {
			inVals[i] = pl.nodeVals[in]
			for _, v := range inVals[i] {
				pl.read(v, s)
			}
		}
		switch op := st.node.Op().(type) {
		case layers.Planned:
			plan := op.Plan(pl.eng, shapes)
			for _, b := range plan.Reads {
				v, ok := pl.cur[b]
				if !ok {
					return fmt.Errorf("planning %v: it reads a value no earlier operation wrote", op)
				}
				pl.read(v, s)
			}
			for _, w := range plan.Writes {
				v := pl.newValue(w.Shape, s)
				pl.cur[w.Buf] = v
				st.writes = append(st.writes, binding{buf: w.Buf, value: v})
				pl.noteAlias(s, v, w.Alias, inVals)
			}
			if plan.Result != nil {
				v, ok := pl.cur[plan.Result]
				if !ok {
					return fmt.Errorf("planning %v: its result is a value no operation wrote", op)
				}
				pl.nodeVals[st.node], st.result = []int{v}, v
			}
		case G.UsePreallocDoer:
			if st.node.IsScalar() || st.node.Shape().TotalSize() == 0 {
				pl.nodeVals[st.node] = unplanned(inVals)
				break
			}
			v := pl.newValue(st.node.Shape(), s)
			pl.nodeVals[st.node], st.result = []int{v}, v
			st.writes = []binding{{value: v}}
			if st.node.Op().OverwritesInput() == 0 {
				pl.noteAlias(s, v, []int{0}, inVals)
			}
		default:
			// An operation that makes its own result may hand back a view of an input:
			// its inputs live as long as it does.
			pl.nodeVals[st.node] = unplanned(inVals)
		}
	}
	for _, n := range results {
		for _, v := range pl.nodeVals[n] {
			pl.values[v].last = len(steps)
			pl.values[v].result = true
		}
	}
	return nil
}

// unplanned is every value an unplanned result may lie in: its inputs'.
func unplanned(inVals [][]int) []int {
	var all []int
	for _, vs := range inVals {
		all = append(all, vs...)
	}
	return all
}

func (pl *planner) noteAlias(s, v int, inputs []int, inVals [][]int) {
	var cands []int
	for _, i := range inputs {
		if len(inVals[i]) == 1 {
			cands = append(cands, inVals[i][0])
		}
	}
	if len(cands) > 0 {
		pl.aliases = append(pl.aliases, alias{step: s, value: v, inputs: cands})
	}
}

// root is the value whose memory v ends up in.
func (pl *planner) root(v int) int {
	for pl.values[v].root != v {
		v = pl.values[v].root
	}
	return v
}

// place lets each value that may take a dying input's memory do so, then places the
// values' memory with memplan.
func (pl *planner) place() (Memory, error) {
	var mem Memory
	for _, v := range pl.values {
		if v.result {
			mem.Gradients += int64(v.shape.TotalSize()) * 4
		}
	}
	taken := map[int]bool{} // inputs whose memory a value at their last step took
	for _, a := range pl.aliases {
		for _, u := range a.inputs {
			in := pl.values[u]
			if in.last != a.step || in.result || taken[u] || in.shape.TotalSize() != pl.values[a.value].shape.TotalSize() {
				continue
			}
			taken[u] = true
			pl.values[a.value].root = pl.root(u)
			break
		}
	}
	// A root's memory lives over the values that took it.
	for v := range pl.values {
		if r := pl.root(v); r != v {
			pl.values[r].last = max(pl.values[r].last, pl.values[v].last)
		}
	}
	var roots []int
	var blocks []memplan.Value
	for v, pv := range pl.values {
		if pv.root == v {
			roots = append(roots, v)
			blocks = append(blocks, memplan.Value{Size: alignedFloats(pv.shape.TotalSize()), First: pv.first, Last: pv.last})
		}
	}
	offsets, total, err := memplan.Place(blocks)
	if err != nil {
		return mem, err
	}
	at := make([]int, len(pl.values))
	for i, r := range roots {
		at[r] = offsets[i]
	}
	pl.offsets = make([]int, len(pl.values))
	for v := range pl.values {
		pl.offsets[v] = at[pl.root(v)]
	}
	mem.Activations = int64(total)*4 - mem.Gradients
	mem.Peak = int64(memplan.Peak(blocks)) * 4
	pl.total = total
	return mem, nil
}

// alignedFloats rounds n up to 64 floats (256 bytes), the alignment device kernels and
// products want.
func alignedFloats(n int) int { return (n + 63) &^ 63 }

// allocate makes the planned memory on the engine, or takes slab when it is not nil, and
// returns it with each value's tensor in it.
func (pl *planner) allocate(slab []float32) ([]float32, []*tensor.Dense) {
	if slab == nil && pl.total > 0 {
		slab = layers.NewTensor(pl.eng, tensor.Float32, pl.total).Float32s()
	}
	ts := make([]*tensor.Dense, len(pl.values))
	for v, pv := range pl.values {
		off, n := pl.offsets[v], pv.shape.TotalSize()
		ts[v] = tensor.New(tensor.WithShape(pv.shape...), tensor.WithBacking(slab[off:off+n:off+n]), tensor.WithEngine(pl.eng))
	}
	return slab, ts
}

// run runs the steps once.
func (p *program) run() error {
	for i := range p.steps {
		st := &p.steps[i]
		for _, w := range st.writes {
			if w.buf != nil {
				w.buf.Bind(p.values[w.value])
			}
		}
		in := st.args[:0]
		for _, n := range st.inputs {
			in = append(in, n.Value())
		}
		st.args = in
		op := st.node.Op()
		var v G.Value
		var err error
		switch {
		case st.writes != nil && st.writes[0].buf == nil:
			v, err = op.(G.UsePreallocDoer).UsePreallocDo(p.values[st.writes[0].value], in...)
		default:
			v, err = op.Do(in...)
		}
		if err != nil {
			return fmt.Errorf("%v: %w", op, err)
		}
		if st.result >= 0 && !sameMemory(v, p.values[st.result]) {
			return fmt.Errorf("%v wrote its result outside the memory planned for it", op)
		}
		if err := G.UnsafeLet(st.node, v); err != nil {
			return fmt.Errorf("%v: %w", op, err)
		}
	}
	return nil
}

// sameMemory reports whether v is a tensor over t's memory.
func sameMemory(v G.Value, t *tensor.Dense) bool {
	d, ok := v.(*tensor.Dense)
	return ok && d.Uintptr() == t.Uintptr() && d.Shape().TotalSize() == t.Shape().TotalSize()
}

// Size formats a number of bytes for a person: in GiB from one GiB, else in MiB.
func Size(bytes int64) string {
	if bytes >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(bytes)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}
