package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Static guards (docs/reliability.md, T17, T39, T40) over every non-test Go file
// of the module, read as syntax rather than grepped, so that spacing or an
// alias does not hide anything: no shell is ever run, every program the bot
// runs gets an explicit environment (a nil Cmd.Env inherits the bot's
// tokens), and bbolt keeps fsync on and is never batched. make test also
// greps for "sh", "-c".

// shells are programs that interpret a string as commands.
var shells = []string{"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "csh", "tcsh", "fish", "busybox", "cmd", "cmd.exe", "powershell", "pwsh"}

// runtimePackages are the directories whose code runs inside the bot; a
// program they start must get an explicit environment.
var runtimePackages = []string{"commands", "commands/hook", "bot", "storage", "storage/postgres", "tracker", "cmd/dobrobot", "cmd/internal/adminsock", "cmd/internal/audit", "cmd/internal/monitor"}

type staticFinding struct{ pos, what string }

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// goFiles parses every non-test .go file under root, skipping testdata.
func goFiles(t *testing.T, root string) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fset, files
}

// importName returns the name under which f imports pkg, or "".
func importName(f *ast.File, pkg string) string {
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == pkg {
			if im.Name != nil {
				return im.Name.Name
			}
			return path.Base(pkg)
		}
	}
	return ""
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func isShell(s string) bool { return slices.Contains(shells, path.Base(s)) }

// staticFindings returns what breaks the guards in files.
func staticFindings(fset *token.FileSet, files map[string]*ast.File) []staticFinding {
	var out []staticFinding
	add := func(n ast.Node, format string, args ...any) {
		out = append(out, staticFinding{fset.Position(n.Pos()).String(), strings.TrimSpace(fmt.Sprintf(format, args...))})
	}
	for name, f := range files {
		execName := importName(f, "os/exec")
		boltName := importName(f, "go.etcd.io/bbolt")
		runtime := slices.Contains(runtimePackages, path.Dir(name))
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, ok := stringLit(n); ok && (s == "/bin/sh" || s == "/bin/bash" || s == "/usr/bin/sh" || s == "/usr/bin/bash") {
					add(n, "%q in non-test code", s)
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && (k.Name == "NoSync" || k.Name == "NoGrowSync") {
					if v, ok := n.Value.(*ast.Ident); !ok || v.Name != "false" {
						add(n, "bbolt's %s must stay false: every commit is fsynced", k.Name)
					}
				}
			case *ast.AssignStmt:
				for _, l := range n.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && (sel.Sel.Name == "NoSync" || sel.Sel.Name == "NoGrowSync") {
						add(n, "bbolt's %s is assigned: it must stay false", sel.Sel.Name)
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if boltName != "" && sel.Sel.Name == "Batch" {
					add(n, "bbolt Batch: a transition is one Update, never batched")
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok || execName == "" || pkg.Name != execName || (sel.Sel.Name != "Command" && sel.Sel.Name != "CommandContext") {
					return true
				}
				args := n.Args
				if sel.Sel.Name == "CommandContext" && len(args) > 0 {
					args = args[1:]
				}
				var lits []string
				for _, a := range args {
					s, _ := stringLit(a)
					lits = append(lits, s)
				}
				for i, s := range lits {
					if isShell(s) && (i == 0 || path.Base(lits[0]) == "env" || slices.Contains(lits[i+1:], "-c")) {
						add(n, "runs a shell: exec.%s(%s)", sel.Sel.Name, strings.Join(lits, ", "))
						break
					}
				}
			}
			return true
		})
		if runtime && execName != "" {
			out = append(out, envFindings(fset, f, execName)...)
		}
	}
	slices.SortFunc(out, func(a, b staticFinding) int { return strings.Compare(a.pos, b.pos) })
	return out
}

// envFindings returns the exec.Command calls in f whose command is not
// given an Env in the same function.
func envFindings(fset *token.FileSet, f *ast.File, execName string) []staticFinding {
	var out []staticFinding
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		cmds := map[string]ast.Node{}
		envs := map[string]bool{}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok {
				return true
			}
			for i, r := range as.Rhs {
				call, ok := r.(*ast.CallExpr)
				if !ok || i >= len(as.Lhs) {
					continue
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == execName && strings.HasPrefix(sel.Sel.Name, "Command") {
						if id, ok := as.Lhs[i].(*ast.Ident); ok {
							cmds[id.Name] = as
						} else {
							out = append(out, staticFinding{fset.Position(as.Pos()).String(), "exec." + sel.Sel.Name + " not kept in a variable whose Env can be set"})
						}
					}
				}
			}
			for _, l := range as.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Env" {
					if id, ok := sel.X.(*ast.Ident); ok {
						envs[id.Name] = true
					}
				}
			}
			return true
		})
		for v, n := range cmds {
			if !envs[v] {
				out = append(out, staticFinding{fset.Position(n.Pos()).String(), v + ".Env is never set: the program would inherit the bot's tokens"})
			}
		}
	}
	return out
}

func TestStaticGuards(t *testing.T) {
	fset, files := goFiles(t, moduleRoot(t))
	if len(files) < 20 {
		t.Fatalf("found %d Go files: the walk is wrong", len(files))
	}
	for _, f := range staticFindings(fset, files) {
		t.Errorf("%s: %s", f.pos, f.what)
	}
	t.Logf("FIGURE static guards: %d non-test Go files: no shell, no /bin/sh, every command of the bot given an explicit Env, bbolt NoSync/NoGrowSync false, no Batch", len(files))
}

// TestStaticGuardsCatch feeds the guards code that breaks each of them.
func TestStaticGuardsCatch(t *testing.T) {
	src := `package hook

import (
	run "os/exec"
	bolt "go.etcd.io/bbolt"
)

func a() { run.Command("sh", "-c", "x") }
func b() { run.CommandContext(nil, "/usr/bin/env", "bash", "-c", "x") }
func c() { cmd := run.Command("/usr/local/bin/deploy"); _ = cmd }
func d() { _ = bolt.Options{NoSync: true}; var db *bolt.DB; db.Batch(nil) }
func e() { _ = "/bin/sh" }
func f() { cmd := run.Command("/usr/local/bin/deploy"); cmd.Env = nil }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "commands/hook/bad.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fd := range staticFindings(fset, map[string]*ast.File{"commands/hook/bad.go": f}) {
		got = append(got, fd.what)
	}
	for _, want := range []string{"runs a shell: exec.Command(sh", "runs a shell: exec.CommandContext(/usr/bin/env, bash", "cmd.Env is never set",
		"NoSync must stay false", "bbolt Batch", `"/bin/sh" in non-test code`} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, want) }) {
			t.Errorf("no finding %q in %q", want, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d findings, want 6 (function f is fine): %q", len(got), got)
	}
}
