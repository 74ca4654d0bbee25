package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// interpreter finds a sample's interpreter: missing, it skips the sample,
// or fails it on CI, which has them.
func interpreter(t *testing.T, name string) string {
	t.Helper()
	p := lookPath(name)
	if p == "" {
		lack(t, name+" is not on PATH")
	}
	return p
}

// publishingSamples runs the curl, Node and Python samples of publishing
// over HTTP, with the credential the section's export line makes, against
// the example's gateway. They publish one event with one Idempotency-Key,
// so the first is stored and the others are answered with its id; a reader
// of orders.eu gets it once.
func publishingSamples(ctx context.Context, t *testing.T, replace *strings.Replacer) {
	sec := docSection(t, "docs/publishing.md", "Publishing over HTTP")
	export := blockWith(t, fencedBlocks(sec, "sh"), "export SSEGATE_PUBLISH_TOKEN")
	token := strings.TrimSpace(shell(ctx, t, replace, export+`printf '%s' "$SSEGATE_PUBLISH_TOKEN"`))
	env := "SSEGATE_PUBLISH_TOKEN=" + token
	reader := strings.TrimSpace(shell(ctx, t, replace, "go run ./cmd/token -sub reader -channel 'orders.*'"))
	out := listen(ctx, t, replace, `curl -sN -H "Authorization: Bearer $READER" 'http://localhost:8080/events?channel=orders.eu'`, "READER="+reader)
	waitText(ctx, t, out, ": ssegate")

	curl := shell(ctx, t, replace, blockWith(t, fencedBlocks(sec, "sh"), "curl --fail-with-body"), env)
	var first struct{ ID string }
	if err := json.Unmarshal([]byte(curl), &first); err != nil || !sampleID.MatchString(first.ID) {
		t.Fatalf("curl printed %q, want {\"id\": …}", curl)
	}
	waitText(ctx, t, out, "data: {\"order\": 42}\n")
	if !strings.Contains(out.String(), "id: "+first.ID+"\nevent: order.created\n") {
		t.Errorf("the reader got no order.created with id %s:\n%s", first.ID, out.String())
	}
	run := func(name string, args ...string) {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, interpreter(t, args[0]), args[1:]...)
			cmd.Env = append(os.Environ(), env)
			got, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, got)
			}
			if strings.TrimSpace(string(got)) != first.ID {
				t.Errorf("printed %q, want the id of the first publish, %s, for its retry", got, first.ID)
			}
		})
	}
	local := regexp.MustCompile(`http://localhost:\d+`)
	fix := func(code string) string { return local.ReplaceAllStringFunc(code, replace.Replace) }
	run("node", "node", "--input-type=module", "-e", fix(blockWith(t, fencedBlocks(sec, "js"), "SSEGATE_PUBLISH_TOKEN")))
	run("python", "python3", "-c", fix(blockWith(t, fencedBlocks(sec, "python"), "SSEGATE_PUBLISH_TOKEN")))
	if n := strings.Count(out.String(), "event: order.created\n"); n != 1 {
		t.Errorf("the reader got order.created %d times, want once:\n%s", n, out.String())
	}
}
