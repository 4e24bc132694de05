package web

// OpenAI's chat completions API, so that OpenAI's clients and the tools built on them can
// talk to a gochat model: POST /v1/chat/completions (streaming or not, n choices, stop
// sequences, top-p, seeds, usage), GET /v1/models and GET /v1/models/{model}, with
// OpenAI's error bodies. Requests go through the same limits, queue and workers as
// nanochat's /chat/completions, and a client that leaves stops its reply the same way.
//
// The server serves one model, named by Options.Model. A request may leave out "model"; one
// that names another model gets 404 model_not_found, as OpenAI answers, so that a client
// configured for some other model learns it at once instead of getting a reply it did not
// ask for. Fields of OpenAI's API that gochat has no use for (penalties, logprobs, tools,
// response_format, user) are read and ignored.

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"gochat/sampler"
)

// Limits of the OpenAI API beyond nanochat's.
const (
	MaxChoices   = 8   // n: each choice is a row with a KV cache of its own
	MaxStops     = 4   // stop sequences, as OpenAI allows
	MaxStopBytes = 200 // bytes in a stop sequence
)

// handleOpenAI routes /v1 on the server's mux, behind the API key when there is one.
func (s *Server) handleOpenAI() {
	model := Model{ID: s.opt.Model, Object: "model", Created: time.Now().Unix(), OwnedBy: "gochat"}
	s.mux.HandleFunc("POST /v1/chat/completions", s.authorized(s.chatCompletions))
	s.mux.HandleFunc("GET /v1/models", s.authorized(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, ModelList{Object: "list", Data: []Model{model}})
	}))
	s.mux.HandleFunc("GET /v1/models/{model}", s.authorized(func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkModel(r.PathValue("model")); err != nil {
			writeAPIError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, model)
	}))
	s.mux.HandleFunc("/v1/", s.authorized(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, &requestError{status: http.StatusNotFound, msg: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)})
	}))
}

// authorized lets a request through to h when the server has no API key, or when the
// request carries it as "Authorization: Bearer KEY"; others get 401 invalid_api_key.
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	if s.opt.APIKey == "" {
		return h
	}
	key := sha256.Sum256([]byte(s.opt.APIKey)) // compared as digests, in constant time, so that not even its length shows
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		given := sha256.Sum256([]byte(token))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(given[:], key[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gochat"`)
			writeAPIError(w, &requestError{status: http.StatusUnauthorized, code: "invalid_api_key",
				msg: "a missing or incorrect API key: send the server's --api-key as Authorization: Bearer KEY"})
			return
		}
		h(w, r)
	}
}

// checkModel refuses a model other than the one served; an empty name means it.
func (s *Server) checkModel(name string) *requestError {
	if name == "" || name == s.opt.Model {
		return nil
	}
	return &requestError{status: http.StatusNotFound, param: "model", code: "model_not_found",
		msg: fmt.Sprintf("the model %q does not exist: this server serves %q", name, s.opt.Model)}
}

// Model is an entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the answer to GET /v1/models.
type ModelList struct {
	Object string  `json:"object"` // "list"
	Data   []Model `json:"data"`
}

// ChatRequest is the body of POST /v1/chat/completions: the fields of OpenAI's request
// that gochat serves, and nanochat's top_k.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []ChatMessage   `json:"messages"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"` // the same limit, under OpenAI's newer name
	Stop                json.RawMessage `json:"stop"`                  // a string or a list of strings
	Seed                *int64          `json:"seed"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// ChatMessage is a message of an OpenAI request: a role (system or developer, user,
// assistant) and content, a string or a list of text parts.
type ChatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// check reads the request as the conversation nanochat's endpoint would take, applies its
// limits and the server's defaults, and returns the settings and stop sequences to answer
// it with.
func (req *ChatRequest) check(opt Options) ([]Message, sampler.Settings, []string, *requestError) {
	var settings sampler.Settings
	msgs, err := req.conversation()
	if err != nil {
		return nil, settings, nil, err
	}
	limit, limitName := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		if req.MaxTokens != nil {
			return nil, settings, nil, invalid("max_tokens", "max_tokens and max_completion_tokens are the same limit: give one")
		}
		limit, limitName = req.MaxCompletionTokens, "max_completion_tokens"
	}
	settings, err = (&Request{Messages: msgs, Temperature: req.Temperature, TopK: req.TopK, MaxTokens: limit}).check(opt)
	if err != nil {
		if err.param == "max_tokens" { // named as the request named it
			err.param, err.msg = limitName, limitName+strings.TrimPrefix(err.msg, "max_tokens")
		}
		return nil, settings, nil, err
	}
	if p := req.TopP; p != nil {
		switch {
		case !(*p >= 0 && *p <= 1):
			return nil, settings, nil, invalid("top_p", "top_p %g is outside [0, 1]", *p)
		case *p == 0: // a nucleus of no mass holds the most likely token alone
			settings.TopK = 1
		default:
			settings.TopP = *p
		}
	}
	settings.Rows = 1
	if n := req.N; n != nil {
		if *n < 1 || *n > MaxChoices {
			return nil, settings, nil, invalid("n", "n %d is outside [1, %d]", *n, MaxChoices)
		}
		settings.Rows = *n
	}
	if req.Seed != nil {
		settings.Seed = uint64(*req.Seed)
	}
	if req.StreamOptions != nil && !req.Stream {
		return nil, settings, nil, invalid("stream_options", "stream_options is only allowed when stream is true")
	}
	stops, err := parseStop(req.Stop)
	return msgs, settings, stops, err
}

// conversation turns the request's messages into nanochat's user and assistant turns:
// leading system (or developer) messages are merged into the first user message, as
// nanochat's render_conversation merges a system message.
func (req *ChatRequest) conversation() ([]Message, *requestError) {
	var system []string
	var msgs []Message
	for i, m := range req.Messages {
		text, err := parseContent(m.Content)
		if err != nil {
			return nil, invalid(fmt.Sprintf("messages[%d].content", i), "message %d: %v", i, err)
		}
		switch {
		case (m.Role == "system" || m.Role == "developer") && len(msgs) == 0:
			if text == "" {
				return nil, invalid(fmt.Sprintf("messages[%d].content", i), "message %d is empty", i)
			}
			system = append(system, text)
		case m.Role == "user" || m.Role == "assistant":
			msgs = append(msgs, Message{Role: m.Role, Content: text})
		default:
			return nil, invalid(fmt.Sprintf("messages[%d].role", i),
				"message %d: role %q, want system or developer (leading only), user or assistant", i, m.Role)
		}
	}
	if len(system) > 0 {
		if len(msgs) == 0 || msgs[0].Role != "user" {
			return nil, invalid("messages", "a system message must be followed by a user message")
		}
		msgs[0].Content = strings.Join(system, "\n\n") + "\n\n" + msgs[0].Content
	}
	return msgs, nil
}

// parseContent reads a message's content: a string, null, or OpenAI's list of parts, of
// which only text parts are taken (joined by newlines).
func parseContent(raw json.RawMessage) (string, error) {
	var text string
	if len(raw) == 0 || json.Unmarshal(raw, &text) == nil {
		return text, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or a list of text parts")
	}
	texts := make([]string, len(parts))
	for i, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("part %d is of type %q: this model reads text parts only", i, p.Type)
		}
		texts[i] = p.Text
	}
	return strings.Join(texts, "\n"), nil
}

// parseStop reads the stop field: absent or null, a string, or a list of up to MaxStops
// strings, none empty or over MaxStopBytes bytes.
func parseStop(raw json.RawMessage) ([]string, *requestError) {
	var stops []string
	if len(raw) > 0 && string(raw) != "null" {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			stops = []string{one}
		} else if json.Unmarshal(raw, &stops) != nil {
			return nil, invalid("stop", "stop must be a string or a list of strings")
		}
	}
	if len(stops) > MaxStops {
		return nil, invalid("stop", "%d stop sequences, at most %d", len(stops), MaxStops)
	}
	for i, stop := range stops {
		if stop == "" || len(stop) > MaxStopBytes {
			return nil, invalid("stop", "stop sequence %d has %d bytes, want 1 to %d", i, len(stop), MaxStopBytes)
		}
	}
	return stops, nil
}

// ChatCompletion is the answer to a request that does not stream.
type ChatCompletion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"` // "chat.completion"
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   Usage    `json:"usage"`
}

// Choice is one reply of a ChatCompletion.
type Choice struct {
	Index        int     `json:"index"`
	Message      Message `json:"message"`
	FinishReason string  `json:"finish_reason"` // "stop" (the model's end or a stop sequence) or "length"
}

// ChatCompletionChunk is one event of a streamed answer. Every chunk has one choice's
// delta, but the last when the request asked for usage: no choices, and the usage.
type ChatCompletionChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"` // "chat.completion.chunk"
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage"`
}

// ChunkChoice is a choice's part of a chunk: its role first, then its text in pieces, then
// a last chunk with an empty delta and why it ended.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is what a chunk adds to a choice.
type Delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// Usage counts a request's tokens: the prompt as rendered, and every choice's reply (the
// end token left out; to the token that completed a stop sequence).
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	if err := s.readBody(w, r, &req); err != nil {
		writeAPIError(w, err)
		return
	}
	if err := s.checkModel(req.Model); err != nil {
		writeAPIError(w, err)
		return
	}
	msgs, settings, stops, err := req.check(s.opt)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	prompt := s.prompt(msgs)
	if err := s.checkLength(prompt); err != nil {
		writeAPIError(w, err)
		return
	}
	done, err := s.admit(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	if done == nil { // the client left
		return
	}
	defer done()
	replies, genErr := s.answer(w, r, &req, prompt, settings, stops)
	for _, rp := range replies {
		s.logConversation(msgs, rp.content(), genErr)
	}
}

// answer samples the request's choices side by side, as the rows of one generation, and
// writes them: as chunks while they are sampled when the request streams, as one
// ChatCompletion otherwise.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, req *ChatRequest, prompt []int, settings sampler.Settings, stops []string) ([]*reply, error) {
	head := ChatCompletionChunk{ID: fmt.Sprintf("chatcmpl-%016x", rand.Uint64()), Object: "chat.completion.chunk",
		Created: time.Now().Unix(), Model: s.opt.Model}
	replies := make([]*reply, settings.Rows)
	for i := range replies {
		replies[i] = s.newReply(stops)
	}
	var events *eventStream
	if req.Stream {
		events = startEvents(w)
	}
	// tell streams a choice's new text, and its end when that has just come.
	tell := func(i int, text string, ended bool) {
		if events == nil {
			return
		}
		if text != "" {
			events.send(head.with(ChunkChoice{Index: i, Delta: Delta{Content: &text}}))
		}
		if ended {
			events.send(head.with(ChunkChoice{Index: i, FinishReason: &replies[i].finish}))
		}
	}
	for i := range replies {
		if events != nil { // each choice opens with its role
			events.send(head.with(ChunkChoice{Index: i, Delta: Delta{Role: "assistant", Content: new(string)}}))
		}
	}
	err := s.eng.Generate(r.Context(), prompt, settings, func(c sampler.Column) bool {
		going := false
		for i, t := range c.Tokens {
			if rp := replies[i]; t >= 0 && rp.finish == "" {
				tell(i, rp.push(t), rp.finish != "")
				going = going || rp.finish == ""
			}
		}
		return going && (events == nil || events.err == nil)
	})
	if err == nil && events != nil {
		err = events.err
	}
	usage := Usage{PromptTokens: len(prompt)}
	for i, rp := range replies {
		if err == nil && rp.finish == "" { // out of tokens, or of the model's positions
			tell(i, rp.close("length"), true)
		}
		usage.CompletionTokens += rp.tokens
	}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	switch {
	case events != nil && err == nil:
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			last := head
			last.Choices, last.Usage = []ChunkChoice{}, &usage
			events.send(last)
		}
		events.data([]byte("[DONE]"))
	case events != nil && r.Context().Err() == nil: // the client is still there to be told
		events.send(apiErrorBody(&requestError{status: http.StatusInternalServerError, msg: err.Error()}))
	case err == nil:
		answer := ChatCompletion{ID: head.ID, Object: "chat.completion", Created: head.Created, Model: head.Model, Usage: usage}
		for i, rp := range replies {
			answer.Choices = append(answer.Choices, Choice{Index: i, FinishReason: rp.finish,
				Message: Message{Role: "assistant", Content: rp.content()}})
		}
		writeJSON(w, http.StatusOK, answer)
	case events == nil:
		writeAPIError(w, &requestError{status: http.StatusInternalServerError, msg: err.Error()})
	}
	return replies, err
}

// with is the chunk holding one choice's part.
func (head ChatCompletionChunk) with(c ChunkChoice) ChatCompletionChunk {
	head.Choices = []ChunkChoice{c}
	return head
}

// APIError is the error object of OpenAI's error bodies, {"error": APIError}.
type APIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"` // "invalid_request_error", or "server_error" for a 5xx
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// apiErrorBody is e as OpenAI's API words an error.
func apiErrorBody(e *requestError) map[string]APIError {
	body := APIError{Message: e.msg, Type: "invalid_request_error"}
	if e.status >= 500 {
		body.Type = "server_error"
	}
	if e.param != "" {
		body.Param = &e.param
	}
	if e.code != "" {
		body.Code = &e.code
	}
	return map[string]APIError{"error": body}
}

// writeAPIError answers with e in OpenAI's words; a busy server asks the client to come
// back in a second (OpenAI's clients wait for Retry-After and try again).
func writeAPIError(w http.ResponseWriter, e *requestError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.status, apiErrorBody(e))
}
