package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docSection is the text under a "## " heading of a file in the
// repository, up to the next one.
func docSection(t *testing.T, file, heading string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(src), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", file, heading)
	}
	section, _, _ := strings.Cut(after, "\n## ")
	return section
}

// fencedBlocks are the section's code blocks of one language ("" for a
// bare fence).
func fencedBlocks(section, lang string) []string {
	var out []string
	var block *strings.Builder
	open := ""
	for _, line := range strings.SplitAfter(section, "\n") {
		fence, isFence := strings.CutPrefix(strings.TrimRight(line, "\n"), "```")
		switch {
		case isFence && block == nil:
			block, open = new(strings.Builder), fence
		case isFence:
			if open == lang {
				out = append(out, block.String())
			}
			block = nil
		case block != nil:
			block.WriteString(line)
		}
	}
	return out
}

// blockWith is the first block that contains text.
func blockWith(t *testing.T, blocks []string, text string) string {
	t.Helper()
	for _, b := range blocks {
		if strings.Contains(b, text) {
			return b
		}
	}
	t.Fatalf("no code block holds %q", text)
	return ""
}

// docFiles are the Markdown files a reader follows links between.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"README.md", "BENCHMARKS.md", "CHANGELOG.md"} {
		if p := filepath.Join("..", f); fileExists(p) {
			files = append(files, p)
		}
	}
	return files
}

var (
	mdLink     = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	headingRE  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	inlineLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// prose is a Markdown file's text outside fenced code blocks, line by line,
// with inline code spans blanked, so that a link shown as code is not
// followed.
func prose(src string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			out = append(out, "")
			continue
		}
		if fenced {
			out = append(out, "")
			continue
		}
		out = append(out, line)
	}
	return out
}

// anchors are the fragment ids GitHub gives a file's headings: lower case,
// punctuation other than '-' and '_' dropped, spaces made '-', and a
// suffix -1, -2 … on repeats.
func anchors(src string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range prose(src) {
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		text := inlineLink.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// TestDocLinks follows every relative link in the README, BENCHMARKS.md,
// the CHANGELOG and docs/: its file must exist, and its #fragment, if
// any, must be a heading of that file.
func TestDocLinks(t *testing.T) {
	cache := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := cache[path]; ok {
			return a
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cache[path] = anchors(string(src))
		return cache[path]
	}
	checked := 0
	for _, file := range docFiles(t) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range prose(string(src)) {
			for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				path, frag, _ := strings.Cut(target, "#")
				dest := file
				if path != "" {
					dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				}
				where := filepath.Base(file) + ":" + strconv.Itoa(n+1)
				if !fileExists(dest) {
					t.Errorf("%s: link %q: no file %s", where, target, dest)
					continue
				}
				if frag != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[frag] {
					t.Errorf("%s: link %q: %s has no heading #%s", where, target, filepath.Base(dest), frag)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("followed only %d relative links; the link pattern is broken", checked)
	}
}

// TestAnchorsFollowGitHub pins the heading ids to the ones GitHub makes.
func TestAnchorsFollowGitHub(t *testing.T) {
	got := anchors("# The `reset` event\n## Node.js: [`jose`](https://x) and nats\n" +
		"## Many idle HTTP/1.1 streams: `http1_takeover`\n## Summary\n## Summary\n```\n# not a heading\n```\n")
	for _, want := range []string{"the-reset-event", "nodejs-jose-and-nats", "many-idle-http11-streams-http1_takeover", "summary", "summary-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a code block became a heading")
	}
}

// TestScalingPoolConfigIsValid runs caddy validate on docs/scaling.md's
// shard pool, as printed: its stream, republish prefix and subject
// template must agree, which the gateway checks at start.
func TestScalingPoolConfigIsValid(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "docs", "scaling.md"))
	if err != nil {
		t.Fatal(err)
	}
	pool := blockWith(t, fencedBlocks(string(src), "caddyfile"), "republish_prefix")
	bin := buildCommands(t)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(pool), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "caddy"), "validate", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "SSEGATE_JWT_SECRET="+randomSecret(t), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s\n%s", err, out, pool)
	}
}
