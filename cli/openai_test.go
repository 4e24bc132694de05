package main

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeAndNPM finds Node.js and npm. Where either is missing the OpenAI client test is
// skipped, unless GOCHAT_REQUIRE_NODE is set, as .ci/run sets it after installing them.
func nodeAndNPM(t *testing.T) (node, npm string) {
	node, errNode := exec.LookPath("node")
	npm, errNPM := exec.LookPath("npm")
	if errNode == nil && errNPM == nil {
		return node, npm
	}
	if os.Getenv("GOCHAT_REQUIRE_NODE") != "" {
		t.Fatal("no node or no npm, and GOCHAT_REQUIRE_NODE is set (apt-get install nodejs npm)")
	}
	t.Skip("no node or no npm here (apt-get install nodejs npm)")
	return "", ""
}

// openAIClientMajor is the major version of OpenAI's Node client the test installs: 4, the
// last that runs on the Node.js 18 of Debian 12 (7, the current one, wants Node.js 22).
const openAIClientMajor = "4"

// openAIClient installs OpenAI's Node client from the npm registry into the user's cache
// folder, once, and returns the folder of the package.
func openAIClient(t *testing.T, npm string) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache folder for the npm package: %v", err)
	}
	dir := filepath.Join(cache, "gochat", "openai-node-"+openAIClientMajor)
	module := filepath.Join(dir, "node_modules", "openai")
	if _, err := os.Stat(filepath.Join(module, "package.json")); err == nil {
		return module
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	// Installed beside its place and moved there whole, so that a test running at the same
	// time never sees half a package.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "installing-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, npm, "install", "--prefix", tmp, "--no-audit", "--no-fund", "--loglevel=error",
		"openai@"+openAIClientMajor).CombinedOutput()
	if err != nil {
		t.Fatalf("npm install openai@%s (it needs the npm registry): %v\n%s", openAIClientMajor, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(module, "package.json")); statErr != nil {
			t.Fatalf("placing the npm package: %v", err)
		}
	}
	return module
}

// startWeb runs `gochat web` with args on a free loopback port over the checkpoints in home
// and returns its address and its first lines; it is stopped with Ctrl-C when the test ends.
func startWeb(t *testing.T, home string, env []string, args ...string) (url string, banner []string) {
	cmd := exec.Command(binary, append([]string{"web", "-p", "0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "GOCHAT_HOME="+home), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("gochat web did not stop on Ctrl-C")
		}
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		banner = append(banner, lines.Text())
		if u, ok := strings.CutPrefix(lines.Text(), "serving on "); ok {
			url = u
		}
		if strings.HasPrefix(lines.Text(), "OpenAI API: ") {
			go func() { // the rest, so that the server never blocks on a full pipe
				for lines.Scan() {
				}
			}()
			return url, banner
		}
	}
	t.Fatalf("gochat web printed no address; stdout %q, stderr %s", banner, stderr.String())
	return "", nil
}

// clientScript uses OpenAI's Node client as an application would, and prints what it got
// as one JSON object.
const clientScript = `
const { OpenAI, APIError } = require(process.env.OPENAI_MODULE);
const baseURL = process.env.BASE_URL;
const client = new OpenAI({ baseURL, apiKey: process.env.API_KEY, maxRetries: 0 });

function describe(e) {
  return { apiError: e instanceof APIError, name: e.constructor.name, status: e.status, type: e.type,
    param: e.param ?? null, code: e.code ?? null, message: e.message };
}

async function main() {
  const out = { streamed: "", chunks: 0, errors: {} };
  const stream = await client.chat.completions.create({ model: "sft-d1", messages: [{ role: "user", content: "hi" }],
    stream: true, stream_options: { include_usage: true }, max_tokens: 5, temperature: 0 });
  for await (const chunk of stream) {
    out.chunks++;
    if (chunk.usage) out.streamUsage = chunk.usage;
    for (const c of chunk.choices) {
      out.streamed += c.delta.content ?? "";
      if (c.finish_reason) out.streamFinish = c.finish_reason;
    }
  }

  const whole = await client.chat.completions.create({ model: "sft-d1", n: 2, max_tokens: 3, temperature: 0,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }] });
  out.object = whole.object;
  out.choices = whole.choices.map(c => [c.index, c.message.role, c.message.content, c.finish_reason]);
  out.usage = whole.usage;

  out.models = (await client.models.list()).data.map(m => m.id);

  const calls = {
    key: () => new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 }).models.list(),
    model: () => client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
    invalid: () => client.chat.completions.create({ model: "sft-d1", messages: [{ role: "user", content: "hi" }], temperature: 3 }),
  };
  for (const [name, call] of Object.entries(calls)) {
    try {
      await call();
      out.errors[name] = "no error";
    } catch (e) {
      out.errors[name] = describe(e);
    }
  }
  console.log(JSON.stringify(out));
}

main().catch(e => { console.error(e); process.exit(1); });
`

// clientError is what the script saw of an error.
type clientError struct {
	APIError bool    `json:"apiError"`
	Name     string  `json:"name"`
	Status   int     `json:"status"`
	Type     string  `json:"type"`
	Param    *string `json:"param"`
	Code     *string `json:"code"`
	Message  string  `json:"message"`
}

// TestOpenAIClient runs OpenAI's own Node client against `gochat web`, its key given in
// GOCHAT_API_KEY: a streamed completion with usage, a whole one with a system message and
// two choices, the model list, and three errors it must raise as APIErrors.
func TestOpenAIClient(t *testing.T) {
	node, npm := nodeAndNPM(t)
	module := openAIClient(t, npm)
	url, banner := startWeb(t, scriptedHome(t), []string{"GOCHAT_API_KEY=test-key"}, "-t", "0.8")
	if last := banner[len(banner)-1]; last != "OpenAI API: "+url+"/v1, model sft-d1, its key as a bearer token" {
		t.Errorf("the banner's last line: %q", last)
	}
	script := filepath.Join(t.TempDir(), "client.js")
	if err := os.WriteFile(script, []byte(clientScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(), "OPENAI_MODULE="+module, "BASE_URL="+url+"/v1", "API_KEY=test-key")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the client script: %v\n%s", err, stderr.String())
	}
	t.Logf("the client saw: %s", out)
	var got struct {
		Streamed     string         `json:"streamed"`
		Chunks       int            `json:"chunks"`
		StreamFinish string         `json:"streamFinish"`
		StreamUsage  map[string]int `json:"streamUsage"`
		Object       string         `json:"object"`
		Choices      [][]any        `json:"choices"`
		Usage        map[string]int `json:"usage"`
		Models       []string       `json:"models"`
		Errors       map[string]clientError
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("the script's output %q: %v", out, err)
	}

	// The scripted model writes "a" after every token.
	if got.Streamed != "aaaaa" || got.StreamFinish != "length" || got.Chunks != 1+5+1+1 {
		t.Errorf("streamed %q (%s) in %d chunks, want aaaaa (length) in 8: role, 5 tokens, finish, usage", got.Streamed, got.StreamFinish, got.Chunks)
	}
	if want := map[string]int{"prompt_tokens": 6, "completion_tokens": 5, "total_tokens": 11}; !maps.Equal(got.StreamUsage, want) {
		t.Errorf("streamed usage %v, want %v", got.StreamUsage, want)
	}
	wantChoice := func(i int) []any { return []any{float64(i), "assistant", "aaa", "length"} }
	if got.Object != "chat.completion" || len(got.Choices) != 2 || !slices.Equal(got.Choices[0], wantChoice(0)) || !slices.Equal(got.Choices[1], wantChoice(1)) {
		t.Errorf("whole answer %s %v", got.Object, got.Choices)
	}
	prompt := 4 + len("Be brief.\n\nhi") // the system message merged into the user's
	if want := map[string]int{"prompt_tokens": prompt, "completion_tokens": 6, "total_tokens": prompt + 6}; !maps.Equal(got.Usage, want) {
		t.Errorf("usage %v, want %v", got.Usage, want)
	}
	if len(got.Models) != 1 || got.Models[0] != "sft-d1" {
		t.Errorf("models %v", got.Models)
	}
	str := func(s *string) string {
		if s == nil {
			return "null"
		}
		return *s
	}
	for name, want := range map[string]struct {
		class       string
		status      int
		param, code string
	}{
		"key":     {"AuthenticationError", 401, "null", "invalid_api_key"},
		"model":   {"NotFoundError", 404, "model", "model_not_found"},
		"invalid": {"BadRequestError", 400, "temperature", "null"},
	} {
		e := got.Errors[name]
		if !e.APIError || e.Name != want.class || e.Status != want.status || e.Type != "invalid_request_error" ||
			str(e.Param) != want.param || str(e.Code) != want.code || e.Message == "" {
			t.Errorf("%s: the client raised %+v, want an APIError %s %d, param %s, code %s", name, e, want.class, want.status, want.param, want.code)
		}
	}
}
