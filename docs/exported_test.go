package docs

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportedDocs: every package of the module but its commands has a package comment,
// and every exported identifier a doc comment (a value may be documented by its group's
// comment or a comment on its line), as `go doc` and pkgsite show them.
func TestExportedDocs(t *testing.T) {
	err := filepath.WalkDir("..", func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); dir != ".." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, pkg := range pkgs {
			if pkg.Name == "main" {
				continue
			}
			for _, missing := range undocumented(doc.New(pkg, dir, 0)) {
				t.Errorf("%s: %s has no doc comment", filepath.ToSlash(dir[3:]), missing)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// undocumented names the exported identifiers of p without a doc comment.
func undocumented(p *doc.Package) []string {
	var out []string
	if strings.TrimSpace(p.Doc) == "" {
		out = append(out, "package "+p.Name)
	}
	funcs := func(prefix string, fs []*doc.Func) {
		for _, f := range fs {
			if strings.TrimSpace(f.Doc) == "" {
				out = append(out, prefix+f.Name)
			}
		}
	}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			if v.Doc != "" {
				continue
			}
			for _, spec := range v.Decl.Specs {
				s := spec.(*ast.ValueSpec)
				for _, name := range s.Names {
					if name.IsExported() && s.Doc == nil && s.Comment == nil {
						out = append(out, name.Name)
					}
				}
			}
		}
	}
	funcs("", p.Funcs)
	values(p.Consts)
	values(p.Vars)
	for _, typ := range p.Types {
		if strings.TrimSpace(typ.Doc) == "" {
			out = append(out, "type "+typ.Name)
		}
		funcs("", typ.Funcs)
		funcs(typ.Name+".", typ.Methods)
		values(typ.Consts)
		values(typ.Vars)
	}
	return out
}
