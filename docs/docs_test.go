package docs

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// guides are the guides in the order a reader takes them, which is the order their blocks
// run in: each may use what the ones before it made (the binary, the models).
var guides = []string{"install.md", "tutorial.md", "inference.md", "troubleshooting.md", "api.md", "nanochat.md"}

// smallSizes are the values of the tutorial's size variables under test: a d2 model of
// 64-token rows, a few steps of each stage, on the fixtures' little data. A variable set
// in the test's own environment keeps its value (DEPTH=4 go test ./docs runs a d4).
var smallSizes = []string{
	"DEPTH=2", "SEQ=64", "BATCH=512", "RATIO=0.1", "SHARDS=2", "VOCAB=512", "CHARS=2000000",
	"EVAL_TOKENS=4096",
}

// sizes is smallSizes but the ones the test's environment sets.
func sizes() []string {
	var out []string
	for _, kv := range smallSizes {
		if name, _, _ := strings.Cut(kv, "="); os.Getenv(name) == "" {
			out = append(out, kv)
		}
	}
	return out
}

// block is a fenced code block of a guide.
type block struct {
	file string
	line int    // the line of its opening fence
	lang string // "sh", "text", "go", …
	tag  string // the info string's second word: the machine a shell block is for
	body string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// readBlocks is the fenced blocks of a Markdown file, in order.
func readBlocks(path string) ([]block, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []block
	var cur *block
	var body []string
	for i, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			info := strings.Fields(strings.TrimPrefix(trimmed, "```"))
			cur = &block{file: filepath.Base(path), line: i + 1}
			if len(info) > 0 {
				cur.lang = info[0]
			}
			if len(info) > 1 {
				cur.tag = info[1]
			}
			body = nil
		case cur != nil && trimmed == "```":
			cur.body = strings.Join(body, "\n")
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: a code block is not closed", path, cur.line)
	}
	return out, nil
}

// TestGuides runs the guides' shell blocks and transcripts in order, in the repository's
// root as a reader would, with GOCHAT_HOME in a temporary folder and every download served
// on loopback; then it checks the gochat commands of the blocks meant for other machines.
func TestGuides(t *testing.T) {
	if testing.Short() {
		t.Skip("the guides run the whole pipeline")
	}
	for _, tool := range []string{"bash", "curl", "python3"} { // python3 runs HumanEval's programs
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("GOCHAT_REQUIRE_DOCS") != "" {
				t.Fatalf("the guides' commands need %s: %v", tool, err)
			}
			t.Skipf("skipped: the guides' commands need %s, which is not installed (%v)", tool, err)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mds, _ := filepath.Glob("*.md")
	for _, md := range mds {
		if md != "README.md" && !slices.Contains(guides, md) {
			t.Errorf("%s is not in the guides the test runs", md)
		}
	}
	env := append(servedDownloads(t, root), sizes()...)
	sh := newShell(t, root, append(env, "PORT="+freePort(t)))
	var elsewhere []block
	for _, g := range guides {
		blocks, err := readBlocks(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			switch {
			case b.lang == "sh" && b.tag == "":
				start := time.Now()
				out, err := sh.run(b.body, true)
				if err != nil {
					t.Fatalf("%s: %v\n%s", b, err, tail(out, 60))
				}
				t.Logf("%s: %.1f s\n%s", b, time.Since(start).Seconds(), tail(out, 4))
			case b.lang == "sh":
				elsewhere = append(elsewhere, b)
			case b.lang == "text" && strings.HasPrefix(b.body, "$ ") && (b.tag == "" || b.tag == runtime.GOOS):
				checkTranscript(t, sh, b)
			case b.lang == "text" && strings.HasPrefix(b.body, "$ "): // another system's output
				elsewhere = append(elsewhere, block{file: b.file, line: b.line, lang: "sh", tag: b.tag,
					body: strings.TrimPrefix(strings.SplitN(b.body, "\n", 2)[0], "$ ")})
			}
		}
	}
	help := helpOf(filepath.Join(root, "gochat"))
	for _, b := range elsewhere {
		for _, cmd := range gochatCommands(b.body) {
			if err := help.check(cmd); err != nil {
				t.Errorf("%s (for %s): %s: %v", b, b.tag, strings.Join(cmd, " "), err)
			}
		}
	}
}

// shell runs blocks as one bash session would: the variables one block sets (all
// exported) and the folder it moves to are the next one's.
type shell struct {
	t           *testing.T
	state, cwd  string // files holding the session's variables and folder between blocks
	environment []string
}

// newShell is a session in root whose GOCHAT_HOME and HOME are fresh folders (Go keeps
// its build and module caches).
func newShell(t *testing.T, root string, env []string) *shell {
	dir := t.TempDir()
	s := &shell{t: t, state: filepath.Join(dir, "state"), cwd: filepath.Join(dir, "cwd")}
	names := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOENV"} // GOENV: the settings of go env -w
	caches, err := exec.Command("go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		env = append(env, name+"="+strings.Split(string(caches), "\n")[i])
	}
	s.environment = append(os.Environ(), append(env, "GOCHAT_HOME="+filepath.Join(dir, "home"), "HOME="+filepath.Join(dir, "user"))...)
	os.Mkdir(filepath.Join(dir, "user"), 0o755)
	if err := os.WriteFile(s.cwd, []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs script in the session, with bash's -euo pipefail when strict, and returns what
// it printed (standard output and error together). A strict block's variables and folder
// carry on to the next.
func (s *shell) run(script string, strict bool) (string, error) {
	cwd, err := os.ReadFile(s.cwd)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	// A server a block starts in the background ends with the block, however it ends.
	fmt.Fprintf(&b, "trap 'kill $(jobs -p) 2>/dev/null' EXIT\nset -a\n[ -f %q ] && . %q\ncd %q\n", s.state, s.state, strings.TrimSpace(string(cwd)))
	if strict {
		b.WriteString("set -euo pipefail\n")
	}
	b.WriteString(script + "\n")
	if strict {
		fmt.Fprintf(&b, "set +eu\nexport -p | grep -Ev '^declare -x (PWD|OLDPWD|SHLVL|_)=' > %q\npwd > %q\n", s.state, s.cwd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", b.String())
	cmd.Env = s.environment
	cmd.WaitDelay = 10 * time.Second // for what bash started and left holding the output
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkTranscript runs a transcript's command ("$ " and the rest of its first line) and
// checks that the lines below it appear in its output in order, "…" standing for any text.
func checkTranscript(t *testing.T, sh *shell, b block) {
	t.Helper()
	lines := strings.Split(b.body, "\n")
	command := strings.TrimPrefix(lines[0], "$ ")
	out, _ := sh.run(command, false) // a transcript often shows an error: its status is not the point
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, want := range lines[1:] {
		if strings.TrimSpace(want) == "" {
			continue
		}
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(strings.TrimRight(want, " ")), "…", ".*") + "$")
		i := slices.IndexFunc(got, func(line string) bool { return re.MatchString(strings.TrimRight(line, " ")) })
		if i < 0 {
			t.Errorf("%s: `%s` did not print\n\t%s\nafter what it matched before; it printed:\n%s", b, command, want, tail(out, 30))
			return
		}
		got = got[i+1:]
	}
}

// gochatCommands is the gochat command lines of a shell block (the guides run the binary
// as ./gochat), each as its words up to the first of the shell's own operators, lines
// continued with \ joined.
func gochatCommands(script string) [][]string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(script, "\n") {
		words := strings.Fields(line)
		for i, w := range words {
			if w != "./gochat" {
				continue
			}
			var cmd []string
			for _, arg := range words[i+1:] {
				if strings.ContainsAny(arg[:1], "|&;>#<") {
					break
				}
				cmd = append(cmd, arg)
			}
			out = append(out, cmd)
			break
		}
	}
	return out
}

// help is what the binary's --help says of each command path, read once.
type help struct {
	binary string
	pages  map[string]string
}

func helpOf(binary string) *help { return &help{binary: binary, pages: map[string]string{}} }

func (h *help) page(path []string) (string, error) {
	key := strings.Join(path, " ")
	if p, ok := h.pages[key]; ok {
		return p, nil
	}
	out, err := exec.Command(h.binary, append(slices.Clone(path), "--help")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gochat %s --help: %v: %s", key, err, out)
	}
	h.pages[key] = string(out)
	return string(out), nil
}

// commands is the sub-commands a help page lists.
func commands(page string) []string {
	var names []string
	for _, line := range section(page, func(h string) bool { return strings.HasPrefix(h, "COMMANDS:") }) {
		if f := strings.Fields(strings.ReplaceAll(line, ",", " ")); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// flags is the flags (with their dashes, aliases too) a help page's OPTIONS list.
func flags(page string) []string {
	var names []string
	for _, line := range section(page, func(h string) bool { return strings.HasSuffix(h, "OPTIONS:") }) {
		// "   --source value, -i value     training stage …": the names, each with its
		// placeholder, before the usage.
		column, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		for _, part := range strings.Split(column, ", ") {
			if f := strings.Fields(part); len(f) > 0 && strings.HasPrefix(f[0], "-") {
				names = append(names, f[0])
			}
		}
	}
	return names
}

// section is the indented lines of a help page under each header line that header
// accepts, up to the next line that is not indented; blank lines are skipped.
func section(page string, header func(line string) bool) []string {
	var lines []string
	in := false
	for _, line := range strings.Split(page, "\n") {
		switch {
		case header(line):
			in = true
		case strings.TrimSpace(line) == "":
		case !strings.HasPrefix(line, " "):
			in = false
		case in:
			lines = append(lines, line)
		}
	}
	return lines
}

// check reports whether cmd (gochat's arguments) names commands that exist and flags they
// take.
func (h *help) check(cmd []string) error {
	var path []string
	page, err := h.page(nil)
	if err != nil {
		return err
	}
	for _, w := range cmd {
		if strings.HasPrefix(w, "-") || !slices.Contains(commands(page), w) {
			break
		}
		path = append(path, w)
		if page, err = h.page(path); err != nil {
			return err
		}
	}
	if len(path) == 0 {
		return fmt.Errorf("no such command")
	}
	for _, w := range cmd[len(path):] {
		if !strings.HasPrefix(w, "-") || w == "-" {
			continue
		}
		name, _, _ := strings.Cut(w, "=")
		if !slices.Contains(flags(page), name) {
			return fmt.Errorf("gochat %s has no flag %s", strings.Join(path, " "), name)
		}
	}
	return nil
}

// freePort is a port of the loopback interface that nothing listens on.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// linkPattern is a Markdown link's target.
var linkPattern = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinks: every relative link of the guides and the README reaches a file or folder of
// the repository, and every #anchor a heading of its page.
func TestLinks(t *testing.T) {
	pages, _ := filepath.Glob("*.md")
	pages = append(pages, filepath.Join("..", "README.md"))
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(stripCode(string(raw)), "\n") {
			for _, m := range linkPattern.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				path := page
				if file != "" {
					path = filepath.Join(filepath.Dir(page), file)
				}
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: %s: no such file", page, i+1, target)
					continue
				}
				if anchor != "" && !slices.Contains(anchors(t, path), anchor) {
					t.Errorf("%s:%d: %s: no heading of %s has that anchor", page, i+1, target, path)
				}
			}
		}
	}
}

// stripCode blanks a Markdown page's code blocks and inline code, keeping its lines.
func stripCode(md string) string {
	return regexp.MustCompile("`[^`\n]*`").ReplaceAllString(stripFences(md), "")
}

// anchors is the anchors GitHub gives the headings of a Markdown page.
func anchors(t *testing.T, path string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(stripFences(string(raw)), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var slug strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				slug.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				slug.WriteRune(r)
			}
		}
		out = append(out, slug.String())
	}
	return out
}

// stripFences blanks a page's fenced code blocks (whose # lines are not headings).
func stripFences(md string) string {
	lines := strings.Split(md, "\n")
	in := false
	for i, line := range lines {
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		if fence {
			in = !in
		}
		if fence || in {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// TestFlags: a help page's flags are those its OPTIONS list, aliases and all; a flag its
// description only mentions is not one.
func TestFlags(t *testing.T) {
	page := `NAME:
   gochat eval core - CORE

DESCRIPTION:
   Scores like --max-per-task does in nanochat, with --depth ignored.

OPTIONS:
   --source value, -i value  training stage (default: "base")
   --json FILE               results as JSON
   --int8                    the matrices in int8
   --help, -h                show help
`
	want := []string{"--source", "-i", "--json", "--int8", "--help", "-h"}
	if got := flags(page); !slices.Equal(got, want) {
		t.Errorf("flags: %q, want %q", got, want)
	}
}
