package graph

import (
	"gochat/layers"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// recomputed is the order of a Train graph's operations with each block's forward pass
// run again just before the first backward operation that reads one of its values: the
// block's forward values then die within the forward pass, and only the block's input
// and output (the residual stream) live until the backward pass.
func (m *Model) recomputed(order []*G.Node) []*G.Node {
	forward := ancestors(m.loss)
	reads := m.forwardReads(order, forward)
	blockOf := map[*G.Node]int{}
	for l, b := range m.blocks {
		for _, n := range b.nodes {
			if n != b.out && n.Op() != nil {
				blockOf[n] = l
			}
		}
	}
	done := map[int]bool{}
	var out []*G.Node
	for _, n := range order {
		if !forward[n] {
			for _, d := range reads(n) {
				l, ok := blockOf[d]
				if !ok || done[l] {
					continue
				}
				done[l] = true
				for _, f := range order {
					if bl, in := blockOf[f]; in && bl == l && forward[f] {
						out = append(out, f)
					}
				}
			}
		}
		out = append(out, n)
	}
	return out
}

// recomputedNorms is the order of a Train graph's operations with each norm run again just
// before the first backward operation that reads its result, where the norm's input lives
// that long anyway (the norm's own gradient reads it): the result then dies within the
// forward pass, for one more pass over its rows. A norm whose input is itself run again
// (the first, of the embeddings) runs after it.
func (m *Model) recomputedNorms(order []*G.Node) []*G.Node {
	forward := ancestors(m.loss)
	reads := m.forwardReads(order, forward)
	first, last := map[*G.Node]int{}, map[*G.Node]int{} // a forward value's first and last backward readers
	for i, n := range order {
		if forward[n] {
			continue
		}
		for _, d := range reads(n) {
			if _, seen := first[d]; !seen {
				first[d] = i
			}
			last[d] = i
		}
	}
	again := map[*G.Node]bool{}
	for _, n := range m.norms {
		f, read := first[n]
		again[n] = read
		for _, in := range inputsOf(n) {
			if l, kept := last[in]; !kept || l < f {
				again[n] = false
			}
		}
	}
	var out []*G.Node
	var rerun func(n *G.Node)
	rerun = func(n *G.Node) {
		again[n] = false
		for _, in := range inputsOf(n) {
			if again[in] {
				rerun(in)
			}
		}
		out = append(out, n)
	}
	for _, n := range order {
		if !forward[n] {
			for _, d := range reads(n) {
				if again[d] {
					rerun(d)
				}
			}
		}
		out = append(out, n)
	}
	return out
}

// forwardReads returns what an operation of a Train graph's order reads of the forward
// pass: its inputs, and the forward operations that wrote the buffers it reads (a norm's
// gradient reads the statistics the norm saved).
func (m *Model) forwardReads(order []*G.Node, forward map[*G.Node]bool) func(*G.Node) []*G.Node {
	owner := map[*layers.Buffer]*G.Node{} // the forward node that writes a buffer
	for _, n := range order {
		if p, ok := n.Op().(layers.Planned); ok && forward[n] {
			for _, w := range p.Plan(m.Engine, shapesOf(inputsOf(n))).Writes {
				owner[w.Buf] = n
			}
		}
	}
	return func(n *G.Node) []*G.Node {
		deps := inputsOf(n)
		if p, ok := n.Op().(layers.Planned); ok {
			for _, b := range p.Plan(m.Engine, shapesOf(deps)).Reads {
				if o := owner[b]; o != nil {
					deps = append(deps, o)
				}
			}
		}
		return deps
	}
}

// ancestors is n and every node it is computed from.
func ancestors(n *G.Node) map[*G.Node]bool {
	seen := map[*G.Node]bool{n: true}
	for stack := []*G.Node{n}; len(stack) > 0; {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, in := range inputsOf(top) {
			if !seen[in] {
				seen[in] = true
				stack = append(stack, in)
			}
		}
	}
	return seen
}

// shapesOf is the nodes' shapes.
func shapesOf(nodes []*G.Node) []tensor.Shape {
	s := make([]tensor.Shape, len(nodes))
	for i, n := range nodes {
		s[i] = n.Shape()
	}
	return s
}
