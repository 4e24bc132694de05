package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's Chromium. Where it is missing the browser test is skipped, unless
// GOCHAT_REQUIRE_BROWSER is set, as .ci/run sets it after installing Chromium.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("GOCHAT_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium, and GOCHAT_REQUIRE_BROWSER is set (apt-get install chromium)")
	}
	t.Skip("no Chromium here (apt-get install chromium)")
	return ""
}

// TestBrowser drives the page in headless Chromium against the real server: a message and
// its streamed reply, slash commands, a reply written again, a message edited; and saves a
// screenshot in the test's artifact folder (go test -artifacts keeps it).
func TestBrowser(t *testing.T) {
	s, srv := newServer(t, Options{MaxTokens: 6, Temperature: 0}, nil)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(900, 700))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(browser, chromedp.Navigate(srv.URL)); err != nil { // starts the browser: no timeout on this one
		t.Fatal(err)
	}
	ctx, cancelTimeout := context.WithTimeout(browser, 60*time.Second)
	defer cancelTimeout()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	// Slash commands answer in the page, without a request.
	do("slash commands", chromedp.WaitVisible(chromedp.CSS("#input")),
		chromedp.SendKeys(chromedp.CSS("#input"), "/temperature 0.5\n"),
		chromedp.SendKeys(chromedp.CSS("#input"), "/topk 7\n"),
		chromedp.SendKeys(chromedp.CSS("#input"), "/help\n"))
	notices := text("#chat")
	// A message and its reply, streamed in.
	do("a message", chromedp.SendKeys(chromedp.CSS("#input"), "hello\n"), chromedp.WaitVisible(chromedp.CSS(".assistant:not(.writing)")))
	reply := text(".assistant")
	// Click the reply: it is written again, still one reply.
	do("regenerate", chromedp.Click(chromedp.CSS(".assistant")), chromedp.WaitVisible(chromedp.CSS(".assistant:not(.writing)")))
	replies, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".assistant").length`))
	if err != nil {
		t.Fatal(err)
	}
	// Click the message: edit it, and the conversation goes on from the new text.
	do("edit", chromedp.Click(chromedp.CSS(".user")), chromedp.WaitVisible(chromedp.CSS(".user textarea")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(".user textarea").value = ""`),
		chromedp.SendKeys(chromedp.CSS(".user textarea"), "hi again\n"),
		chromedp.WaitVisible(chromedp.CSS(".assistant:not(.writing)")))
	edited := text(".user")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"temperature set to 0.5", "top-k set to 7", "/clear"} {
		if !strings.Contains(notices, want) {
			t.Errorf("the page lacks %q: %q", want, notices)
		}
	}
	// The page asks for 512 tokens: "é" takes two, then "abab…".
	if !strings.HasPrefix(reply, "éabab") || utf8.RuneCountInString(reply) != 511 {
		t.Errorf("the reply reads %.20q… (%d characters), want éabab… of 511", reply, utf8.RuneCountInString(reply))
	}
	if replies != 1 || edited != "hi again" {
		t.Errorf("after regenerating and editing: %d replies, the message reads %q", replies, edited)
	}
	if served := s.served.Load(); served != 3 {
		t.Errorf("%d requests served, want 3 (message, regenerate, edit)", served)
	}
	path := filepath.Join(t.ArtifactDir(), "chat.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}
