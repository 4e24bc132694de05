package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gochat/checkpoint"
	"gochat/internal/scripted"

	"github.com/creack/pty"
)

// scriptedHome makes a GOCHAT_HOME holding a byte-level tokenizer and a model, saved as a
// base and as an sft checkpoint, whose weights make it write "a" after every token,
// forever: its replies end only at the token limit or on Ctrl-C. Its sequence length
// leaves room for replies long enough to interrupt.
func scriptedHome(t *testing.T) string {
	home := t.TempDir()
	tok := scripted.Tokenizer()
	if err := tok.Save(filepath.Join(home, "tokenizer")); err != nil {
		t.Fatal(err)
	}
	cfg, w := scripted.Model(tok.VocabSize(), 4096, func(int) int { return 'a' })
	meta := checkpoint.Meta{Step: 1, ModelConfig: cfg, Tokenizer: checkpoint.Tokenizer{Fingerprint: tok.Fingerprint()}}
	for _, folder := range []string{"base_checkpoints", "chatsft_checkpoints"} {
		if err := checkpoint.Save(filepath.Join(home, folder, "d1"), w, nil, meta); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// terminal is the screen of a program run in a pseudo-terminal.
type terminal struct {
	mu  sync.Mutex
	out bytes.Buffer
}

// waitFor waits until the screen holds s after position from, and returns where s ends.
func (term *terminal) waitFor(t *testing.T, s string, from int) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		term.mu.Lock()
		screen := term.out.String()
		term.mu.Unlock()
		if i := strings.Index(screen[from:], s); i >= 0 {
			return from + i + len(s)
		}
	}
	term.mu.Lock()
	defer term.mu.Unlock()
	t.Fatalf("the terminal never showed %q; it shows:\n%s", s, term.out.String())
	return 0
}

// TestChatInTerminal drives `gochat chat` through a pseudo-terminal as a person would:
// a message and its streamed reply, Ctrl-C to stop the reply (the program goes on),
// clear, quit.
func TestChatInTerminal(t *testing.T) {
	home := scriptedHome(t)
	cmd := exec.Command(binary, "chat", "-i", "base", "-t", "0", "--max-tokens", "30000")
	cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	term := &terminal{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	at := term.waitFor(t, "base model", 0)
	at = term.waitFor(t, "User: ", at)
	f.WriteString("hello\r")
	at = term.waitFor(t, "helloaaaaaaaaaa", at)
	f.WriteString("\x03") // Ctrl-C
	at = term.waitFor(t, "[stopped]", at)
	at = term.waitFor(t, "User: ", at)
	f.WriteString("clear\r")
	at = term.waitFor(t, "Conversation cleared.", at)
	f.WriteString("quit\r")
	term.waitFor(t, "Goodbye!", at)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("chat ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("chat did not exit after quit")
	}
}

func TestChatAndSampleCommands(t *testing.T) {
	home := scriptedHome(t)
	out, stderr, err := inHome(t, home, "chat", "-p", "hi", "-t", "0", "--max-tokens", "5")
	if err != nil || !strings.Contains(out, "Assistant: aaaaa\n") {
		t.Errorf("one-shot chat: %v %q %s", err, out, stderr)
	}
	out, stderr, err = inHome(t, home, "sample", "-n", "2", "-t", "0", "--max-tokens", "3", "The")
	if err != nil || strings.Count(out, "Theaaa\n") != 2 || !strings.Contains(out, "--- sample 2") {
		t.Errorf("sample: %v %q %s", err, out, stderr)
	}
	for _, c := range []struct {
		args      []string
		want, not string
	}{
		{[]string{"chat", "-i", "rl", "-p", "hi"}, "-i base", "panic"},    // no RL run: the hint that the model is a base one
		{[]string{"chat", "-s", "7", "-p", "hi"}, "no step 7", "-i base"}, // an SFT run there: no such hint
		{[]string{"chat", "-i", "pretrain", "-p", "hi"}, "--source", "panic"},
		{[]string{"chat", "-t", "-1", "-p", "hi"}, "--temperature", "panic"},
		{[]string{"sample", "-n", "0", "x"}, "--num-samples", "panic"},
		{[]string{"sample", "-s", "7", "x"}, "no step 7", "panic"},
	} {
		if _, stderr, err := inHome(t, home, c.args...); err == nil || !strings.Contains(stderr, c.want) || strings.Contains(stderr, c.not) || strings.Contains(stderr, "panic") {
			t.Errorf("%v: %v %q", c.args, err, stderr)
		}
	}
}

// TestWebCommand runs `gochat web` on a free loopback port, asks it for a reply, and stops
// it with Ctrl-C.
func TestWebCommand(t *testing.T) {
	home := scriptedHome(t)
	cmd := exec.Command(binary, "web", "-p", "0", "-t", "0", "-m", "3")
	cmd.Env = append(os.Environ(), "GOCHAT_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	var url string
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "serving on "); ok {
			url = u
			break
		}
	}
	if url == "" {
		t.Fatalf("no address printed; stderr: %s", stderr.String())
	}
	res, err := http.Post(url+"/chat/completions", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `data: {"token":"a"}`) || !strings.HasSuffix(string(body), "data: {\"done\":true}\n\n") {
		t.Errorf("reply: %q", body)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		for lines.Scan() {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stderr.String(), `"content":"hi"`) {
			t.Errorf("exit %v; the conversation log: %q", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gochat web did not stop on Ctrl-C")
	}
}
