package gatewaytest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ssegate/ssegate/internal/testkit"
)

// The history and poll subdirectives adapt to the handler's JSON.
func TestHistoryCaddyfileAdapt(t *testing.T) {
	src := ":8080 {\n\tssegate /events* {\n\t\thistory /events/history {\n\t\t\tlimit 20\n\t\t\tmax_limit 200\n\t\t\tmax_bytes 64KiB\n\t\t}\n\t\tpoll /events/poll {\n\t\t\tmax_wait 30s\n\t\t}\n\t}\n}\n"
	out, _, err := testkit.Adapt(t, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"history":{"limit":20,"max_bytes":65536,"max_limit":200,"path":"/events/history"}`,
		`"poll":{"max_wait":30000000000,"path":"/events/poll"}`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}
}

func TestHistoryCaddyfileErrors(t *testing.T) {
	handler := testkit.HandlerCaddyfile
	testkit.CheckAdaptErrors(t, []testkit.AdaptError{
		{Name: "history without path", Caddyfile: handler("history"), Want: "after 'history'", Line: 3},
		{Name: "history with two paths", Caddyfile: handler("history /a /b"), Want: "after '/b'", Line: 3},
		{Name: "history unknown option", Caddyfile: handler("history /h {", "\tdepth 3", "}"), Want: `unknown history option "depth"`, Line: 4},
		{Name: "history limit zero", Caddyfile: handler("history /h {", "\tlimit 0", "}"), Want: `got "0"`, Line: 4},
		{Name: "history max_bytes not a size", Caddyfile: handler("history /h {", "\tmax_bytes lots", "}"), Want: `max_bytes "lots"`, Line: 4},
		{Name: "poll without path", Caddyfile: handler("poll"), Want: "after 'poll'", Line: 3},
		{Name: "poll max_wait negative", Caddyfile: handler("poll /p {", "\tmax_wait -1s", "}"), Want: `max_wait: want a positive duration, got "-1s"`, Line: 4},
		{Name: "poll unknown option", Caddyfile: handler("poll /p {", "\twait 3s", "}"), Want: `unknown poll option "wait"`, Line: 4},
	})
}

// Config mistakes that only show when the handler is validated.
func TestHistoryValidate(t *testing.T) {
	tests := []struct {
		name    string
		handler map[string]any
		want    string
	}{
		{"both", map[string]any{"history": map[string]any{"path": "/h"}, "poll": map[string]any{"path": "/p"}}, ""},
		{"history without path", map[string]any{"history": map[string]any{}}, "history: a path is required"},
		{"poll without path", map[string]any{"poll": map[string]any{}}, "poll: a path is required"},
		{"poll on the history path", map[string]any{"history": map[string]any{"path": "/h"}, "poll": map[string]any{"path": "/h"}}, "is also the history path"},
		{"limit above max_limit", map[string]any{"history": map[string]any{"path": "/h", "limit": 50, "max_limit": 10}}, "limit is above max_limit"},
		{"history path with wildcard", map[string]any{"history": map[string]any{"path": "/h/*"}}, `history path "/h/*"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckError(t, testkit.ValidateHandler(t, tt.handler), tt.want)
		})
	}
}

// The gateway serves client.js at client_path, revalidated by ETag.
func TestClientJSIsServed(t *testing.T) {
	src := ":8080 {\n\tssegate /events* {\n\t\tclient /events/client.js\n\t}\n}\n"
	out, _, err := testkit.Adapt(t, src, nil)
	if err != nil || !strings.Contains(string(out), `"client_path":"/events/client.js"`) {
		t.Fatalf("adapt: %v %s", err, out)
	}
	g := startGateway(t, natsServer(t), gatewayConfig{noTLS: true, handler: map[string]any{"client_path": "/events/client.js"}})
	resp, err := g.h1Client().Get(g.httpURL + "/events/client.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || etag == "" || !bytes.Contains(body, []byte("export function connect")) {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest(http.MethodGet, g.httpURL+"/events/client.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = g.h1Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d", resp.StatusCode)
	}
	// Bad input: anything but GET and HEAD is refused as every endpoint
	// refuses, with a JSON body and a count.
	for i, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "BREW"} {
		req, _ := http.NewRequest(method, g.httpURL+"/events/client.js", strings.NewReader("x"))
		var got struct{ Error string }
		status := answerJSON(t, g, req, &got)
		if status != http.StatusMethodNotAllowed || got.Error != "method_not_allowed" {
			t.Errorf("%s: %d %+v", method, status, got)
		}
		if n := g.metric(`ssegate_refusals_total{code="method_not_allowed"}`); n != float64(i+1) {
			t.Errorf("after %d refusals, %v counted", i+1, n)
		}
	}
}
