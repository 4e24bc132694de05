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

// Prefetch is the number of tokenized row groups a Loader holds ready beyond the one it
// is cutting: its memory is bounded by Prefetch+2 row groups of tokens.
const Prefetch = 2

// Loader streams B×(T+1) windows of tokens from shards as nanochat's pretraining loader
// does: every document is <|bos|> + its tokens, documents follow one another across rows
// and row groups, and each batch takes B·T+1 tokens (the last one is not reused). Row groups
// are strided by (rank, world) for several processes. It loops over the shards forever.
//
// A background goroutine reads and tokenizes row groups (on all processors) ahead of the
// batches, so that a training step rarely waits for data.
type Loader struct {
	B, T  int
	pos   Position
	group *rowGroup // the row group being cut, or nil
	ready chan *rowGroup
	stop  chan struct{}
	first bool // the next row group is the one pos starts in
}

// rowGroup is a row group's documents, tokenized, or the error met reading it.
type rowGroup struct {
	epoch, shard, index int
	docs                [][]int
	err                 error
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
	if pos.Shard < 0 || pos.Shard >= len(shards) || pos.RowGroup < 0 || pos.RowGroup%world != rank ||
		pos.Doc < 0 || pos.Token < 0 || pos.Epoch < 0 {
		return nil, fmt.Errorf("loader: position %+v is not one of rank %d of %d over %d shards", pos, rank, world, len(shards))
	}
	if pos.RowGroup > rank || pos.Doc > 0 || pos.Token > 0 { // a saved position: it must lie in its shard
		s, err := OpenShard(shards[pos.Shard])
		if err != nil {
			return nil, err
		}
		groups := s.RowGroups()
		s.Close()
		if pos.RowGroup >= groups {
			return nil, fmt.Errorf("loader: position %+v is past the %d row groups of %s", pos, groups, shards[pos.Shard])
		}
	}
	if rank > 0 {
		if err := checkRowGroup(shards, rank, world); err != nil {
			return nil, err
		}
	}
	l := &Loader{B: B, T: T, pos: pos, ready: make(chan *rowGroup, Prefetch), stop: make(chan struct{}), first: true}
	r := &reader{shards: shards, tok: tok, bos: bos, rank: rank, world: world}
	go r.run(pos, l.ready, l.stop)
	return l, nil
}

// checkRowGroup makes sure rank has data of its own: some shard with more than rank row
// groups (the reader would otherwise find none, after the first ranks had started).
func checkRowGroup(shards []string, rank, world int) error {
	most := 0
	for _, path := range shards {
		s, err := OpenShard(path)
		if err != nil {
			return err
		}
		most = max(most, s.RowGroups())
		s.Close()
		if most > rank {
			return nil
		}
	}
	return fmt.Errorf("loader: the %d shards hold at most %d row groups each, and each of %d ranks needs one of its own: use at most %d ranks, or more data",
		len(shards), most, world, max(most, 1))
}

// Position is where the next batch starts.
func (l *Loader) Position() Position { return l.pos }

// Next returns the next batch: inputs and targets of B·T ids each, row-major, targets the
// inputs shifted by one token.
func (l *Loader) Next() (inputs, targets []int, err error) {
	n := l.B*l.T + 1
	window := make([]int, 0, n)
	for len(window) < n {
		if l.group == nil {
			g, ok := <-l.ready
			if !ok {
				return nil, nil, fmt.Errorf("loader: closed")
			}
			if g.err != nil {
				return nil, nil, g.err
			}
			if g.epoch != l.pos.Epoch || g.shard != l.pos.Shard || g.index != l.pos.RowGroup { // the next row group
				l.pos = Position{Epoch: g.epoch, Shard: g.shard, RowGroup: g.index}
			} else if l.first && l.pos.Doc > len(g.docs) {
				return nil, nil, fmt.Errorf("loader: position %+v is past the %d documents of its row group", l.pos, len(g.docs))
			}
			l.group, l.first = g, false
		}
		if l.pos.Doc >= len(l.group.docs) {
			l.group = nil
			continue
		}
		toks := l.group.docs[l.pos.Doc]
		if l.pos.Token > len(toks) {
			return nil, nil, fmt.Errorf("loader: position %+v is past its document's %d tokens", l.pos, len(toks))
		}
		take := min(n-len(window), len(toks)-l.pos.Token)
		window = append(window, toks[l.pos.Token:l.pos.Token+take]...)
		l.pos.Token += take
		if l.pos.Token == len(toks) {
			l.pos.Doc, l.pos.Token = l.pos.Doc+1, 0
		}
	}
	return window[:n-1], window[1:], nil
}

// Close stops the background reader.
func (l *Loader) Close() error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	return nil
}

// reader walks the row groups of one rank, reading and tokenizing them.
type reader struct {
	shards      []string
	tok         *tokenizer.Tokenizer
	bos         int
	rank, world int
}

// run sends the row groups from pos on to out, in order, until stop is closed or an error
// is sent.
func (r *reader) run(pos Position, out chan<- *rowGroup, stop <-chan struct{}) {
	defer close(out)
	epoch, shard, index := pos.Epoch, pos.Shard, pos.RowGroup
	var open *Shard
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	for misses := 0; ; {
		g := &rowGroup{epoch: epoch, shard: shard, index: index}
		if open == nil {
			open, g.err = OpenShard(r.shards[shard])
		}
		if g.err == nil && index >= open.RowGroups() { // next shard, perhaps next epoch
			open.Close()
			open = nil
			shard, index = shard+1, r.rank
			if shard == len(r.shards) {
				shard, epoch = 0, epoch+1
			}
			if misses++; misses > len(r.shards) {
				g.err = fmt.Errorf("loader: no row group for rank %d of %d in %d shards", r.rank, r.world, len(r.shards))
			} else {
				continue
			}
		}
		if g.err == nil {
			var docs []string
			if docs, g.err = open.ReadRowGroup(index); g.err == nil {
				g.docs = r.tok.EncodeBatch(docs, []int{r.bos}, nil)
				misses = 0
			} else {
				g.err = fmt.Errorf("%s: %w", r.shards[shard], g.err)
			}
		}
		select {
		case out <- g:
		case <-stop:
			return
		}
		if g.err != nil {
			return
		}
		index += r.world
	}
}

// Tokens counts the tokens a Loader over shards yields in one pass (each document's
// <|bos|> and its tokens), up to limit: it stops reading once it has limit.
func Tokens(shards []string, tok *tokenizer.Tokenizer, limit int) (int, error) {
	bos, err := tok.Special("<|bos|>")
	if err != nil {
		return 0, err
	}
	n := 0
	err = EachRowGroup(shards, func(docs []string) bool {
		for _, ids := range tok.EncodeBatch(docs, []int{bos}, nil) {
			n += len(ids)
		}
		return n < limit
	})
	return min(n, limit), err
}
