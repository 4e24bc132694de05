package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gochat/internal/scripted"
)

// postV1 sends body to path under /v1 with key as its bearer token (none when empty).
func postV1(t testing.TB, ctx context.Context, url, path, key, body string) *http.Response {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// completion posts a request that does not stream and reads its answer.
func completion(t *testing.T, url, body string) ChatCompletion {
	t.Helper()
	res := postV1(t, context.Background(), url, "/chat/completions", "", body)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var c ChatCompletion
	if err := json.Unmarshal(raw, &c); err != nil || res.StatusCode != 200 {
		t.Fatalf("%s: %v %s", res.Status, err, raw)
	}
	if c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Created == 0 || c.Model != "sft-d1" {
		t.Errorf("answer's head: %+v", c)
	}
	return c
}

// streamed is a streamed answer put together: each choice's text and finish reason, and
// the usage when a chunk gave it.
type streamed struct {
	content map[int]string
	finish  map[int]string
	usage   *Usage
}

// stream posts a streaming request and reads its chunks, checking OpenAI's format: every
// chunk of the same id, each choice opening with its role, one finish reason per choice
// after its text, the usage chunk (with no choices) last, then [DONE].
func stream(t *testing.T, url, body string) streamed {
	t.Helper()
	res := postV1(t, context.Background(), url, "/chat/completions", "", body)
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	got := streamed{content: map[int]string{}, finish: map[int]string{}}
	opened := map[int]bool{}
	var id string
	done := false
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		switch {
		case !ok:
			t.Fatalf("not an event line: %q", line)
		case done:
			t.Fatalf("an event after [DONE]: %q", line)
		case data == "[DONE]":
			done = true
			continue
		case got.usage != nil:
			t.Fatalf("an event after the usage: %q", line)
		}
		var c ChatCompletionChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		if id == "" {
			id = c.ID
		}
		if c.Object != "chat.completion.chunk" || c.ID != id || !strings.HasPrefix(id, "chatcmpl-") || c.Model != "sft-d1" || c.Created == 0 {
			t.Fatalf("chunk's head: %q", data)
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 || !strings.Contains(data, `"choices":[]`) {
				t.Fatalf("the usage chunk has choices: %q", data)
			}
			got.usage = c.Usage
			continue
		}
		if len(c.Choices) != 1 {
			t.Fatalf("chunk %q: want one choice", data)
		}
		ch := c.Choices[0]
		switch {
		case got.finish[ch.Index] != "":
			t.Fatalf("choice %d goes on after its finish: %q", ch.Index, data)
		case !opened[ch.Index]:
			if ch.Delta.Role != "assistant" || ch.Delta.Content == nil || *ch.Delta.Content != "" || ch.FinishReason != nil {
				t.Fatalf("choice %d opens with %q, want its role", ch.Index, data)
			}
			opened[ch.Index] = true
		case ch.FinishReason != nil:
			if ch.Delta != (Delta{}) {
				t.Fatalf("a finishing chunk with a delta: %q", data)
			}
			got.finish[ch.Index] = *ch.FinishReason
		case ch.Delta.Role != "" || ch.Delta.Content == nil || *ch.Delta.Content == "":
			t.Fatalf("a chunk with no text: %q", data)
		default:
			got.content[ch.Index] += *ch.Delta.Content
		}
	}
	if !done {
		t.Fatal("the stream did not end with [DONE]")
	}
	for i := range opened {
		if got.finish[i] == "" {
			t.Errorf("choice %d never finished", i)
		}
	}
	return got
}

// nonStreaming is body with "stream": true changed to false.
func nonStreaming(body string) string {
	return strings.Replace(body, `"stream":true`, `"stream":false`, 1)
}

// TestOpenAIStreamAndNot: a streamed answer's chunks put together are the answer given
// whole, with the same finish reasons, and usage counts the prompt's tokens and the
// reply's.
func TestOpenAIStreamAndNot(t *testing.T) {
	var logged bytes.Buffer
	_, srv := newServer(t, Options{Model: "sft-d1", Log: log.New(&logged, "", 0)}, nil)
	for name, c := range map[string]struct {
		body    string
		content string
		finish  string
	}{
		// "é" is two tokens: whole characters only, and max_tokens counts tokens.
		"greedy": {`{"model":"sft-d1","messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":6,"stream":true}`, "éabab", "length"},
		"max_completion_tokens": {`{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_completion_tokens":3,"stream":true}`,
			"éa", "length"},
		// Stop sequences end the reply before them, wherever the tokens split them.
		"stop":           {`{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":20,"stop":["zz","ba"],"stream":true}`, "éa", "stop"},
		"stop string":    {`{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":20,"stop":"ab","stream":true}`, "é", "stop"},
		"stop first":     {`{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":20,"stop":["é"],"stream":true}`, "", "stop"},
		"stop held back": {`{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":20,"stop":["éab"],"stream":true}`, "", "stop"},
		"stop never whole": {`{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":7,"stop":["abx"],"stream":true}`,
			"éababa", "length"},
		// The sampled case: the same seed gives the same reply, streamed or not.
		"seeded": {`{"messages":[{"role":"user","content":"hi"}],"temperature":2,"top_k":200,"seed":42,"max_tokens":8,"stream":true}`, "", ""},
	} {
		s := stream(t, srv.URL, c.body)
		whole := completion(t, srv.URL, nonStreaming(c.body))
		if len(whole.Choices) != 1 || whole.Choices[0].Message.Role != "assistant" || whole.Choices[0].Index != 0 {
			t.Fatalf("%s: choices %+v", name, whole.Choices)
		}
		if got := whole.Choices[0]; got.Message.Content != s.content[0] || got.FinishReason != s.finish[0] {
			t.Errorf("%s: streamed %q (%s), whole %q (%s)", name, s.content[0], s.finish[0], got.Message.Content, got.FinishReason)
		}
		if c.finish != "" && (s.content[0] != c.content || s.finish[0] != c.finish) {
			t.Errorf("%s: %q (%s), want %q (%s)", name, s.content[0], s.finish[0], c.content, c.finish)
		}
	}

	// Usage: the prompt is <|bos|>, <|user_start|>, the text, <|user_end|>,
	// <|assistant_start|>; the reply's tokens go to the one that completed the stop.
	body := `{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":20,"stop":"bab","stream":true,"stream_options":{"include_usage":true}}`
	want := Usage{PromptTokens: 6, CompletionTokens: 6, TotalTokens: 12}
	if s := stream(t, srv.URL, body); s.usage == nil || *s.usage != want || s.content[0] != "éa" {
		t.Errorf("streamed usage %+v of %q, want %+v", s.usage, s.content[0], want)
	}
	if c := completion(t, srv.URL, strings.Replace(body, `"stream":true,"stream_options":{"include_usage":true}`, `"stream":false`, 1)); c.Usage != want {
		t.Errorf("usage %+v, want %+v", c.Usage, want)
	}
	if s := stream(t, srv.URL, strings.Replace(body, "true}}", "false}}", 1)); s.usage != nil {
		t.Errorf("usage streamed unasked: %+v", s.usage)
	}

	// A system message is merged into the first user message, as nanochat renders it; the
	// content may be OpenAI's list of text parts.
	logged.Reset()
	c := completion(t, srv.URL, `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}]}],"max_tokens":1}`)
	if prompt := len("Be brief.\n\nhi\nthere") + 4; c.Usage.PromptTokens != prompt {
		t.Errorf("prompt tokens %d, want %d; %s", c.Usage.PromptTokens, prompt, logged.String())
	}
	if !strings.Contains(logged.String(), `"content":"Be brief.\n\nhi\nthere"`) {
		t.Errorf("the conversation answered: %s", logged.String())
	}
}

// TestOpenAIEnd: a reply that reaches the model's end token finishes with "stop", the end
// token neither sent nor counted.
func TestOpenAIEnd(t *testing.T) {
	tok := scripted.Tokenizer()
	start, _ := tok.Special("<|assistant_start|>")
	end, _ := tok.Special("<|assistant_end|>")
	script := map[int]int{start: 'o', 'o': 'k', 'k': end}
	_, srv := newServer(t, Options{Model: "sft-d1", MaxTokens: 50}, func(i int) int {
		if j, ok := script[i]; ok {
			return j
		}
		return -1
	})
	body := `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yes"},{"role":"user","content":"and?"}],"n":2,"stream":true}`
	s := stream(t, srv.URL, body)
	c := completion(t, srv.URL, nonStreaming(body))
	for i := range 2 {
		if s.content[i] != "ok" || s.finish[i] != "stop" || c.Choices[i].Message.Content != "ok" || c.Choices[i].FinishReason != "stop" {
			t.Errorf("choice %d: streamed %q (%s), whole %+v", i, s.content[i], s.finish[i], c.Choices[i])
		}
	}
	if c.Usage.CompletionTokens != 4 {
		t.Errorf("usage %+v: want 2 completion tokens per choice", c.Usage)
	}
}

// TestOpenAIChoices: n choices are sampled side by side, each its own; the seed
// reproduces them.
func TestOpenAIChoices(t *testing.T) {
	_, srv := newServer(t, Options{Model: "sft-d1"}, nil)
	body := `{"messages":[{"role":"user","content":"hi"}],"n":4,"temperature":2,"top_k":200,"seed":7,"max_tokens":8,"stream":true}`
	s := stream(t, srv.URL, body)
	c := completion(t, srv.URL, nonStreaming(body))
	if len(c.Choices) != 4 || len(s.content) != 4 || len(s.finish) != 4 {
		t.Fatalf("%d choices whole, %d streamed", len(c.Choices), len(s.content))
	}
	distinct := map[string]bool{}
	tokens := 0
	for i, ch := range c.Choices {
		if ch.Index != i || ch.Message.Content != s.content[i] || ch.FinishReason != s.finish[i] {
			t.Errorf("choice %d: whole %+v, streamed %q (%s)", i, ch, s.content[i], s.finish[i])
		}
		if ch.FinishReason == "length" {
			tokens += 8
		}
		distinct[ch.Message.Content] = true
	}
	if len(distinct) < 3 {
		t.Errorf("4 choices, %d different: %v", len(distinct), distinct)
	}
	if c.Usage.CompletionTokens < tokens || c.Usage.CompletionTokens > 32 || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
		t.Errorf("usage %+v for %d choices at max_tokens 8", c.Usage, len(c.Choices))
	}
	greedy := completion(t, srv.URL, `{"messages":[{"role":"user","content":"hi"}],"n":3,"top_p":0,"temperature":1,"max_tokens":4}`)
	for _, ch := range greedy.Choices {
		if ch.Message.Content != "éab" {
			t.Errorf("top_p 0 (the most likely token alone): %q", ch.Message.Content)
		}
	}
	if greedy.Usage.CompletionTokens != 12 {
		t.Errorf("usage %+v: want 3 choices of 4 tokens", greedy.Usage)
	}
}

// apiError reads an OpenAI error answer.
func apiError(t *testing.T, res *http.Response) APIError {
	t.Helper()
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body map[string]json.RawMessage
	var e APIError
	if err := json.Unmarshal(raw, &body); err != nil || len(body) != 1 || json.Unmarshal(body["error"], &e) != nil ||
		!bytes.Contains(raw, []byte(`"param":`)) || !bytes.Contains(raw, []byte(`"code":`)) || e.Message == "" ||
		res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: not an OpenAI error: %s", res.Status, raw)
	}
	return e
}

func TestOpenAIErrors(t *testing.T) {
	_, srv := newServer(t, Options{Model: "sft-d1"}, nil)
	hi := `"messages":[{"role":"user","content":"hi"}]`
	three := `{"messages":[` + strings.TrimSuffix(strings.Repeat(`{"role":"user","content":"`+strings.Repeat("w", 7000)+`"},`, 3), ",") + `]}`
	for name, c := range map[string]struct {
		body   string
		status int
		param  string // "-": null
		code   string // "-": null
		want   string // in the message
	}{
		"malformed":        {`{"messages": [`, 400, "-", "-", "malformed JSON"},
		"no messages":      {`{"messages": []}`, 400, "messages", "-", "at least one message"},
		"role":             {`{"messages":[{"role":"tool","content":"x"}]}`, 400, "messages[0].role", "-", "role"},
		"late system":      {`{"messages":[{"role":"user","content":"x"},{"role":"system","content":"y"}]}`, 400, "messages[1].role", "-", "leading only"},
		"system alone":     {`{"messages":[{"role":"system","content":"y"}]}`, 400, "messages", "-", "followed by a user message"},
		"empty system":     {`{"messages":[{"role":"system","content":""},{"role":"user","content":"x"}]}`, 400, "messages[0].content", "-", "empty"},
		"image":            {`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "messages[0].content", "-", "text parts only"},
		"content type":     {`{"messages":[{"role":"user","content":7}]}`, 400, "messages[0].content", "-", "a string or a list"},
		"empty message":    {`{"messages":[{"role":"user","content":null}]}`, 400, "messages", "-", "empty"},
		"temperature":      {`{` + hi + `,"temperature":2.5}`, 400, "temperature", "-", "temperature"},
		"top_p":            {`{` + hi + `,"top_p":1.5}`, 400, "top_p", "-", "top_p"},
		"top_k":            {`{` + hi + `,"top_k":0}`, 400, "top_k", "-", "top_k"},
		"n zero":           {`{` + hi + `,"n":0}`, 400, "n", "-", "n 0"},
		"n high":           {`{` + hi + `,"n":9}`, 400, "n", "-", "n 9"},
		"max_tokens":       {`{` + hi + `,"max_tokens":0}`, 400, "max_tokens", "-", "max_tokens 0"},
		"max_completion":   {`{` + hi + `,"max_completion_tokens":5000}`, 400, "max_completion_tokens", "-", "max_completion_tokens 5000 is outside"},
		"both limits":      {`{` + hi + `,"max_tokens":5,"max_completion_tokens":5}`, 400, "max_tokens", "-", "give one"},
		"stop type":        {`{` + hi + `,"stop":3}`, 400, "stop", "-", "a string or a list"},
		"stops":            {`{` + hi + `,"stop":["a","b","c","d","e"]}`, 400, "stop", "-", "at most 4"},
		"empty stop":       {`{` + hi + `,"stop":""}`, 400, "stop", "-", "0 bytes"},
		"stream_options":   {`{` + hi + `,"stream_options":{"include_usage":true}}`, 400, "stream_options", "-", "stream is true"},
		"wrong type":       {`{` + hi + `,"n":"many"}`, 400, "-", "-", "malformed JSON"},
		"model":            {`{"model":"gpt-4o",` + hi + `}`, 404, "model", "model_not_found", `"gpt-4o" does not exist`},
		"huge body":        {`{"messages":[{"role":"user","content":"` + strings.Repeat("z", 2<<20) + `"}]}`, 413, "-", "-", "over"},
		"past the context": {three, 400, "messages", "-", "the model holds 20480"},
	} {
		e := apiError(t, postV1(t, context.Background(), srv.URL, "/chat/completions", "", c.body))
		param, code := "-", "-"
		if e.Param != nil {
			param = *e.Param
		}
		if e.Code != nil {
			code = *e.Code
		}
		if e.Type != "invalid_request_error" || param != c.param || code != c.code || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %+v (param %s, code %s), want param %s, code %s and %q", name, e, param, code, c.param, c.code, c.want)
		}
	}
	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/v1/chat/completions", "Invalid URL (GET /v1/chat/completions)"},
		{http.MethodPost, "/v1/completions", "Invalid URL (POST /v1/completions)"},
		{http.MethodGet, "/v1/models/gpt-4o", `"gpt-4o" does not exist`},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if e := apiError(t, res); res.StatusCode != 404 || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s %s: %s %+v", c.method, c.path, res.Status, e)
		}
	}
}

// TestOpenAIModelsAndKey: /v1/models lists the model served; with an API key, /v1 wants it
// as a bearer token and nanochat's endpoints go on without one.
func TestOpenAIModelsAndKey(t *testing.T) {
	_, srv := newServer(t, Options{Model: "sft-d1", APIKey: "sekret"}, nil)
	get := func(path, auth string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := get("/v1/models", "Bearer sekret")
	var list ModelList
	json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	if res.StatusCode != 200 || list.Object != "list" || len(list.Data) != 1 {
		t.Fatalf("%s %+v", res.Status, list)
	}
	if m := list.Data[0]; m.ID != "sft-d1" || m.Object != "model" || m.OwnedBy != "gochat" || m.Created == 0 {
		t.Errorf("model %+v", m)
	}
	res = get("/v1/models/sft-d1", "bearer sekret") // the scheme is case-insensitive
	var one Model
	json.NewDecoder(res.Body).Decode(&one)
	res.Body.Close()
	if res.StatusCode != 200 || one != list.Data[0] {
		t.Errorf("/v1/models/sft-d1: %s %+v", res.Status, one)
	}

	for _, auth := range []string{"", "Bearer wrong", "Bearer sekret2", "Basic sekret", "sekret"} {
		for _, path := range []string{"/v1/models", "/v1/nope"} {
			res := get(path, auth)
			if e := apiError(t, res); res.StatusCode != 401 || e.Code == nil || *e.Code != "invalid_api_key" || res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with %q: %s %+v", path, auth, res.Status, e)
			}
		}
	}
	if e := apiError(t, postV1(t, context.Background(), srv.URL, "/chat/completions", "wrong", `{"messages":[{"role":"user","content":"hi"}]}`)); e.Code == nil || *e.Code != "invalid_api_key" {
		t.Errorf("a completion with the wrong key: %+v", e)
	}
	res = postV1(t, context.Background(), srv.URL, "/chat/completions", "sekret", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("a completion with the key: %s", res.Status)
	}
	res = post(t, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"hi"}],"stream":false}`)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("nanochat's endpoint without a key: %s", res.Status)
	}
}

// TestOpenAIQueueAndDisconnect: the OpenAI endpoint shares the workers and the queue: a
// request beyond them gets OpenAI's 503 with Retry-After, and a client that leaves frees
// its worker for the one waiting.
func TestOpenAIQueueAndDisconnect(t *testing.T) {
	s, srv := newServer(t, Options{Model: "sft-d1", Workers: 1, Queue: 1, MaxTokens: 4000}, nil)
	long := `{"messages":[{"role":"user","content":"hi"}],"temperature":0,"stream":true}`
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := postV1(t, ctx1, srv.URL, "/chat/completions", "", long)
	if _, err := bufio.NewReader(first.Body).ReadString('\n'); err != nil { // it holds the worker
		t.Fatal(err)
	}
	second := make(chan *http.Response, 1)
	go func() {
		second <- post(t, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"hi"}],"stream":false}`)
	}()
	for deadline := time.Now().Add(10 * time.Second); s.waiting.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second request never queued")
		}
	}
	third := postV1(t, context.Background(), srv.URL, "/chat/completions", "", long)
	if e := apiError(t, third); third.StatusCode != 503 || e.Type != "server_error" || third.Header.Get("Retry-After") != "1" {
		t.Errorf("a request beyond the queue: %s %+v", third.Status, e)
	}
	cancel1()
	first.Body.Close()
	select {
	case res := <-second:
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("the queued request: %s", res.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queued request never got the worker the disconnected one left")
	}
}

// FuzzChatCompletions: any request body gets an OpenAI error (400, 404, 408, 413) or an
// answer, never a panic or a 5xx.
func FuzzChatCompletions(f *testing.F) {
	s, _ := newServer(f, Options{MaxTokens: 2}, nil)
	f.Add(`{"messages":[{"role":"user","content":"hi"}],"n":2,"stop":["a","b"],"top_p":0.5,"seed":-3}`)
	f.Add(`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"x"}]}],"stream":true,"stream_options":{"include_usage":true}}`)
	f.Add(`{"messages":[{"role":"user","content":"hi"}],"stop":null,"max_completion_tokens":1,"model":"gochat"}`)
	f.Add(`{"messages":[{"role":"developer","content":[]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body.String())
		}
	})
}
