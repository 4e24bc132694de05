package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"gochat/tokenizer"
)

// reply is one reply as its row of a generation is sampled, shared by both completion
// endpoints: its tokens decoded into whole characters, ended by the model's end token, by
// a stop sequence (which it leaves out) or by the caller, and the part the client has.
type reply struct {
	dec      *tokenizer.StreamDecoder
	end, bos int      // the tokens that end a reply
	stops    []string // stop sequences
	text     []byte   // what it says so far
	sent     int      // how much of text has been handed out; the rest may be the start of a stop sequence
	tokens   int      // tokens it holds, its end token left out
	finish   string   // why it ended: "stop" (its end token or a stop sequence) or the caller's reason; "" while it goes on
}

// newReply starts a reply that ends at any of stops.
func (s *Server) newReply(stops []string) *reply {
	end, _ := s.eng.Tok.Special("<|assistant_end|>")
	bos, _ := s.eng.Tok.Special("<|bos|>")
	return &reply{dec: s.eng.Tok.NewStreamDecoder(), end: end, bos: bos, stops: stops}
}

// push adds the row's next token and returns the text that is now final: whole
// characters, less a tail that may be the start of a stop sequence.
func (rp *reply) push(t int) string {
	switch {
	case rp.finish != "": // the row goes on after a stop sequence, unread
		return ""
	case t == rp.end || t == rp.bos:
		return rp.close("stop")
	}
	rp.tokens++
	piece, err := rp.dec.Push(t)
	if err != nil { // an id outside the vocabulary, which the model never samples
		return ""
	}
	return rp.add(piece)
}

// close ends the reply for reason, unless it has ended, and returns the rest of its text.
func (rp *reply) close(reason string) string {
	if rp.finish != "" {
		return ""
	}
	out := rp.add(rp.dec.Flush())
	if rp.finish != "" { // the last bytes completed a stop sequence
		return out
	}
	rp.finish = reason
	return out + rp.handOut(len(rp.text))
}

// add appends piece to the text and hands out what no stop sequence can claim. A stop
// sequence found ends the reply there.
func (rp *reply) add(piece string) string {
	rp.text = append(rp.text, piece...)
	cut, hold := -1, 0
	for _, stop := range rp.stops {
		if i := bytes.Index(rp.text[rp.sent:], []byte(stop)); i >= 0 && (cut < 0 || rp.sent+i < cut) {
			cut = rp.sent + i
		}
		hold = max(hold, partialStop(rp.text[rp.sent:], stop))
	}
	if cut >= 0 {
		rp.text, rp.finish = rp.text[:cut], "stop"
		return rp.handOut(cut)
	}
	return rp.handOut(len(rp.text) - hold)
}

// handOut returns the text from where the client's part ends to upto, now the client's.
func (rp *reply) handOut(upto int) string {
	out := string(rp.text[rp.sent:upto])
	rp.sent = upto
	return out
}

// content is the reply's text: all of it once it has ended.
func (rp *reply) content() string { return string(rp.text) }

// partialStop is the length of the longest end of text that begins stop without being all
// of it.
func partialStop(text []byte, stop string) int {
	for n := min(len(stop)-1, len(text)); n > 0; n-- {
		if bytes.HasSuffix(text, []byte(stop[:n])) {
			return n
		}
	}
	return 0
}

// eventStream writes server-sent events, each flushed to the client at once, and keeps the
// first write error: once the client has gone, nothing more is written.
type eventStream struct {
	w   http.ResponseWriter
	err error
}

// startEvents answers 200 with an event stream.
func startEvents(w http.ResponseWriter) *eventStream {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &eventStream{w: w}
}

// send writes v as the JSON data of an event.
func (es *eventStream) send(v any) {
	raw, err := json.Marshal(v)
	if err == nil {
		es.data(raw)
	} else if es.err == nil {
		es.err = fmt.Errorf("web: an event of %T: %w", v, err)
	}
}

// data writes an event of data, unless the client has gone.
func (es *eventStream) data(data []byte) {
	if es.err != nil {
		return
	}
	if _, es.err = fmt.Fprintf(es.w, "data: %s\n\n", data); es.err == nil {
		es.err = http.NewResponseController(es.w).Flush()
	}
}
