// Package web serves a model over HTTP as nanochat's chat_web does: a single-page chat UI
// at /, a streaming completion API at /chat/completions (server-sent events), /health and
// /stats; and beside them OpenAI's chat completions API under /v1 (openai.go). Requests are
// checked against nanochat's limits, answered by a pool of workers with a bounded queue,
// and stopped when their client goes away.
package web

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gochat/sampler"
)

//go:embed ui.html
var page []byte

// nanochat's input limits (chat_web.py).
const (
	MaxMessages       = 500
	MaxMessageChars   = 8000
	MaxTotalChars     = 32000
	MaxTemperature    = 2.0
	MaxTopK           = 200
	MaxMaxTokens      = 4096
	maxBodyBytes      = 1 << 20 // far above what the limits let through
	defaultQueueBound = 16
)

// Options configure a Server.
type Options struct {
	Temperature float64 // defaults for requests that leave them out
	TopK        int
	MaxTokens   int
	Model       string        // the model's name in the OpenAI API (empty: "gochat")
	APIKey      string        // when set, the OpenAI API wants it as a bearer token
	Workers     int           // requests generated at once (0: 1)
	Queue       int           // requests that may wait for a worker; beyond it, 503 (0: 16)
	BodyTimeout time.Duration // for a request's body to arrive, or 408 (0: 30 s)
	Log         *log.Logger   // conversations and errors (nil: discarded)
}

// Server answers chat requests with one model.
type Server struct {
	eng     *sampler.Generator
	opt     Options
	workers chan struct{} // a token per worker
	waiting atomic.Int64  // requests queued or being served
	served  atomic.Int64
	busy    atomic.Int64
	mux     *http.ServeMux
	mu      sync.Mutex // serialises log lines
}

// New makes a server for eng.
func New(eng *sampler.Generator, opt Options) *Server {
	opt.Workers = max(opt.Workers, 1)
	if opt.Queue <= 0 {
		opt.Queue = defaultQueueBound
	}
	if opt.Log == nil {
		opt.Log = log.New(io.Discard, "", 0)
	}
	if opt.BodyTimeout <= 0 {
		opt.BodyTimeout = 30 * time.Second
	}
	if opt.Model == "" {
		opt.Model = "gochat"
	}
	s := &Server{eng: eng, opt: opt, workers: make(chan struct{}, opt.Workers), mux: http.NewServeMux()}
	for range opt.Workers {
		s.workers <- struct{}{}
	}
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /stats", s.stats)
	s.mux.HandleFunc("POST /chat/completions", s.completions)
	s.handleOpenAI()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "ready": true,
		"workers": s.opt.Workers, "available_workers": len(s.workers)})
}

// Stats is what GET /stats answers.
type Stats struct {
	TotalWorkers     int   `json:"total_workers"`
	AvailableWorkers int   `json:"available_workers"`
	BusyWorkers      int   `json:"busy_workers"`
	Queued           int   `json:"queued"`
	QueueBound       int   `json:"queue_bound"`
	Served           int64 `json:"requests_served"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	busy := int(s.busy.Load())
	writeJSON(w, http.StatusOK, Stats{TotalWorkers: s.opt.Workers, AvailableWorkers: s.opt.Workers - busy, BusyWorkers: busy,
		Queued: int(s.waiting.Load()) - busy, QueueBound: s.opt.Queue, Served: s.served.Load()})
}

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is the body of POST /chat/completions, as nanochat's API takes it.
type Request struct {
	Messages    []Message `json:"messages"`
	Temperature *float64  `json:"temperature"`
	TopK        *int      `json:"top_k"`
	MaxTokens   *int      `json:"max_tokens"`
	Stream      *bool     `json:"stream"`
}

// requestError is a request the server refuses: the HTTP status, the request field at
// fault (empty when none is), why, and the code OpenAI's API gives the error (empty: none).
type requestError struct {
	status int
	param  string
	msg    string
	code   string
}

func (e *requestError) Error() string { return e.msg }

// invalid is a 400 for the field param.
func invalid(param, format string, a ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, param: param, msg: fmt.Sprintf(format, a...)}
}

// check applies nanochat's limits and fills in the server's defaults.
func (req *Request) check(opt Options) (sampler.Settings, *requestError) {
	var s sampler.Settings
	if len(req.Messages) == 0 {
		return s, invalid("messages", "at least one message is required")
	}
	if len(req.Messages) > MaxMessages {
		return s, invalid("messages", "too many messages: %d, at most %d", len(req.Messages), MaxMessages)
	}
	total := 0
	for i, m := range req.Messages {
		n := utf8.RuneCountInString(m.Content)
		switch {
		case m.Role != "user" && m.Role != "assistant":
			return s, invalid("messages", "message %d: role %q, want user or assistant", i, m.Role)
		case n == 0:
			return s, invalid("messages", "message %d is empty", i)
		case n > MaxMessageChars:
			return s, invalid("messages", "message %d has %d characters, at most %d", i, n, MaxMessageChars)
		}
		total += n
	}
	if total > MaxTotalChars {
		return s, invalid("messages", "the conversation has %d characters, at most %d", total, MaxTotalChars)
	}
	s = sampler.Settings{Temperature: opt.Temperature, TopK: opt.TopK, MaxTokens: opt.MaxTokens, Seed: rand.Uint64()}
	if t := req.Temperature; t != nil {
		if !(*t >= 0 && *t <= MaxTemperature) {
			return s, invalid("temperature", "temperature %g is outside [0, %g]", *t, MaxTemperature)
		}
		s.Temperature = *t
	}
	if k := req.TopK; k != nil {
		if *k < 1 || *k > MaxTopK {
			return s, invalid("top_k", "top_k %d is outside [1, %d]", *k, MaxTopK)
		}
		s.TopK = *k
	}
	if m := req.MaxTokens; m != nil {
		if *m < 1 || *m > MaxMaxTokens {
			return s, invalid("max_tokens", "max_tokens %d is outside [1, %d]", *m, MaxMaxTokens)
		}
		s.MaxTokens = *m
	}
	return s, nil
}

// prompt renders the conversation as nanochat's chat_web does: <|bos|>, each message in its
// role's tokens, then <|assistant_start|> for the reply.
func (s *Server) prompt(msgs []Message) []int {
	tok := s.eng.Tok
	id := func(name string) int { i, _ := tok.Special(name); return i }
	ids := []int{id("<|bos|>")}
	for _, m := range msgs {
		role := "assistant"
		if m.Role == "user" {
			role = "user"
		}
		ids = append(ids, id("<|"+role+"_start|>"))
		ids = append(ids, tok.Encode(m.Content)...)
		ids = append(ids, id("<|"+role+"_end|>"))
	}
	return append(ids, id("<|assistant_start|>"))
}

// readBody decodes the JSON body of r into v, refusing a body over maxBodyBytes (413) or
// slower than the body timeout (408).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any) *requestError {
	// A sender slower than the body timeout does not hold the connection.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.opt.BodyTimeout))
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	err := dec.Decode(v)
	if err == nil {
		// Cleared for the reply: the server reads on to see the client leave.
		rc.SetReadDeadline(time.Time{})
		return nil
	}
	// The deadline stays, so that the server does not wait for the rest of a bad body.
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &requestError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the body is over %d bytes", maxBodyBytes)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &requestError{status: http.StatusRequestTimeout, msg: fmt.Sprintf("the body did not arrive within %v", s.opt.BodyTimeout)}
	}
	return invalid("", "malformed JSON: %v", err)
}

// checkLength refuses a prompt that leaves the model no position to answer in.
func (s *Server) checkLength(prompt []int) *requestError {
	if n := s.eng.Model.Config.RotaryLen(); len(prompt) >= n {
		return invalid("messages", "the conversation is %d tokens and the model holds %d: start a new one", len(prompt), n)
	}
	return nil
}

// errBusy is the answer to a request that finds the queue full.
var errBusy = &requestError{status: http.StatusServiceUnavailable, msg: "the server is busy; try again shortly"}

// admit queues a request for a worker, unless the queue is full (errBusy), and waits for
// one. Once it has generated its reply, the request calls done to count itself served and
// free the worker. A client that leaves while waiting gets neither done nor an error.
func (s *Server) admit(r *http.Request) (done func(), err *requestError) {
	if s.waiting.Add(1) > int64(s.opt.Workers+s.opt.Queue) {
		s.waiting.Add(-1)
		return nil, errBusy
	}
	select {
	case <-s.workers:
	case <-r.Context().Done():
		s.waiting.Add(-1)
		return nil, nil
	}
	s.busy.Add(1)
	return func() {
		s.served.Add(1)
		s.busy.Add(-1)
		s.workers <- struct{}{}
		s.waiting.Add(-1)
	}, nil
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := s.readBody(w, r, &req); err != nil {
		writeError(w, err.status, err.msg)
		return
	}
	settings, err := req.check(s.opt)
	if err != nil {
		writeError(w, err.status, err.msg)
		return
	}
	prompt := s.prompt(req.Messages)
	if err := s.checkLength(prompt); err != nil {
		writeError(w, err.status, err.msg)
		return
	}
	done, err := s.admit(r)
	if err != nil {
		writeError(w, err.status, err.msg)
		return
	}
	if done == nil { // the client left
		return
	}
	defer done()
	stream := req.Stream == nil || *req.Stream
	reply, genErr := s.generate(w, r, prompt, settings, stream)
	s.logConversation(req.Messages, reply, genErr)
}

// generate runs the request and writes its answer: server-sent events of whole characters
// when streaming, one JSON object otherwise.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, prompt []int, settings sampler.Settings, stream bool) (string, error) {
	var events *eventStream
	if stream {
		events = startEvents(w)
	}
	rp := s.newReply(nil)
	send := func(text string) {
		if events != nil && text != "" {
			events.send(map[string]any{"token": text})
		}
	}
	err := s.eng.Generate(r.Context(), prompt, settings, func(c sampler.Column) bool {
		send(rp.push(c.Tokens[0]))
		return rp.finish == "" && (events == nil || events.err == nil)
	})
	send(rp.close("length"))
	if err == nil && events != nil {
		err = events.err
	}
	switch {
	case stream && err == nil:
		events.send(map[string]any{"done": true})
	case stream && r.Context().Err() == nil: // the client is still there to be told
		events.send(map[string]any{"error": err.Error()})
	case !stream && err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"choices": []any{map[string]any{
			"message": Message{Role: "assistant", Content: rp.content()}, "finish_reason": "stop"}}})
	case !stream:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
	return rp.content(), err
}

// logConversation writes one JSON line per conversation answered.
func (s *Server) logConversation(msgs []Message, reply string, err error) {
	entry := map[string]any{"time": time.Now().UTC().Format(time.RFC3339), "messages": msgs, "reply": reply}
	if err != nil {
		entry["error"] = err.Error()
	}
	line, _ := json.Marshal(entry)
	s.mu.Lock()
	s.opt.Log.Println(string(line))
	s.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
