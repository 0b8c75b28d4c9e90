package multiexit_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Every scenario is run by some test, benchmark or example: a scenario
// whose tests were deleted or rewritten is dead code that still looks
// tested. The check reads the package's test files (those of every
// system), finds what each init registers with scenario, and follows the
// names that each Test, Benchmark and Example function refers to, through
// the helpers and the scenarios they refer to in turn. It is static, so
// that a skipped test (no root, no cgroup v2) or a -run filter does not
// make its scenarios look unused.
func TestEveryScenarioIsUsed(t *testing.T) {
	if _, err := os.Stat("scenarios_test.go"); err != nil {
		t.Skipf("the package's sources are not beside the test binary (a cross-compiled binary run elsewhere, as under wine): %v", err)
	}
	registered, reached := scenarioUse(t, ".")
	if len(registered) == 0 {
		t.Fatal("no scenario registration found: the check would pass on anything")
	}
	for name := range scenarios {
		if !slices.Contains(registered, name) {
			t.Errorf("scenario %s is registered at run time but the check did not find its registration", name)
		}
	}
	for _, name := range registered {
		if !reached[name] {
			t.Errorf("scenario %s is registered, but no test, benchmark or example runs it", name)
		}
	}
}

// scenarioUse reads the external test package's files in dir and returns
// the scenarios registered there, and every name that a Test, Benchmark
// or Example function reaches.
func scenarioUse(t *testing.T, dir string) (registered []string, reached map[string]bool) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	funcs := map[string][]ast.Node{}   // top-level functions and variables, by name
	methods := map[string][]ast.Node{} // methods, by name
	var roots []string
	for _, path := range paths {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "multiexit_test" {
			continue
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				name := d.Name.Name
				switch {
				case d.Recv != nil:
					methods[name] = append(methods[name], d)
				case name == "init":
					registered = append(registered, registrations(d)...)
				default:
					funcs[name] = append(funcs[name], d)
					for _, p := range []string{"Test", "Benchmark", "Example"} {
						if strings.HasPrefix(name, p) && name != "TestMain" && name != "TestEveryScenarioIsUsed" {
							roots = append(roots, name)
						}
					}
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if vs, ok := s.(*ast.ValueSpec); ok {
						for _, n := range vs.Names {
							funcs[n.Name] = append(funcs[n.Name], vs)
						}
					}
				}
			}
		}
	}
	// Functions and variables are reached by name, methods by the names
	// selected (x.name): the check needs no type information, and a
	// method is reached from every x.name.
	reached = map[string]bool{}
	seenMethod := map[string]bool{}
	var visit func(decls []ast.Node)
	visit = func(decls []ast.Node) {
		for _, d := range decls {
			idents, sels := references(d)
			for _, n := range idents {
				if len(funcs[n]) > 0 && !reached[n] {
					reached[n] = true
					visit(funcs[n])
				}
			}
			for _, n := range sels {
				if len(methods[n]) > 0 && !seenMethod[n] {
					seenMethod[n] = true
					visit(methods[n])
				}
			}
		}
	}
	for _, r := range roots {
		reached[r] = true
		visit(funcs[r])
	}
	return registered, reached
}

// registrations returns the names that an init passes to scenario.
func registrations(init *ast.FuncDecl) []string {
	var names []string
	ast.Inspect(init, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "scenario" {
				for _, a := range c.Args {
					if id, ok := a.(*ast.Ident); ok {
						names = append(names, id.Name)
					}
				}
			}
		}
		return true
	})
	return names
}

// references returns the identifiers that declaration d uses, but for the
// names it declares inside itself (parameters, variables), and the names
// it selects (x.name: methods and fields).
func references(d ast.Node) (idents, sels []string) {
	local := map[string]bool{}
	declare := func(ids ...*ast.Ident) {
		for _, id := range ids {
			local[id.Name] = true
		}
	}
	ast.Inspect(d, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Field:
			declare(n.Names...)
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, e := range n.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						declare(id)
					}
				}
			}
		case *ast.RangeStmt:
			if n.Tok == token.DEFINE {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if id, ok := e.(*ast.Ident); ok {
						declare(id)
					}
				}
			}
		case *ast.DeclStmt:
			if g, ok := n.Decl.(*ast.GenDecl); ok {
				for _, s := range g.Specs {
					if vs, ok := s.(*ast.ValueSpec); ok {
						declare(vs.Names...)
					}
				}
			}
		}
		return true
	})
	selected := map[*ast.Ident]bool{}
	ast.Inspect(d, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			sels = append(sels, n.Sel.Name)
			selected[n.Sel] = true
		case *ast.Ident:
			if !local[n.Name] && !selected[n] {
				idents = append(idents, n.Name)
			}
		}
		return true
	})
	return idents, sels
}
