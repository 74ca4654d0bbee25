package ssegate

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard" // encode, respond, file_server... in the golden files

	"github.com/ssegate/ssegate/internal/testkit"
)

// -update rewrites the JSON half of every golden file from the adapter's
// output. The result is a proposal: read the diff before committing it, a
// golden file that merely records what the code does tests nothing.
var updateGolden = flag.Bool("update", false, "rewrite the expected JSON in testdata/caddyfile_adapt/*.caddyfiletest")

// goldenSeparator splits a golden file into Caddyfile and expected JSON, as
// in Caddy's own caddytest/integration/caddyfile_adapt.
const goldenSeparator = "----------"

func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile_adapt", "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata/caddyfile_adapt")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".caddyfiletest"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, expected, err := splitGolden(string(data))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}

			got, warnings, err := testkit.Adapt(t, caddyfile, nil)
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			// The goldens are meant to be model configs, so any warning
			// (unformatted input included) is a mistake in the file or a
			// directive that warns where it should not.
			for _, w := range warnings {
				t.Errorf("unexpected warning: %s:%d: %s: %s", w.File, w.Line, w.Directive, w.Message)
			}

			if *updateGolden {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, got, "", "\t"); err != nil {
					t.Fatal(err)
				}
				out := caddyfile + goldenSeparator + "\n" + unescapeHTML(pretty.String()) + "\n"
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("rewrote %s: review it", file)
				return
			}

			if strings.TrimSpace(expected) == "" {
				t.Fatalf("%s has no expected JSON; run with -update and review the result", file)
			}
			// file_server hides the Caddyfile by an OS-specific path.
			hidden, _ := json.Marshal("." + string(filepath.Separator) + "Caddyfile")
			expected = strings.ReplaceAll(expected, `"./Caddyfile"`, string(hidden))
			want, err := decodeJSON([]byte(expected))
			if err != nil {
				t.Fatalf("expected JSON in %s: %v", file, err)
			}
			have, err := decodeJSON(got)
			if err != nil {
				t.Fatalf("adapter output: %v", err)
			}
			if !reflect.DeepEqual(want, have) {
				t.Errorf("adapted JSON differs from %s (- expected, + got):\n%s", file, lineDiff(canonicalJSON(t, want), canonicalJSON(t, have)))
			}
		})
	}
}

// splitGolden returns the Caddyfile (trimmed, with one final newline, as
// `caddy fmt` writes it, so the formatting check sees what a user would
// have) and the expected JSON. The separator must be a line of its own,
// so that a Caddyfile could hold dashes elsewhere.
func splitGolden(data string) (caddyfile, expected string, err error) {
	data = strings.ReplaceAll(data, "\r\n", "\n")
	parts := strings.Split(data, "\n"+goldenSeparator+"\n")
	if len(parts) != 2 {
		// A file written by hand may end right after the separator.
		if strings.HasSuffix(data, "\n"+goldenSeparator) {
			parts = []string{strings.TrimSuffix(data, "\n"+goldenSeparator), ""}
		} else {
			return "", "", fmt.Errorf("want one %q line between the Caddyfile and the JSON, found %d parts", goldenSeparator, len(parts))
		}
	}
	return strings.TrimSpace(parts[0]) + "\n", strings.TrimSpace(parts[1]), nil
}

// unescapeHTML undoes json.Marshal's \u003c, \u003e and \u0026 in JSON
// text, so that subjects read "events.>" in the golden files. It walks the
// escapes one by one, so an escaped backslash followed by "u003e" stays.
func unescapeHTML(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], `\u003c`):
			b.WriteByte('<')
		case strings.HasPrefix(s[i:], `\u003e`):
			b.WriteByte('>')
		case strings.HasPrefix(s[i:], `\u0026`):
			b.WriteByte('&')
		default:
			b.WriteString(s[i : i+2])
			i++
			continue
		}
		i += len(`\u003c`) - 1
	}
	return b.String()
}

// decodeJSON keeps numbers as written, so large integers (max_bytes,
// nanosecond durations) compare exactly rather than as float64.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

// canonicalJSON re-encodes a decoded value: maps come out with sorted keys,
// so two documents differing only in key order print alike and the diff
// shows only real differences.
func canonicalJSON(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

// lineDiff is a small LCS diff with a few lines of context, enough to read
// a golden mismatch without another dependency.
func lineDiff(a, b []string) string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			lines = append(lines, line{' ', a[i]})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, line{'-', a[i]})
			i++
		default:
			lines = append(lines, line{'+', b[j]})
			j++
		}
	}
	const contextLines = 3
	var out strings.Builder
	lastPrinted := -1
	for k, l := range lines {
		near := false
		for d := max(0, k-contextLines); d <= min(len(lines)-1, k+contextLines); d++ {
			if lines[d].op != ' ' {
				near = true
				break
			}
		}
		if !near {
			continue
		}
		if lastPrinted >= 0 && k > lastPrinted+1 {
			out.WriteString("   ...\n")
		}
		fmt.Fprintf(&out, " %c %s\n", l.op, l.text)
		lastPrinted = k
	}
	return out.String()
}

// TestGoldenHelpers covers the parts of the golden machinery that could
// make a golden test pass or fail for the wrong reason.
func TestGoldenHelpers(t *testing.T) {
	if got, want := unescapeHTML(`{"a":"x.\u003e","b":"\\u003e \u0026\u003c"}`), `{"a":"x.>","b":"\\u003e &<"}`; got != want {
		t.Errorf("unescapeHTML = %s, want %s", got, want)
	}
	a, _ := decodeJSON([]byte(`{"a":"x.\u003e","n":1073741824,"l":[1,2]}`))
	b, _ := decodeJSON([]byte(`{"l":[1,2],"n":1073741824,"a":"x.>"}`))
	if !reflect.DeepEqual(a, b) {
		t.Error("key order or escaping changed the decoded value")
	}
	c, _ := decodeJSON([]byte(`{"l":[2,1],"n":1073741825,"a":"x.>"}`))
	if reflect.DeepEqual(a, c) {
		t.Error("different documents compare equal")
	}
	if _, _, err := splitGolden(":80\n----------\n{}\n----------\n{}\n"); err == nil {
		t.Error("splitGolden accepted two separators")
	}
	if cf, exp, err := splitGolden(":80 {\r\n}\r\n----------"); err != nil || cf != ":80 {\n}\n" || exp != "" {
		t.Errorf("splitGolden(no JSON yet) = %q, %q, %v", cf, exp, err)
	}
	diff := lineDiff([]string{"{", `"a": 1,`, `"b": 2`, "}"}, []string{"{", `"a": 1,`, `"b": 3`, "}"})
	if !strings.Contains(diff, ` - "b": 2`) || !strings.Contains(diff, ` + "b": 3`) {
		t.Errorf("lineDiff:\n%s", diff)
	}
}
