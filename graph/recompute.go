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
	blockOf := map[*G.Node]int{}
	for l, b := range m.blocks {
		for _, n := range b.nodes {
			if n != b.out && n.Op() != nil {
				blockOf[n] = l
			}
		}
	}
	owner := map[*layers.Buffer]*G.Node{} // the forward node that writes a buffer
	for _, n := range order {
		if p, ok := n.Op().(layers.Planned); ok && forward[n] {
			for _, w := range p.Plan(m.Engine, shapesOf(inputsOf(n))).Writes {
				owner[w.Buf] = n
			}
		}
	}
	done := map[int]bool{}
	var out []*G.Node
	for _, n := range order {
		if !forward[n] {
			deps := inputsOf(n)
			if p, ok := n.Op().(layers.Planned); ok {
				for _, b := range p.Plan(m.Engine, shapesOf(deps)).Reads {
					if o := owner[b]; o != nil {
						deps = append(deps, o)
					}
				}
			}
			for _, d := range deps {
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
