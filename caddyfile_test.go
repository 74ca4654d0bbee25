package ssegate

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // encode, respond, file_server... in the golden files
	"github.com/ssegate/ssegate/internal/testkit"

	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
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

// TestCaddyfileExample keeps the shipped example working: it must adapt
// with no error and no warning (so it is also `caddy fmt` clean), and the
// snippet must put the handler in both sites.
func TestCaddyfileExample(t *testing.T) {
	src, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := testkit.Adapt(t, string(src), map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatalf("adapting Caddyfile.example: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s:%d: %s: %s", w.File, w.Line, w.Directive, w.Message)
	}

	var cfg struct {
		Apps struct {
			SSEGate *App `json:"ssegate"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	app := cfg.Apps.SSEGate
	if app == nil {
		t.Fatal("no ssegate app in the adapted config")
	}
	if app.NATS.Embedded == nil || app.NATS.Embedded.Listen != "127.0.0.1:4222" || len(app.NATS.URLs) != 0 {
		t.Errorf("nats = %+v, want the embedded server on 127.0.0.1:4222", app.NATS)
	}
	if app.Stream.MaxBytes != 1<<30 {
		t.Errorf("stream max_bytes = %d, want 1GiB", app.Stream.MaxBytes)
	}

	var handlers []map[string]any
	var doc any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	testkit.FindHandlers(doc, "ssegate", &handlers)
	if len(handlers) != 2 {
		t.Fatalf("found %d ssegate handlers, want one in each of the two sites", len(handlers))
	}
	for _, h := range handlers {
		if !reflect.DeepEqual(h["public"], []any{"demo"}) {
			t.Errorf("handler %v: want public [demo]", h)
		}
	}
}

// TestCaddyfileErrors checks that each malformed form is refused when the
// Caddyfile is adapted, with a message that names the problem and the line.
func TestCaddyfileErrors(t *testing.T) {
	// handler wraps lines into an ssegate block in a site; the block's
	// first line is line 3.
	handler := func(lines ...string) string {
		return ":8080 {\n\tssegate /events {\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}\n}\n"
	}
	// global wraps lines into the ssegate global option; the block's first
	// line is line 3.
	global := func(lines ...string) string {
		return "{\n\tssegate {\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}\n}\n\n:8080 {\n\tssegate /events\n}\n"
	}

	tests := []struct {
		name      string
		caddyfile string
		want      string
		line      int // 0: not checked
	}{
		// Handler: unknown and misplaced tokens.
		{name: "handler unknown subdirective", caddyfile: handler("channel query"), want: `unknown ssegate subdirective "channel"`, line: 3},
		{name: "handler argument after matcher", caddyfile: ":8080 {\n\tssegate /events extra\n}\n", want: "wrong argument count or unexpected line ending after 'extra'", line: 2},
		{name: "handler argument without matcher", caddyfile: ":8080 {\n\tssegate extra {\n\t\tpublic a\n\t}\n}\n", want: "wrong argument count or unexpected line ending after 'extra'", line: 2},

		{name: "auth twice", caddyfile: handler("auth {", "\thmac_secret {env.S}", "}", "auth {", "\thmac_secret {env.S}", "}"), want: "auth is given more than once", line: 6},
		{name: "auth unknown subdirective", caddyfile: handler("auth {", "\tpassword x", "}"), want: `password`, line: 4},

		// Presence and control.
		{name: "presence without path", caddyfile: handler("presence"), want: "wrong argument count or unexpected line ending after 'presence'", line: 3},
		{name: "presence twice", caddyfile: handler("presence /p", "presence /q"), want: "presence is given more than once", line: 4},
		{name: "presence unknown option", caddyfile: handler("presence /p {", "	interval 1s", "}"), want: `unknown presence option "interval"`, line: 4},
		{name: "presence bad ttl", caddyfile: handler("presence /p {", "	ttl soon", "}"), want: "ttl", line: 4},
		{name: "presence_events without pattern", caddyfile: handler("presence_events"), want: "wrong argument count or unexpected line ending after 'presence_events'", line: 3},
		{name: "control without path", caddyfile: handler("control"), want: "wrong argument count or unexpected line ending after 'control'", line: 3},
		{name: "control twice", caddyfile: handler("control /c", "control /d"), want: "control is given more than once", line: 4},
		{name: "control key without value", caddyfile: handler("control /c {", "	key", "}"), want: "wrong argument count or unexpected line ending after 'key'", line: 4},
		{name: "control unknown option", caddyfile: handler("control /c {", "	secret x", "}"), want: `unknown control option "secret"`, line: 4},

		// Handler: missing arguments.
		{name: "subject without value", caddyfile: handler("subject"), want: "wrong argument count or unexpected line ending after 'subject'", line: 3},
		{name: "channels without mode", caddyfile: handler("channels"), want: "wrong argument count or unexpected line ending after 'channels'", line: 3},
		{name: "channels fixed without channel", caddyfile: handler("channels fixed"), want: "wrong argument count or unexpected line ending after 'fixed'", line: 3},
		{name: "channels placeholder without placeholder", caddyfile: handler("channels placeholder"), want: "wrong argument count or unexpected line ending after 'placeholder'", line: 3},
		{name: "public without pattern", caddyfile: handler("public"), want: "wrong argument count or unexpected line ending after 'public'", line: 3},
		{name: "public without pattern after a public line", caddyfile: handler("public a", "public"), want: "wrong argument count or unexpected line ending after 'public'", line: 4},
		{name: "channel_pattern without value", caddyfile: handler("channel_pattern"), want: "after 'channel_pattern'", line: 3},
		{name: "max_channels without value", caddyfile: handler("max_channels"), want: "after 'max_channels'", line: 3},
		{name: "heartbeat without value", caddyfile: handler("heartbeat"), want: "after 'heartbeat'", line: 3},

		// Handler: extra arguments.
		{name: "subject with two values", caddyfile: handler("subject a.{channel} b"), want: "wrong argument count or unexpected line ending after 'b'", line: 3},
		{name: "heartbeat with two values", caddyfile: handler("heartbeat 1s 2s"), want: "wrong argument count or unexpected line ending after '2s'", line: 3},
		{name: "channels query with two params", caddyfile: handler("channels query a b"), want: "wrong argument count or unexpected line ending after 'b'", line: 3},
		{name: "channels placeholder with two values", caddyfile: handler("channels placeholder {a} {b}"), want: "after '{b}'", line: 3},
		{name: "queue_size with two values", caddyfile: handler("queue_size 1 2"), want: "after '2'", line: 3},

		// Handler: bad values.
		{name: "channels unknown mode", caddyfile: handler("channels carrier-pigeon"), want: `channels: unknown source "carrier-pigeon" (want query, placeholder or fixed)`, line: 3},
		{name: "heartbeat not a duration", caddyfile: handler("heartbeat abc"), want: `heartbeat: want a positive duration, got "abc"`, line: 3},
		{name: "heartbeat negative", caddyfile: handler("heartbeat -1s"), want: `heartbeat: want a positive duration, got "-1s"`, line: 3},
		{name: "retry zero", caddyfile: handler("retry 0s"), want: `retry: want a positive duration, got "0s"`, line: 3},
		{name: "write_timeout not a duration", caddyfile: handler("write_timeout soon"), want: `write_timeout: want a positive duration, got "soon"`, line: 3},
		{name: "queue_size zero", caddyfile: handler("queue_size 0"), want: `queue_size: want a positive integer, got "0"`, line: 3},
		{name: "queue_size not a number", caddyfile: handler("queue_size x"), want: `queue_size: want a positive integer, got "x"`, line: 3},
		{name: "max_channels negative", caddyfile: handler("max_channels -3"), want: `max_channels: want a positive integer, got "-3"`, line: 3},
		{name: "replay_limit zero", caddyfile: handler("replay_limit 0"), want: `replay_limit: want a positive integer, got "0"`, line: 3},
		{name: "http1_takeover yes", caddyfile: handler("http1_takeover yes"), want: `http1_takeover: want on or off, got "yes"`, line: 3},

		// Global option: unknown and misplaced tokens.
		{name: "global unknown option", caddyfile: global("urls nats://a:4222"), want: `unknown ssegate option "urls"`, line: 3},
		{name: "global option given twice", caddyfile: "{\n\tssegate {\n\t\turl nats://a:4222\n\t}\n\tssegate {\n\t\tstart_timeout 5s\n\t}\n}\n", want: "more than once", line: 5},
		{name: "global argument", caddyfile: "{\n\tssegate extra-arg {\n\t\turl nats://a:4222\n\t}\n}\n", want: "wrong argument count or unexpected line ending after 'extra-arg'", line: 2},
		{name: "tls unknown option", caddyfile: global("url nats://a:4222", "tls {", "\tcafile /ca.pem", "}"), want: `unknown tls option "cafile"`, line: 5},
		{name: "tls argument", caddyfile: global("url nats://a:4222", "tls on"), want: "after 'on'", line: 4},
		{name: "embedded unknown option", caddyfile: global("embedded {", "\tport 4222", "}"), want: `unknown embedded option "port"`, line: 4},
		{name: "embedded argument", caddyfile: global("embedded 127.0.0.1:4222"), want: "after '127.0.0.1:4222'", line: 3},
		{name: "stream unknown option", caddyfile: global("stream {", "\tretention limits", "}"), want: `unknown stream option "retention"`, line: 4},
		{name: "embedded user without name", caddyfile: global("embedded {", "\tuser", "}"), want: "after 'user'", line: 4},
		{name: "embedded user with two names", caddyfile: global("embedded {", "\tuser a b {", "\t\tpassword p", "\t}", "}"), want: "after 'b'", line: 4},
		{name: "embedded user unknown option", caddyfile: global("embedded {", "\tuser a {", "\t\tpasswd p", "\t}", "}"), want: `unknown user option "passwd"`, line: 5},
		{name: "embedded user publish without subject", caddyfile: global("embedded {", "\tuser a {", "\t\tpassword p", "\t\tpublish", "\t}", "}"), want: "after 'publish'", line: 6},
		{name: "embedded user password with two values", caddyfile: global("embedded {", "\tuser a {", "\t\tpassword p q", "\t}", "}"), want: "after 'q'", line: 5},
		{name: "embedded nkey with password", caddyfile: global("embedded {", "\tnkey "+testNKey+" {", "\t\tpassword p", "\t}", "}"), want: "an nkey user takes no password", line: 5},
		{name: "embedded anonymous maybe", caddyfile: global("embedded {", "\tanonymous maybe", "}"), want: `anonymous: want on or off, got "maybe"`, line: 4},
		{name: "embedded nkey without key", caddyfile: global("embedded {", "\tnkey {", "\t\tpublish a", "\t}", "}"), want: "after 'nkey'", line: 4},
		{name: "stream argument", caddyfile: global("stream EVENTS {", "\tstorage file", "}"), want: "after 'EVENTS'", line: 3},

		// Global option: missing and extra arguments.
		{name: "url without value", caddyfile: global("url"), want: "wrong argument count or unexpected line ending after 'url'", line: 3},
		{name: "url without value after a url line", caddyfile: global("url nats://a:4222", "url"), want: "wrong argument count or unexpected line ending after 'url'", line: 4},
		{name: "user without value", caddyfile: global("url nats://a:4222", "user"), want: "after 'user'", line: 4},
		{name: "password with two values", caddyfile: global("url nats://a:4222", "user u", "password p q"), want: "after 'q'", line: 5},
		{name: "stream subjects without value", caddyfile: global("stream {", "\tsubjects", "}"), want: "after 'subjects'", line: 4},
		{name: "manage_stream without value", caddyfile: global("manage_stream"), want: "after 'manage_stream'", line: 3},
		{name: "start_timeout with two values", caddyfile: global("start_timeout 1s 2s"), want: "after '2s'", line: 3},

		// Global option: bad values.
		{name: "storage disk", caddyfile: global("stream {", "\tstorage disk", "}"), want: `storage must be file or memory, not "disk"`, line: 4},
		{name: "replicas zero", caddyfile: global("stream {", "\treplicas 0", "}"), want: `replicas: want a positive integer, got "0"`, line: 4},
		{name: "max_bytes not a size", caddyfile: global("stream {", "\tmax_bytes lots", "}"), want: `max_bytes "lots"`, line: 4},
		{name: "max_bytes beyond int64", caddyfile: global("stream {", "\tmax_bytes 10EiB", "}"), want: `max_bytes "10EiB"`, line: 4},
		{name: "max_age not a duration", caddyfile: global("stream {", "\tmax_age forever", "}"), want: `max_age: want a positive duration, got "forever"`, line: 4},
		{name: "max_msgs_per_subject zero", caddyfile: global("stream {", "\tmax_msgs_per_subject 0", "}"), want: `max_msgs_per_subject: want a positive integer, got "0"`, line: 4},
		{name: "manage_stream maybe", caddyfile: global("manage_stream maybe"), want: `manage_stream: want on or off, got "maybe"`, line: 3},
		{name: "reconnect_wait zero", caddyfile: global("reconnect_wait 0"), want: `reconnect_wait: want a positive duration, got "0"`, line: 3},
		{name: "start_timeout not a duration", caddyfile: global("start_timeout x"), want: `start_timeout: want a positive duration, got "x"`, line: 3},
		{name: "replay_concurrency zero", caddyfile: global("replay_concurrency 0"), want: `replay_concurrency: want a positive integer, got "0"`, line: 3},
		{name: "replay_pull_bytes not a size", caddyfile: global("replay_pull_bytes lots"), want: `replay_pull_bytes "lots"`, line: 3},
		{name: "replay_pull_bytes zero", caddyfile: global("replay_pull_bytes 0"), want: `replay_pull_bytes: want a positive size`, line: 3},
		{name: "replay_pull_bytes beyond int32", caddyfile: global("replay_pull_bytes 3GiB"), want: `replay_pull_bytes 3221225472: too large`, line: 3},
		{name: "replay_budget without value", caddyfile: global("replay_budget"), want: "after 'replay_budget'", line: 3},
		{name: "replay_budget with two values", caddyfile: global("replay_budget 1MiB 2MiB"), want: "after '2MiB'", line: 3},
		{name: "replay_budget negative", caddyfile: global("replay_budget -1MiB"), want: `replay_budget "-1MiB"`, line: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testkit.CheckAdaptError(t, tt.caddyfile, tt.want, tt.line) })
	}
}

// validHandler is a handler as Provision leaves it, linked to an app whose
// stream has the defaults (subjects events.>), without a caddy.Context.
func validHandler(h *Handler, stream replay.StreamConfig) error {
	h.app = &App{Stream: stream.WithDefaults()}
	re, err := compileChannelPattern(h.ChannelPattern)
	if err != nil {
		return err
	}
	h.channelRE = re
	return h.Validate()
}

func TestHandlerValidate(t *testing.T) {
	tests := []struct {
		name   string
		h      Handler
		stream replay.StreamConfig // defaults added
		want   string              // "" means valid
	}{
		{name: "defaults", h: Handler{}},
		{name: "every field", h: Handler{
			ChannelParam: "ch", Subject: "events.app.{channel}", ChannelPattern: `^[a-z]+(\.[a-z]+)*$`,
			MaxChannels: 4, Public: []string{"news", "status.>"}, Heartbeat: caddy.Duration(time.Second),
			Retry: caddy.Duration(time.Second), QueueSize: 8, WriteTimeout: caddy.Duration(time.Second), ReplayLimit: 100,
		}},
		{name: "fixed channels", h: Handler{Channels: []string{"news", "alerts.global"}}},
		{name: "placeholder", h: Handler{ChannelPlaceholder: "{http.regexp.ch.1}"}},
		{name: "custom stream subjects", h: Handler{Subject: "app.{channel}"}, stream: replay.StreamConfig{Subjects: []string{"app.>"}}},
		{name: "subject with channel in the middle", h: Handler{Subject: "events.{channel}.updates"}},

		{name: "subject without channel", h: Handler{Subject: "events.all"}, want: `subject "events.all" must contain {channel} exactly once`},
		{name: "subject with channel twice", h: Handler{Subject: "events.{channel}.{channel}"}, want: "must contain {channel} exactly once"},
		{name: "subject outside the stream", h: Handler{Subject: "other.{channel}"}, want: `which stream "SSEGATE" (subjects [events.>]) does not store`},
		{name: "default subject outside a custom stream", h: Handler{}, stream: replay.StreamConfig{Subjects: []string{"app.>"}}, want: `subject "events.{channel}" maps channels to subjects like "events.x"`},
		{name: "fixed channel with a * wildcard", h: Handler{Channels: []string{"news", "alerts.*"}}, want: `channels: invalid_channel: channel "alerts.*" is not a valid channel name`},
		{name: "fixed channel with a > wildcard", h: Handler{Channels: []string{">"}}, want: `channel ">" is not a valid channel name`},
		{name: "fixed channel against channel_pattern", h: Handler{ChannelPattern: "^[a-z]+$", Channels: []string{"News"}}, want: `channel "News" is not a valid channel name`},
		{name: "placeholder with fixed channels", h: Handler{ChannelPlaceholder: "{http.regexp.ch.1}", Channels: []string{"news"}}, want: "channel_placeholder and channels are exclusive"},
		{name: "max_channels at the replay's bound", h: Handler{MaxChannels: 256}},
		{name: "max_channels past the replay's bound", h: Handler{MaxChannels: 257}, want: "max_channels 257: at most 256"},
		{name: "negative queue_size", h: Handler{QueueSize: -1}, want: "cannot be negative"},
		{name: "negative heartbeat", h: Handler{Heartbeat: caddy.Duration(-time.Second)}, want: "cannot be negative"},
		{name: "subject with an empty token", h: Handler{Subject: "events..{channel}"}, want: "subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckError(t, validHandler(&tt.h, tt.stream), tt.want)
		})
	}
}

// deadNATS is a listener that counts connections, posing as a NATS server
// that never answers, so a test can tell that nothing dialed it.
func deadNATS(t *testing.T) (url string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return "nats://" + l.Addr().String(), accepted
}

func provisionApp(t *testing.T, a *App) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return a.Provision(ctx)
}

// testNKey is a public user nkey, valid and unused; testSeed a seed.
const (
	testNKey = "UCCJTZCNUONCWBFTFQRF2XB3C3PNCTV7JCY4EZCB5R7G6EVQ4VCSHGRI"
	testSeed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
)

// TestAppProvisionOffline: `caddy adapt --validate` and `caddy validate`
// provision the app on machines that may not reach NATS, so Provision must
// check the config without dialing, and refuse bad combinations itself.
func TestAppProvisionOffline(t *testing.T) {
	t.Run("unreachable urls", func(t *testing.T) {
		url, accepted := deadNATS(t)
		a := &App{NATS: upstream.Config{
			URLs:          []string{"nats://127.0.0.1:1", url},
			User:          "gateway",
			Password:      "s3cret",
			TLS:           &upstream.TLSConfig{CA: "/nonexistent/ca.pem", Cert: "/nonexistent/c.pem", Key: "/nonexistent/k.pem"},
			ReconnectWait: caddy.Duration(time.Second),
		}}
		start := time.Now()
		if err := provisionApp(t, a); err != nil {
			t.Fatalf("Provision: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Provision took %v; it looks like it waited on the network", d)
		}
		// Give a stray background dial the time to land before looking.
		time.Sleep(100 * time.Millisecond)
		if n := accepted.Load(); n != 0 {
			t.Errorf("Provision opened %d connection(s) to NATS", n)
		}
		if a.state.Load() != nil {
			t.Error("Provision left the app running; only Start may connect")
		}
		if a.Stream.Name != replay.DefaultStreamName || len(a.Stream.Subjects) != 1 || a.Stream.Subjects[0] != replay.DefaultSubjects {
			t.Errorf("stream = %+v, want the defaults filled in", a.Stream)
		}
	})

	valid := []struct {
		name string
		app  *App // a pointer: App holds an atomic and must not be copied
	}{
		{"embedded by default", &App{}},
		{"embedded with listen and store_dir", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "127.0.0.1:14222", StoreDir: t.TempDir()}}}},
		{"token", &App{NATS: upstream.Config{URLs: []string{"nats://127.0.0.1:1"}, Token: "t"}}},
		{"creds_file", &App{NATS: upstream.Config{URLs: []string{"nats://127.0.0.1:1"}, CredsFile: "/nonexistent.creds"}}},
		{"nkey_file with tls ca only", &App{NATS: upstream.Config{URLs: []string{"nats://127.0.0.1:1"}, NKeyFile: "/nonexistent.nk", TLS: &upstream.TLSConfig{CA: "/nonexistent/ca.pem"}}}},
		{"embedded on all interfaces with a user", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "0.0.0.0:14222", Users: []upstream.EmbeddedUser{{User: "backend", Password: "s3cret"}}}}}},
		{"embedded nkey user with lists", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Users: []upstream.EmbeddedUser{{NKey: testNKey, Publish: []string{"events.>"}, Subscribe: []string{"_INBOX.>"}}}}}}},
		{"embedded on localhost without users", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "localhost:14222"}}}},
		{"embedded on ::1 without users", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "[::1]:14222"}}}},
		{"replay budgets", &App{ReplayConcurrency: 8, ReplayPullBytes: 4 << 20, ReplayBudget: 8 << 20}},
		{"unmanaged custom stream", &App{Stream: replay.StreamConfig{Name: "EVENTS", Subjects: []string{"app.>"}, RepublishPrefix: "live", Storage: "memory", Replicas: 3, Unmanaged: true}}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			if err := provisionApp(t, tt.app); err != nil {
				t.Fatalf("Provision: %v", err)
			}
		})
	}

	nats := func(c upstream.Config) *App { return &App{NATS: c} }
	embedded := func(e upstream.EmbeddedConfig) *App { return nats(upstream.Config{Embedded: &e}) }
	embeddedUsers := func(u ...upstream.EmbeddedUser) *App { return embedded(upstream.EmbeddedConfig{Users: u}) }
	on := true
	urls := []string{"nats://127.0.0.1:1"}
	invalid := []struct {
		name string
		app  *App
		want string
	}{
		{"embedded and urls", nats(upstream.Config{URLs: urls, Embedded: &upstream.EmbeddedConfig{}}), "nats: embedded and urls are exclusive"},
		{"user without password", nats(upstream.Config{URLs: urls, User: "u"}), "nats: user and password go together"},
		{"password without user", nats(upstream.Config{URLs: urls, Password: "p"}), "nats: user and password go together"},
		{"user and token", nats(upstream.Config{URLs: urls, User: "u", Password: "p", Token: "t"}), "nats: choose one of user/password, token, creds_file and nkey_file"},
		{"creds_file and nkey_file", nats(upstream.Config{URLs: urls, CredsFile: "/a.creds", NKeyFile: "/a.nk"}), "nats: choose one of"},
		{"tls cert without key", nats(upstream.Config{URLs: urls, TLS: &upstream.TLSConfig{Cert: "/c.pem"}}), "nats: tls cert and key go together"},
		{"tls key without cert", nats(upstream.Config{URLs: urls, TLS: &upstream.TLSConfig{Key: "/k.pem"}}), "nats: tls cert and key go together"},
		{"credentials for the embedded server", nats(upstream.Config{Token: "t"}), "the embedded server needs none"},
		{"tls for the embedded server", nats(upstream.Config{TLS: &upstream.TLSConfig{CA: "/ca.pem"}}), "the embedded server needs none"},
		{"bad embedded listen", nats(upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "4222"}}), `embedded listen "4222"`},
		{"password for the embedded server", nats(upstream.Config{Password: "p"}), "the embedded server needs none"},
		{"embedded on all interfaces without users", embedded(upstream.EmbeddedConfig{Listen: "0.0.0.0:4222"}), `embedded listen "0.0.0.0:4222" is reachable from other hosts, and the embedded server has no users, so anyone could publish; add a user`},
		{"embedded on every address without users", embedded(upstream.EmbeddedConfig{Listen: ":4222"}), "or listen on 127.0.0.1"},
		{"embedded on a host name without users", embedded(upstream.EmbeddedConfig{Listen: "nats.internal:4222"}), "reachable from other hosts"},
		{"embedded anonymous on all interfaces", embedded(upstream.EmbeddedConfig{Listen: "0.0.0.0:4222", Anonymous: &on, Users: []upstream.EmbeddedUser{{User: "a", Password: "s3cret"}}}), `embedded anonymous on: only for a loopback listen, not "0.0.0.0:4222"`},
		{"embedded user without password", embeddedUsers(upstream.EmbeddedUser{User: "backend"}), `embedded user "backend": password is required`},
		{"embedded user with user and nkey", embeddedUsers(upstream.EmbeddedUser{User: "backend", Password: "s3cret", NKey: testNKey}), "give user and password, or nkey, not both"},
		{"embedded user without name", embeddedUsers(upstream.EmbeddedUser{Password: "s3cret"}), "needs a user name or an nkey"},
		{"embedded nkey not a user key", embeddedUsers(upstream.EmbeddedUser{NKey: "UABC"}), `embedded nkey "UABC": not a public user nkey`},
		{"embedded nkey seed instead of public key", embeddedUsers(upstream.EmbeddedUser{NKey: testSeed}), "that is a seed, which stays with the client"},
		{"embedded nkey with password", embeddedUsers(upstream.EmbeddedUser{NKey: testNKey, Password: "s3cret"}), "takes no password"},
		{"embedded user with a reserved name", embeddedUsers(upstream.EmbeddedUser{User: "_ssegate_gateway", Password: "s3cret"}), "reserved"},
		{"embedded user twice", embeddedUsers(upstream.EmbeddedUser{User: "a", Password: "s3cret"}, upstream.EmbeddedUser{User: "a", Password: "s3cret2"}), `embedded user "a" is given more than once`},
		{"embedded user bad publish subject", embeddedUsers(upstream.EmbeddedUser{User: "a", Password: "s3cret", Publish: []string{"events..x"}}), `"events..x" is not a NATS subject`},
		{"embedded user bad subscribe subject", embeddedUsers(upstream.EmbeddedUser{User: "a", Password: "s3cret", Subscribe: []string{"a.>.b"}}), `"a.>.b" is not a NATS subject`},
		{"stream replicas", &App{Stream: replay.StreamConfig{Replicas: 6}}, "stream replicas 6: want 1 to 5"},
		{"stream storage", &App{Stream: replay.StreamConfig{Storage: "disk"}}, `stream storage "disk": want file or memory`},
		{"stream loops through republish", &App{Stream: replay.StreamConfig{Subjects: []string{">"}}}, "would loop"},
		{"negative replay_budget", &App{ReplayBudget: -1}, "cannot be negative"},
		{"negative replay_pull_bytes", &App{ReplayPullBytes: -1}, "cannot be negative"},
		{"replay_budget below two pulls", &App{ReplayPullBytes: 4 << 20, ReplayBudget: 6 << 20}, "must hold two replays' pulls"},
		{"replay_budget below two default pulls", &App{ReplayBudget: 3 << 20}, "replay_budget 3145728 must hold two replays' pulls (2 × replay_pull_bytes 2097152)"},
		{"replay_pull_bytes beyond half the default budget", &App{ReplayPullBytes: 20 << 20}, "replay_budget 33554432 must hold"},
		{"replay_budget at nats-server's max_pending", &App{ReplayBudget: 64 << 20}, "replay_budget 67108864: at most 50331648"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			err := provisionApp(t, tt.app)
			if err == nil {
				t.Fatalf("Provision succeeded; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Provision: %q does not contain %q", err, tt.want)
			}
			for _, secret := range []string{"s3cret", testSeed} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Provision: %q holds a secret", err)
				}
			}
		})
	}
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
