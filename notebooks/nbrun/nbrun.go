// Package nbrun turns a Jupyter notebook written for the gophernotes kernel into a Go
// program that runs its code cells in order, the way the kernel would, so that a test can
// build and run the notebook without Jupyter:
//
//   - imports are merged, and the kernel's own display package (gochat/notebooks/display)
//     is imported, with the Display function the kernel defines;
//   - top-level declarations (func, type, const, var) stay at the top level;
//   - every other statement runs in sequence in main, so a variable a cell declares with :=
//     is seen by the cells after it (a variable no later line uses is not an error, as in
//     the kernel);
//   - a cell whose last statement is an expression with a value shows it, as the kernel
//     does: a display.Data or an image.Image as an image, anything else printed.
//
// A code cell's lines "// expect: TEXT" name output the cell must print: Run fails unless
// each TEXT appears in the program's output, in the order of the cells. Compile errors and
// panics name the cell and line (//line directives: "01_tokenizer.ipynb#3:5" is cell 3,
// line 5).
package nbrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DisplayPackage is the import path of the kernel's display package stand-in.
const DisplayPackage = "gochat/notebooks/display"

// Notebook is a notebook's code cells, in order, and the output they are expected to print.
type Notebook struct {
	Name   string   // the file's base name, which compile errors and panics cite
	Cells  []string // the code cells' sources
	Expect []string // every "// expect: TEXT" of the code cells, in order
}

// Read reads a notebook file (nbformat 4: cells with a cell_type and a source that is a
// string or a list of lines).
func Read(path string) (*Notebook, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file struct {
		Cells []struct {
			Type   string          `json:"cell_type"`
			Source json.RawMessage `json:"source"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	nb := &Notebook{Name: filepath.Base(path)}
	for i, c := range file.Cells {
		if c.Type != "code" {
			continue
		}
		var src string
		var lines []string
		if err := json.Unmarshal(c.Source, &lines); err == nil {
			src = strings.Join(lines, "")
		} else if err := json.Unmarshal(c.Source, &src); err != nil {
			return nil, fmt.Errorf("%s: cell %d: source is neither a string nor a list of lines", path, i+1)
		}
		nb.Cells = append(nb.Cells, src)
		for _, line := range strings.Split(src, "\n") {
			if text, ok := strings.CutPrefix(strings.TrimSpace(line), "// expect:"); ok {
				nb.Expect = append(nb.Expect, strings.TrimSpace(text))
			}
		}
	}
	return nb, nil
}

// chunk is a top-level piece of a cell: a statement, an import or a declaration.
type chunk struct {
	kind kind
	text string
	line int // of the cell where it starts
}

// kind is what a chunk is.
type kind int

const (
	statement   kind = iota // run in main
	imports                 // merged into the program's imports
	declaration             // func, method, type, const or var: kept at the top level
)

// tok is a token of a cell, where it lies and the offset just past it.
type tok struct {
	pos token.Pos
	tok token.Token
	end int
}

// split cuts a cell into chunks at its top-level semicolons (the newlines that end
// statements and declarations), by the keyword each starts with.
func split(src string) ([]chunk, error) {
	fset := token.NewFileSet()
	file := fset.AddFile("cell", -1, len(src))
	var s scanner.Scanner
	var errs scanner.ErrorList
	s.Init(file, []byte(src), func(pos token.Position, msg string) { errs.Add(pos, msg) }, 0)
	var toks []tok
	for {
		pos, t, lit := s.Scan()
		if t == token.EOF {
			break
		}
		end := file.Offset(pos) + len(lit)
		if lit == "" {
			end += len(t.String())
		}
		toks = append(toks, tok{pos, t, end})
	}
	if errs.Len() > 0 {
		return nil, errs.Err()
	}
	var chunks []chunk
	depth, start, end := 0, -1, 0 // end: past the chunk's last token, comments left out
	for i, t := range toks {
		if start < 0 {
			if t.tok == token.SEMICOLON {
				continue
			}
			start = i
		}
		switch t.tok {
		case token.LPAREN, token.LBRACE, token.LBRACK:
			depth++
		case token.RPAREN, token.RBRACE, token.RBRACK:
			depth--
		}
		if t.tok != token.SEMICOLON {
			end = t.end
		}
		if i < len(toks)-1 && (t.tok != token.SEMICOLON || depth > 0) {
			continue
		}
		from := file.Offset(toks[start].pos)
		chunks = append(chunks, chunk{kind: kindOf(toks[start:]), text: src[from:end], line: file.Line(toks[start].pos)})
		start = -1
	}
	return chunks, nil
}

// kindOf says what the tokens of a chunk start: an import, a declaration (a function or
// method, not a function literal) or a statement.
func kindOf(toks []tok) kind {
	switch toks[0].tok {
	case token.IMPORT:
		return imports
	case token.TYPE, token.CONST, token.VAR:
		return declaration
	case token.FUNC:
		if len(toks) > 1 && toks[1].tok == token.IDENT {
			return declaration
		}
		if len(toks) > 1 && toks[1].tok == token.LPAREN { // a receiver, then the method's name?
			depth := 0
			for i := 1; i < len(toks); i++ {
				switch toks[i].tok {
				case token.LPAREN:
					depth++
				case token.RPAREN:
					depth--
				}
				if depth == 0 {
					if i+1 < len(toks) && toks[i+1].tok == token.IDENT {
						return declaration
					}
					break
				}
			}
		}
	}
	return statement
}

// Imports lists the packages nb imports, the display package included.
func (nb *Notebook) Imports() ([]string, error) {
	specs, err := nb.imports()
	if err != nil {
		return nil, err
	}
	paths := []string{DisplayPackage}
	for _, s := range specs {
		paths = append(paths, s.path)
	}
	return paths, nil
}

// importSpec is one import of a notebook: its name ("" when none) and path.
type importSpec struct{ name, path string }

func (nb *Notebook) imports() ([]importSpec, error) {
	seen := map[importSpec]bool{}
	var specs []importSpec
	for i, cell := range nb.Cells {
		chunks, err := split(cell)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", nb.Name, i+1, err)
		}
		for _, c := range chunks {
			if c.kind != imports {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+c.text, parser.ImportsOnly)
			if err != nil {
				return nil, fmt.Errorf("%s#%d: %w", nb.Name, i+1, err)
			}
			for _, is := range f.Imports {
				s := importSpec{path: mustUnquote(is.Path.Value)}
				if is.Name != nil {
					s.name = is.Name.Name
				}
				if !seen[s] && s.path != DisplayPackage {
					seen[s] = true
					specs = append(specs, s)
				}
			}
		}
	}
	return specs, nil
}

// mustUnquote unquotes an import path the parser has accepted.
func mustUnquote(lit string) string {
	s, err := strconv.Unquote(lit)
	if err != nil {
		panic(fmt.Sprintf("nbrun: the parser accepted the import path %s: %v", lit, err))
	}
	return s
}

// resultLabel marks, in the program Program type-checks, each cell's last expression, whose
// type decides whether the cell shows it.
const resultLabel = "nbResult"

// Program returns nb as the source of a main package. imp resolves its imports for the
// type check that finds which cells end in an expression with a value (Exports makes one).
func (nb *Notebook) Program(imp types.Importer) ([]byte, error) {
	specs, err := nb.imports()
	if err != nil {
		return nil, err
	}
	var decls strings.Builder
	var body []part
	for i, cell := range nb.Cells {
		chunks, err := split(cell)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", nb.Name, i+1, err)
		}
		for j, c := range chunks {
			directive := fmt.Sprintf("//line %s#%d:%d\n", nb.Name, i+1, c.line)
			switch {
			case c.kind == imports:
			case c.kind == declaration:
				decls.WriteString(directive + c.text + "\n")
			case j == len(chunks)-1 && isExpression(c.text):
				body = append(body, part{directive: directive, text: c.text, result: true, cell: i})
			default:
				body = append(body, part{directive: directive, text: c.text})
			}
		}
	}
	// assemble writes the program, each cell's last expression as result makes it, and tail
	// at the end of main.
	assemble := func(result func(p part) string, tail string) string {
		var src strings.Builder
		src.WriteString("package main\n\nimport (\n")
		fmt.Fprintf(&src, "\t%q\n", DisplayPackage)
		for _, s := range specs {
			fmt.Fprintf(&src, "\t%s %q\n", s.name, s.path)
		}
		src.WriteString(")\n\n// Display shows d at once, as the kernel's Display does.\nfunc Display(d display.Data) error { return display.Show(d) }\n\n")
		src.WriteString(decls.String())
		src.WriteString("\nfunc main() {\n")
		for _, p := range body {
			text := p.text
			if p.result {
				text = result(p)
			}
			src.WriteString(p.directive + text + "\n")
		}
		src.WriteString(tail + "}\n")
		return src.String()
	}
	probe := assemble(func(p part) string { return fmt.Sprintf("%s%d: %s", resultLabel, p.cell, p.text) }, "")
	void, vars, err := check(probe, imp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nb.Name, err)
	}
	var tail strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&tail, "_ = %s\n", v)
	}
	src := assemble(func(p part) string {
		if void[p.cell] {
			return p.text
		}
		return "display.Result(" + p.text + ")"
	}, tail.String())
	return []byte(src), nil
}

// part is a statement of main: a cell's, after the //line directive that names it; result
// marks a cell's last statement when it is an expression.
type part struct {
	directive, text string
	result          bool
	cell            int
}

// isExpression says whether a statement is an expression alone.
func isExpression(stmt string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\nfunc _() {\n"+stmt+"\n}", 0)
	if err != nil {
		return false
	}
	list := f.Decls[0].(*ast.FuncDecl).Body.List
	_, ok := list[0].(*ast.ExprStmt)
	return len(list) == 1 && ok
}

// check type-checks the probe program (its errors are left to the compiler) and returns the
// cells whose last expression has no value, and the variables main declares at its top.
func check(src string, imp types.Importer) (void map[int]bool, vars []string, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", src, parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, err
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: imp, Error: func(error) {}}
	conf.Check("main", fset, []*ast.File{f}, info) // errors: the compiler reports them
	void = map[int]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "main" || fn.Recv != nil {
			continue
		}
		for _, stmt := range fn.Body.List {
			switch s := stmt.(type) {
			case *ast.LabeledStmt:
				cell, err := strconv.Atoi(strings.TrimPrefix(s.Label.Name, resultLabel))
				if err != nil {
					return nil, nil, fmt.Errorf("nbrun: label %s in a notebook", s.Label.Name)
				}
				if tv, ok := info.Types[s.Stmt.(*ast.ExprStmt).X]; ok && tv.IsVoid() {
					void[cell] = true
				}
			case *ast.AssignStmt:
				if s.Tok == token.DEFINE {
					vars = append(vars, definedNames(s.Lhs, info)...)
				}
			case *ast.DeclStmt:
				if g, ok := s.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
					for _, spec := range g.Specs {
						vars = append(vars, definedNames(identExprs(spec.(*ast.ValueSpec).Names), info)...)
					}
				}
			}
		}
	}
	sort.Strings(vars)
	return void, vars, nil
}

// definedNames are the names of exprs that declare a new variable (not _).
func definedNames(exprs []ast.Expr, info *types.Info) []string {
	var names []string
	for _, e := range exprs {
		if id, ok := e.(*ast.Ident); ok && id.Name != "_" && info.Defs[id] != nil {
			names = append(names, id.Name)
		}
	}
	return names
}

func identExprs(ids []*ast.Ident) []ast.Expr {
	exprs := make([]ast.Expr, len(ids))
	for i, id := range ids {
		exprs[i] = id
	}
	return exprs
}

// Exports builds the packages paths (and their dependencies) in the module at dir and
// returns an importer of their export data, for Program's type check.
func Exports(dir string, paths []string) (types.Importer, error) {
	cmd := exec.Command("go", append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}"}, paths...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export %s: %w\n%s", strings.Join(paths, " "), err, stderr.Bytes())
	}
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "="); ok && file != "" {
			files[path] = file
		}
	}
	lookup := func(path string) (io.ReadCloser, error) {
		file, ok := files[path]
		if !ok {
			return nil, fmt.Errorf("nbrun: no export data for %s", path)
		}
		return os.Open(file)
	}
	return importer.ForCompiler(token.NewFileSet(), "gc", lookup), nil
}

// Build writes each notebook's program to work/<i>/main.go (work must lie inside the
// module at dir, so that the programs import its packages) and builds them all with one go
// build, returning the binaries' paths in the notebooks' order.
func Build(dir, work string, nbs []*Notebook) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if work, err = filepath.Abs(work); err != nil {
		return nil, err
	}
	var paths []string
	for _, nb := range nbs {
		p, err := nb.Imports()
		if err != nil {
			return nil, err
		}
		paths = append(paths, p...)
	}
	imp, err := Exports(dir, paths)
	if err != nil {
		return nil, err
	}
	args := []string{"build", "-o", filepath.Join(work, "bin") + string(filepath.Separator)}
	var bins []string
	for i, nb := range nbs {
		src, err := nb.Program(imp)
		if err != nil {
			return nil, err
		}
		pkg := filepath.Join(work, fmt.Sprintf("nb%d", i+1))
		if err := os.MkdirAll(pkg, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(pkg, "main.go"), src, 0o644); err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(dir, pkg)
		if err != nil {
			return nil, err
		}
		args = append(args, "./"+filepath.ToSlash(rel))
		bins = append(bins, filepath.Join(work, "bin", fmt.Sprintf("nb%d", i+1)))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build of the notebooks: %w\n%s", err, out)
	}
	return bins, nil
}

// Check reports the first expected text that output lacks, each looked for after the one
// before.
func (nb *Notebook) Check(output []byte) error {
	rest := string(output)
	for _, want := range nb.Expect {
		i := strings.Index(rest, want)
		if i < 0 {
			return fmt.Errorf("%s: the output lacks %q (after the expected lines before it)", nb.Name, want)
		}
		rest = rest[i+len(want):]
	}
	return nil
}
