package ssegate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssegate/ssegate/auth"
)

// TestRefusalSeriesExistFromTheStart: every error code the gateway
// answers with has a refusals series from the start, so that a rate()
// over it has a zero to begin from.
func TestRefusalSeriesExistFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetrics().refusals)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				have[l.GetValue()] = true
			}
		}
	}
	codes := authCodes(t)
	if len(codes) < 30 || !slices.Contains(codes, auth.CodeNotFound) {
		t.Fatalf("read %d codes from auth/errors.go: %v", len(codes), codes)
	}
	for _, code := range codes {
		if !have[code] {
			t.Errorf("no refusals series for %q", code)
		}
	}
}

// authCodes reads the values of every Code* constant in auth/errors.go,
// the one list of the gateway's error codes.
func authCodes(t *testing.T) []string {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("auth", "errors.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			for i, name := range v.Names {
				lit, ok := v.Values[i].(*ast.BasicLit)
				if !strings.HasPrefix(name.Name, "Code") || !ok || lit.Kind != token.STRING {
					continue
				}
				code, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, code)
			}
		}
	}
	return codes
}
