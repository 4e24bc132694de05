package web

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gochat/cpubackend"
	"gochat/graph"
	"gochat/internal/scripted"
	"gochat/sampler"
)

// BenchmarkLoad runs 8 streaming clients against a d4 model with random weights (the byte
// tokenizer's 265 tokens, replies of 32 tokens, 2 workers) for 5 seconds per round, and
// reports requests/s and the time to the first token (median and 95th percentile). Errors
// fail it.
func BenchmarkLoad(b *testing.B) {
	tok := scripted.Tokenizer()
	cfg := graph.ConfigForDepth(4, tok.VocabSize(), 256)
	m, err := graph.NewCached(cfg, graph.InitWeights(cfg, 1), cpubackend.New(nil))
	if err != nil {
		b.Fatal(err)
	}
	eng, _ := sampler.NewGenerator(m, tok)
	srv := httptest.NewServer(New(eng, Options{Temperature: 1, MaxTokens: 32, Workers: 2, Queue: 64}))
	defer srv.Close()
	const clients = 8
	for b.Loop() {
		var mu sync.Mutex
		var ttft []time.Duration
		done := 0
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					t0 := time.Now()
					res := post(b, context.Background(), srv.URL, `{"messages":[{"role":"user","content":"Hello there"}]}`)
					r := bufio.NewScanner(res.Body)
					first, ended := time.Duration(0), false
					for r.Scan() {
						if first == 0 && strings.HasPrefix(r.Text(), `data: {"token"`) {
							first = time.Since(t0)
						}
						ended = ended || r.Text() == `data: {"done":true}`
					}
					res.Body.Close()
					if !ended || res.StatusCode != 200 {
						b.Errorf("a request ended with %s, done %v", res.Status, ended)
						return
					}
					mu.Lock()
					ttft, done = append(ttft, first), done+1
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		cancel()
		elapsed := time.Since(start).Seconds()
		slices.Sort(ttft)
		b.ReportMetric(float64(done)/elapsed, "req/s")
		b.ReportMetric(float64(ttft[len(ttft)/2].Milliseconds()), "ttft-p50-ms")
		b.ReportMetric(float64(ttft[len(ttft)*95/100].Milliseconds()), "ttft-p95-ms")
		fmt.Printf("%d requests by %d clients in %.1f s\n", done, clients, elapsed)
	}
}
