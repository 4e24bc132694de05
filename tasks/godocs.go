package tasks

import (
	"fmt"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gochat/tokenizer"
)

// goDocQuestions are the ways GoDocs asks about a package; %s is its import path.
var goDocQuestions = []string{
	"What does the Go package %s do?",
	"What is the %s package for?",
	"Tell me about Go's %s package.",
}

// GoDocs is a conversation about each package of the Go source tree under src (such as
// $(go env GOROOT)/src) that has a package comment: a question naming its import path,
// answered with the comment's first paragraph. Commands, internal and vendored packages
// and test data are left out. It is data every machine that builds gochat can make, for
// the demo: questions a model trained on Go's source can learn to answer.
func GoDocs(src string) (Task, error) {
	var convs []tokenizer.Conversation
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if rel != "." && (name == "testdata" || name == "internal" || name == "vendor" || rel == "cmd" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		answer, err := packageDoc(path, rel)
		if err != nil || answer == "" {
			return err
		}
		q := goDocQuestions[len(convs)%len(goDocQuestions)]
		convs = append(convs, question(fmt.Sprintf(q, rel), answer))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("go docs: %w", err)
	}
	if len(convs) == 0 {
		return nil, fmt.Errorf("go docs: no package comments under %s", src)
	}
	return Rows[tokenizer.Conversation]{Rows: convs, Convert: func(c tokenizer.Conversation) (Example, error) {
		return Example{Conversation: c}, nil
	}}, nil
}

// packageDoc is the first paragraph of the package comment of the Go package in dir (its
// import path rel), or "" when it has none.
func packageDoc(dir, rel string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") && !e.IsDir() {
			files = append(files, n)
		}
	}
	slices.SortFunc(files, func(a, b string) int { // doc.go holds the comment when there is one
		return boolInt(b == "doc.go") - boolInt(a == "doc.go")
	})
	fset := token.NewFileSet()
	for _, n := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil || f.Doc == nil || f.Name.Name == "main" {
			continue
		}
		var p doc.Package
		text := p.Synopsis(f.Doc.Text())
		if first, _, _ := strings.Cut(strings.TrimSpace(f.Doc.Text()), "\n\n"); len(first) <= 400 {
			text = strings.Join(strings.Fields(first), " ")
		}
		if text == "" {
			continue
		}
		return fmt.Sprintf("%s (import %q): %s", f.Name.Name, rel, text), nil
	}
	return "", nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
