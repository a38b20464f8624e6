// Command fuzzlist prints one line `PKG:FuzzName` for every fuzz target of
// the module (a `func FuzzXxx(f *testing.F)` in a _test.go file), PKG being
// the package directory as a ./-relative path, sorted. `make fuzz` runs
// each briefly:
//
//	go run ./test/cmd/fuzzlist
//	./actor/ratelimit:FuzzDecode
//	...
//
// It skips test/bench/ (separate benchmark modules), any other directory
// holding its own go.mod, and directories go ignores (testdata, vendor,
// names starting with . or _).
package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzzlist:", err)
		os.Exit(1)
	}
	targets, err := list(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzzlist:", err)
		os.Exit(1)
	}
	for _, t := range targets {
		fmt.Println(t)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// list returns the sorted `./pkg:FuzzName` lines for the module at root.
func list(root string) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path == root {
				return nil
			}
			name := d.Name()
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				rel == "test/bench" || strings.HasPrefix(rel, "test/bench/") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", rel, err)
		}
		testingName := importName(f, "testing")
		if testingName == "" {
			return nil
		}
		pkg := "./" + filepath.ToSlash(filepath.Dir(rel))
		if filepath.Dir(rel) == "." {
			pkg = "."
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !isFuzzName(fn.Name.Name) || !takesTestingF(fn, testingName) {
				continue
			}
			out = append(out, pkg+":"+fn.Name.Name)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// isFuzzName is go test's rule: Fuzz, then nothing or a non-lowercase rune.
func isFuzzName(name string) bool {
	rest, ok := strings.CutPrefix(name, "Fuzz")
	if !ok {
		return false
	}
	return rest == "" || !(rest[0] >= 'a' && rest[0] <= 'z')
}

// importName returns the name under which file f imports path ("" if it
// does not; "." imports are not supported and give "").
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || p != path {
			continue
		}
		if imp.Name != nil {
			if imp.Name.Name == "_" || imp.Name.Name == "." {
				return ""
			}
			return imp.Name.Name
		}
		return "testing"
	}
	return ""
}

// takesTestingF reports whether fn is func(x *testing.F) with no results.
func takesTestingF(fn *ast.FuncDecl, testingName string) bool {
	if fn.Type.TypeParams != nil || fn.Type.Results != nil && len(fn.Type.Results.List) > 0 {
		return false
	}
	params := fn.Type.Params.List
	if len(params) != 1 || len(params[0].Names) > 1 {
		return false
	}
	star, ok := params[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "F" {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == testingName
}
