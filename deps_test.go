package sluice_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sluice-gw/sluice"

// allowed is DESIGN.md's package table: which of our packages each package may
// import. Dependencies point down the table, never up.
var allowed = map[string][]string{
	"":          {},
	"internal":  {""}, // helpers that are not API (internal/jsonw, ...): importable by all, importing little
	"sse":       {},
	"openai":    {"", "sse"},
	"anthropic": {"", "sse"},
	"sim":       {"", "sse", "openai", "anthropic"},
	"contract":  {""},
	"router":    {""},
	"store":     {""},
	"guard":     {"", "store"},
	"telemetry": {""},
	"config":    {""},
	"pipeline":  {"", "sse", "openai", "anthropic", "sim", "contract", "router", "guard", "store", "telemetry", "config"},
	"gateway":   {"", "sse", "openai", "anthropic", "sim", "contract", "router", "guard", "store", "telemetry", "config", "pipeline"},
	"eval":      {"", "sse", "openai", "anthropic", "sim", "contract", "router", "guard", "store", "telemetry", "config", "pipeline"},
}

// stdlibOnly lists the packages that may import nothing but the standard
// library.
var stdlibOnly = map[string]bool{"": true, "sse": true}

// family returns the table row a package directory belongs to: store/redis is
// store's row, internal/x may be imported by anyone, and cmd/ and examples/
// may import everything.
func family(rel string) (row string, top bool) {
	first, _, _ := strings.Cut(rel, "/")
	switch first {
	case "cmd", "examples":
		return first, true
	}
	if rel == "." {
		return "", false
	}
	return first, false
}

// TestImportGraph fails when a package imports one above it in DESIGN.md's
// table, or when nothing-but-stdlib packages import a module.
func TestImportGraph(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel := filepath.ToSlash(filepath.Dir(path))
		row, top := family(rel)
		if top {
			return nil
		}
		perm, known := allowed[row]
		if !known {
			t.Errorf("%s: package directory %q is not in DESIGN.md's table; add it to allowed", path, row)
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module) {
				if stdlibOnly[row] && strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
					t.Errorf("%s imports %s: package %q may use the standard library only", path, p, rel)
				}
				continue
			}
			target := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
			trow, _ := family(target)
			if target == "" {
				trow = ""
			}
			if strings.HasPrefix(target, "internal/") || trow == row {
				continue
			}
			if trow == "cmd" || trow == "examples" || !contains(perm, trow) {
				t.Errorf("%s imports %s: %q may not import %q (see DESIGN.md's package table)", path, p, nameOf(row), nameOf(trow))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func nameOf(row string) string {
	if row == "" {
		return "sluice (root)"
	}
	return row
}

// TestEveryPackageHasDoc checks that each package has a package comment.
func TestEveryPackageHasDoc(t *testing.T) {
	docs := map[string]bool{}
	seen := map[string]bool{}
	fset := token.NewFileSet()
	filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		seen[dir] = true
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.PackageClauseOnly|parser.ParseComments)
		if err == nil && f.Doc != nil {
			docs[dir] = true
		}
		return nil
	})
	for dir := range seen {
		if !docs[dir] {
			t.Errorf("package in %s has no package doc comment", dir)
		}
	}
}
