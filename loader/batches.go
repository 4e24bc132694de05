package loader

import (
	"fmt"

	"gochat/tokenizer"
)

// Position is where a Loader stands: the next batch starts at token Token of document Doc
// (its tokens counting the leading <|bos|>) of row group RowGroup of shard Shard, in epoch
// Epoch. It is small and serialisable (JSON), and a Loader started from it yields exactly
// the batches an uninterrupted one would have.
type Position struct {
	Epoch, Shard, RowGroup, Doc, Token int
}

// Loader streams B×(T+1) windows of tokens from shards as nanochat's pretraining loader
// does: every document is <|bos|> + its tokens, documents follow one another across rows
// and row groups, and each batch takes B·T+1 tokens (the last one is not reused). Row groups
// are strided by (rank, world) for several processes. It loops over the shards forever.
type Loader struct {
	shards      []string
	B, T        int
	rank, world int
	tok         *tokenizer.Tokenizer
	bos         int

	pos   Position
	shard *Shard   // open shard at pos.Shard, or nil
	docs  []string // row group pos.RowGroup
	toks  []int    // tokens of document pos.Doc
}

// NewLoader makes a loader over shards (in order) for batches of B rows of T tokens, for
// process rank of world, starting at pos.
func NewLoader(shards []string, tok *tokenizer.Tokenizer, B, T, rank, world int, pos Position) (*Loader, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("loader: no shards")
	}
	if B <= 0 || T <= 0 || world <= 0 || rank < 0 || rank >= world {
		return nil, fmt.Errorf("loader: batch %d×%d, rank %d of %d", B, T, rank, world)
	}
	bos, err := tok.Special("<|bos|>")
	if err != nil {
		return nil, err
	}
	if pos == (Position{}) {
		pos.RowGroup = rank
	}
	return &Loader{shards: shards, B: B, T: T, rank: rank, world: world, tok: tok, bos: bos, pos: pos}, nil
}

// Position is where the next batch starts.
func (l *Loader) Position() Position { return l.pos }

// Next returns the next batch: inputs and targets of B·T ids each, row-major, targets the
// inputs shifted by one token.
func (l *Loader) Next() (inputs, targets []int, err error) {
	n := l.B*l.T + 1
	window := make([]int, 0, n)
	for len(window) < n {
		toks, err := l.document()
		if err != nil {
			return nil, nil, err
		}
		take := min(n-len(window), len(toks)-l.pos.Token)
		window = append(window, toks[l.pos.Token:l.pos.Token+take]...)
		l.pos.Token += take
		if l.pos.Token == len(toks) {
			l.pos.Doc, l.pos.Token, l.toks = l.pos.Doc+1, 0, nil
		}
	}
	return window[:n-1], window[1:], nil
}

// document returns the tokens of the document at the position, moving past exhausted row
// groups and shards.
func (l *Loader) document() ([]int, error) {
	for l.toks == nil {
		if l.docs != nil && l.pos.Doc < len(l.docs) {
			l.toks = append([]int{l.bos}, l.tok.Encode(l.docs[l.pos.Doc])...)
			break
		}
		if err := l.loadRowGroup(); err != nil {
			return nil, err
		}
	}
	return l.toks, nil
}

// loadRowGroup reads the row group at the position (the documents of a row group already
// read are finished: move on), opening shards as needed.
func (l *Loader) loadRowGroup() error {
	if l.docs != nil { // the current row group is done
		l.docs, l.pos.Doc, l.pos.RowGroup = nil, 0, l.pos.RowGroup+l.world
	}
	for tries := 0; ; tries++ {
		if tries > 2*len(l.shards) {
			return fmt.Errorf("loader: no row group for rank %d of %d in %d shards", l.rank, l.world, len(l.shards))
		}
		if l.shard == nil {
			s, err := OpenShard(l.shards[l.pos.Shard])
			if err != nil {
				return err
			}
			l.shard = s
		}
		if l.pos.RowGroup < l.shard.RowGroups() {
			docs, err := l.shard.ReadRowGroup(l.pos.RowGroup)
			if err != nil {
				return fmt.Errorf("%s: %w", l.shards[l.pos.Shard], err)
			}
			l.docs = docs
			return nil
		}
		l.shard.Close()
		l.shard = nil
		l.pos.Shard, l.pos.RowGroup, l.pos.Doc = l.pos.Shard+1, l.rank, 0
		if l.pos.Shard == len(l.shards) {
			l.pos.Shard, l.pos.Epoch = 0, l.pos.Epoch+1
		}
	}
}

// Close closes the open shard.
func (l *Loader) Close() error {
	if l.shard != nil {
		return l.shard.Close()
	}
	return nil
}
