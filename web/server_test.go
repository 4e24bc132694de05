package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/scripted"
	"gochat/sampler"
)

// newServer serves a scripted model: after <|assistant_start|> it writes "é" (two byte
// tokens, so that a character spans two tokens) and then "ab" forever, or ends after
// "done" when next says so. The server runs on loopback.
func newServer(t testing.TB, opt Options, next func(int) int) (*Server, *httptest.Server) {
	tok := scripted.Tokenizer()
	start, _ := tok.Special("<|assistant_start|>")
	if next == nil {
		next = func(i int) int {
			switch i {
			case start:
				return 0xC3
			case 0xC3:
				return 0xA9
			case 0xA9, 'b':
				return 'a'
			case 'a':
				return 'b'
			}
			return -1
		}
	}
	cfg, w := scripted.Model(tok.VocabSize(), 2048, next) // 20,480 positions: a request at the limits fits
	m, err := graph.NewCached(cfg, w, cpubackend.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := sampler.NewGenerator(m, tok)
	if err != nil {
		t.Fatal(err)
	}
	if opt.MaxTokens == 0 {
		opt.MaxTokens = 8
	}
	s := New(eng, opt)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func post(t testing.TB, ctx context.Context, url, body string) *http.Response {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// events reads a server-sent event stream: the tokens, and whether it ended with done.
func events(t testing.TB, r io.Reader) (tokens []string, done bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an event line: %q", line)
		}
		var ev struct {
			Token *string `json:"token"`
			Done  bool    `json:"done"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		switch {
		case done:
			t.Fatalf("an event after done: %q", data)
		case ev.Done:
			done = true
		case ev.Token != nil:
			tokens = append(tokens, *ev.Token)
		default:
			t.Fatalf("an event with neither token nor done: %q", data)
		}
	}
	return tokens, done
}

func TestStreamingFormat(t *testing.T) {
	var logged bytes.Buffer
	_, srv := newServer(t, Options{Log: log.New(&logged, "", 0)}, nil)
	res := post(t, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":6}`)
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	tokens, done := events(t, res.Body)
	if !done || strings.Join(tokens, "") != "éabab" {
		t.Fatalf("tokens %q, done %v; want é a b a b then done", tokens, done)
	}
	if tokens[0] != "é" {
		t.Errorf("the first event is %q: a character split across two tokens must come whole", tokens[0])
	}
	for _, tok := range tokens {
		if !utf8.ValidString(tok) || strings.ContainsRune(tok, utf8.RuneError) {
			t.Errorf("event %q is not whole characters", tok)
		}
	}
	if !strings.Contains(logged.String(), `"content":"hi"`) || !strings.Contains(logged.String(), `"reply":"éabab"`) {
		t.Errorf("conversation not logged: %q", logged.String())
	}

	// Not streaming: one JSON answer.
	res = post(t, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":3,"stream":false}`)
	var answer struct {
		Choices []struct {
			Message Message `json:"message"`
		} `json:"choices"`
	}
	json.NewDecoder(res.Body).Decode(&answer)
	res.Body.Close()
	if len(answer.Choices) != 1 || answer.Choices[0].Message.Content != "éa" {
		t.Errorf("non-streaming answer %+v", answer)
	}
}

// TestRequestsEnd: a reply ends at <|assistant_end|> without sending it.
func TestRequestsEnd(t *testing.T) {
	tok := scripted.Tokenizer()
	start, _ := tok.Special("<|assistant_start|>")
	end, _ := tok.Special("<|assistant_end|>")
	script := map[int]int{start: 'o', 'o': 'k', 'k': end}
	_, srv := newServer(t, Options{MaxTokens: 50}, func(i int) int {
		if j, ok := script[i]; ok {
			return j
		}
		return -1
	})
	res := post(t, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yes"},{"role":"user","content":"and?"}]}`)
	defer res.Body.Close()
	if tokens, done := events(t, res.Body); !done || strings.Join(tokens, "") != "ok" {
		t.Fatalf("tokens %q, done %v", tokens, done)
	}
}

func TestLimits(t *testing.T) {
	_, srv := newServer(t, Options{}, nil)
	msg := func(role, content string) string {
		raw, _ := json.Marshal(Message{Role: role, Content: content})
		return string(raw)
	}
	many := strings.TrimSuffix(strings.Repeat(msg("user", "x")+",", MaxMessages+1), ",")
	four := strings.TrimSuffix(strings.Repeat(msg("user", strings.Repeat("y", 7000))+",", 5), ",")
	three := strings.TrimSuffix(strings.Repeat(msg("user", strings.Repeat("w", 7000))+",", 3), ",")
	for name, c := range map[string]struct {
		body   string
		status int
		want   string
	}{
		"malformed":        {`{"messages": [`, 400, "malformed JSON"},
		"not an object":    {`[1,2]`, 400, "malformed JSON"},
		"no messages":      {`{"messages": []}`, 400, "at least one message"},
		"too many":         {`{"messages": [` + many + `]}`, 400, "too many messages"},
		"empty message":    {`{"messages": [` + msg("user", "") + `]}`, 400, "empty"},
		"long message":     {`{"messages": [` + msg("user", strings.Repeat("é", MaxMessageChars+1)) + `]}`, 400, "characters"},
		"long total":       {`{"messages": [` + four + `]}`, 400, "conversation has"},
		"role":             {`{"messages": [` + msg("system", "hi") + `]}`, 400, "role"},
		"temperature low":  {`{"messages": [` + msg("user", "hi") + `], "temperature": -0.1}`, 400, "temperature"},
		"temperature high": {`{"messages": [` + msg("user", "hi") + `], "temperature": 2.5}`, 400, "temperature"},
		"top_k zero":       {`{"messages": [` + msg("user", "hi") + `], "top_k": 0}`, 400, "top_k"},
		"top_k high":       {`{"messages": [` + msg("user", "hi") + `], "top_k": 201}`, 400, "top_k"},
		"max_tokens zero":  {`{"messages": [` + msg("user", "hi") + `], "max_tokens": 0}`, 400, "max_tokens"},
		"max_tokens high":  {`{"messages": [` + msg("user", "hi") + `], "max_tokens": 4097}`, 400, "max_tokens"},
		"wrong type":       {`{"messages": [` + msg("user", "hi") + `], "top_k": "many"}`, 400, "malformed JSON"},
		"huge body":        {`{"messages": [` + msg("user", strings.Repeat("z", 2<<20)) + `]}`, 413, "over"},
		"past the context": {`{"messages": [` + three + `]}`, 400, "the model holds 20480"},
	} {
		res := post(t, context.Background(), srv.URL, c.body)
		var e struct{ Error string }
		json.NewDecoder(res.Body).Decode(&e)
		res.Body.Close()
		if res.StatusCode != c.status || !strings.Contains(e.Error, c.want) || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q, want %d and an error with %q", name, res.StatusCode, e.Error, c.status, c.want)
		}
	}
	// The limits themselves are allowed.
	ok := `{"messages": [` + msg("user", strings.Repeat("é", MaxMessageChars)) + `], "temperature": 2, "top_k": 200, "max_tokens": 1}`
	if res := post(t, context.Background(), srv.URL, ok); res.StatusCode != 200 {
		t.Errorf("a request at the limits: %s", res.Status)
	}
	for path, method := range map[string]string{"/chat/completions": http.MethodGet, "/health": http.MethodPost, "/nope": http.MethodGet} {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode < 400 {
			t.Errorf("%s %s: %v %v", method, path, res.Status, err)
		}
	}
}

func TestHealthStatsAndPage(t *testing.T) {
	_, srv := newServer(t, Options{Workers: 3, Queue: 5}, nil)
	var health map[string]any
	res, _ := http.Get(srv.URL + "/health")
	json.NewDecoder(res.Body).Decode(&health)
	if health["status"] != "ok" || health["ready"] != true || health["workers"] != 3.0 {
		t.Errorf("health %v", health)
	}
	res = post(t, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"hi"}]}`)
	io.ReadAll(res.Body)
	res.Body.Close()
	var st Stats
	for deadline := time.Now().Add(10 * time.Second); st.Served == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		res, _ = http.Get(srv.URL + "/stats") // the handler counts the request once its reply is out
		json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
	}
	if st.TotalWorkers != 3 || st.AvailableWorkers != 3 || st.BusyWorkers != 0 || st.QueueBound != 5 || st.Served != 1 {
		t.Errorf("stats %+v", st)
	}
	res, _ = http.Get(srv.URL + "/")
	page, _ := io.ReadAll(res.Body)
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte("/chat/completions")) {
		t.Errorf("the page: %s %d bytes", res.Header.Get("Content-Type"), len(page))
	}
}

// TestConcurrencyQueueAndDisconnects: requests beyond the workers wait; beyond the queue
// they get 503; a client that goes away frees its worker at once.
func TestConcurrencyQueueAndDisconnects(t *testing.T) {
	s, srv := newServer(t, Options{Workers: 1, Queue: 1, MaxTokens: 4000}, nil)
	long := `{"messages":[{"role":"user","content":"hi"}],"temperature":0}`
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := post(t, ctx1, srv.URL, long) // streaming: headers arrive once it has a worker
	r := bufio.NewReader(first.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	second := make(chan *http.Response, 1)
	go func() { second <- post(t, ctx2, srv.URL, long) }() // waits in the queue
	for deadline := time.Now().Add(10 * time.Second); s.waiting.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second request never queued")
		}
	}
	third := post(t, context.Background(), srv.URL, long)
	if third.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a request beyond the queue: %s", third.Status)
	}
	third.Body.Close()
	served := s.served.Load()
	cancel1() // the first client goes away mid-reply
	first.Body.Close()
	var res *http.Response
	select {
	case res = <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("the queued request never got the worker the disconnected one left")
	}
	if s.served.Load() != served+1 {
		t.Errorf("the disconnected request was not ended")
	}
	if _, err := res.Body.Read(make([]byte, 10)); err != nil {
		t.Errorf("the second request's stream: %v", err)
	}
	cancel2()
	res.Body.Close()
}

// TestLoadLeavesNothingBehind: concurrent streaming clients all get whole replies, and
// afterwards no goroutine and no memory is left over.
func TestLoadLeavesNothingBehind(t *testing.T) {
	_, srv := newServer(t, Options{Workers: 2, Queue: 64, MaxTokens: 40}, nil)
	run := func(clients, each int) {
		var wg sync.WaitGroup
		errs := make(chan error, clients*each)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					res := post(t, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"hi"}]}`)
					tokens, done := events(t, res.Body)
					res.Body.Close()
					if !done || !strings.HasPrefix(strings.Join(tokens, ""), "é") {
						errs <- fmt.Errorf("a reply of %q, done %v", tokens, done)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	run(8, 2) // warm up: connections, buffers
	http.DefaultClient.CloseIdleConnections()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	run(8, 10)
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond) // connection goroutines wind down
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		t.Errorf("%d goroutines after the load, %d before", n, goroutines)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 4<<20 {
		t.Errorf("the live heap grew by %d KiB over 80 requests", grown>>10)
	}
}

// TestSlowBody: a client that sends its body slower than the body timeout gets 408 and
// frees the connection.
func TestSlowBody(t *testing.T) {
	_, srv := newServer(t, Options{BodyTimeout: 200 * time.Millisecond}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"messages\": [")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound on a hang, not a timing
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	var e struct{ Error string }
	json.NewDecoder(res.Body).Decode(&e)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(e.Error, "did not arrive") {
		t.Errorf("a stalled body: %s %q", res.Status, e.Error)
	}
}

// FuzzCompletions: any request body gets a JSON error (400, 408, 413) or an answer, never
// a panic or a 5xx.
func FuzzCompletions(f *testing.F) {
	s, _ := newServer(f, Options{MaxTokens: 2}, nil)
	f.Add(`{"messages":[{"role":"user","content":"hi"}],"stream":false}`)
	f.Add(`{"messages":[{"role":"user","content":"hi"}],"temperature":2,"top_k":200,"max_tokens":1}`)
	f.Add(`{"messages": [`)
	f.Add(`{"messages":[{"role":"system","content":""}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/chat/completions", strings.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body.String())
		}
	})
}
