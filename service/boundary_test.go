package service_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestServiceRunsNoAgent: the service holds commands and queries only. Its
// code calls no model (no agents.Step, no Model.Complete), runs no tool (no
// sandbox) and starts no run; package runner does all of that.
func TestServiceRunsNoAgent(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, p := range pkgs {
		for name, f := range p.Files {
			files++
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, banned := range []string{"/sandbox", "/runner", "/llm", "/metrics"} {
					if strings.HasSuffix(path, banned) {
						t.Errorf("%s imports %s", name, path)
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "agents" && sel.Sel.Name == "Step" {
					t.Errorf("%s: calls agents.Step at %s", name, fset.Position(sel.Pos()))
				}
				if sel.Sel.Name == "Complete" || sel.Sel.Name == "Stream" {
					t.Errorf("%s: calls a model (%s) at %s", name, sel.Sel.Name, fset.Position(sel.Pos()))
				}
				return true
			})
		}
	}
	if files < 10 {
		t.Fatalf("parsed only %d files; is the walk broken?", files)
	}
}
