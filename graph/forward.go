package graph

// nanochat's GPT, written once for its two executions: the training graph, whose
// operations add Gorgonia nodes (nodeOps, model.go), and generation's KV-cached pass, whose
// operations compute at once on slices (sliceOps, cached.go).

// matrix names a block matrix of layer: q|k|v (one matrix in both executions), the
// attention's output projection, and the MLP's two.
type matrix struct{ layer, which int }

const (
	qkvMatrix = iota
	projMatrix
	fcMatrix
	mlpProjMatrix
)

// ops are the operations of the forward pass on values of type X, rows of tokens.
type ops[X any] interface {
	embed() X                 // the embeddings of the input ids
	norm(x X) X               // RMSNorm of each row, no weights
	linear(x X, w matrix) X   // x·Wᵀ, W in PyTorch's [out, in] layout
	rotary(qkv X) X           // the rotary embedding of the q and k heads of q|k|v rows
	qkNorm(qkv X) X           // RMSNorm of each q and k head
	attention(l int, qkv X) X // causal attention of layer l over q|k|v rows
	add(a, b X) X
	relu2(x X) X
	// block applies body, transformer block l, to the residual stream x: what activation
	// recomputation runs again, keeping only x.
	block(l int, x X, body func(X) X) X
}

// trunk is the network up to lm_head, nanochat's GPT.forward: embedding, norm, the blocks
// (attention with rotary and QK norm, then a ReLU² MLP, each added to the residual stream),
// final norm.
func trunk[X any](o ops[X], layers int) X {
	x := o.norm(o.embed())
	for l := range layers {
		x = o.block(l, x, func(x X) X {
			qkv := o.qkNorm(o.rotary(o.linear(o.norm(x), matrix{l, qkvMatrix})))
			x = o.add(x, o.linear(o.attention(l, qkv), matrix{l, projMatrix}))
			h := o.relu2(o.linear(o.norm(x), matrix{l, fcMatrix}))
			return o.add(x, o.linear(h, matrix{l, mlpProjMatrix}))
		})
	}
	return o.norm(x)
}
