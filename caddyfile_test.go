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

	testkit.CheckAdaptErrors(t, []testkit.AdaptError{
		// Handler: unknown and misplaced tokens.
		{Name: "handler unknown subdirective", Caddyfile: handler("channel query"), Want: `unknown ssegate subdirective "channel"`, Line: 3},
		{Name: "handler argument after matcher", Caddyfile: ":8080 {\n\tssegate /events extra\n}\n", Want: "wrong argument count or unexpected line ending after 'extra'", Line: 2},
		{Name: "handler argument without matcher", Caddyfile: ":8080 {\n\tssegate extra {\n\t\tpublic a\n\t}\n}\n", Want: "wrong argument count or unexpected line ending after 'extra'", Line: 2},

		{Name: "auth twice", Caddyfile: handler("auth {", "\thmac_secret {env.S}", "}", "auth {", "\thmac_secret {env.S}", "}"), Want: "auth is given more than once", Line: 6},
		{Name: "auth unknown subdirective", Caddyfile: handler("auth {", "\tpassword x", "}"), Want: `password`, Line: 4},

		// Presence and control.
		{Name: "presence without path", Caddyfile: handler("presence"), Want: "wrong argument count or unexpected line ending after 'presence'", Line: 3},
		{Name: "presence twice", Caddyfile: handler("presence /p", "presence /q"), Want: "presence is given more than once", Line: 4},
		{Name: "presence unknown option", Caddyfile: handler("presence /p {", "	interval 1s", "}"), Want: `unknown presence option "interval"`, Line: 4},
		{Name: "presence bad ttl", Caddyfile: handler("presence /p {", "	ttl soon", "}"), Want: "ttl", Line: 4},
		{Name: "presence_events without pattern", Caddyfile: handler("presence_events"), Want: "wrong argument count or unexpected line ending after 'presence_events'", Line: 3},
		{Name: "control without path", Caddyfile: handler("control"), Want: "wrong argument count or unexpected line ending after 'control'", Line: 3},
		{Name: "control twice", Caddyfile: handler("control /c", "control /d"), Want: "control is given more than once", Line: 4},
		{Name: "control key without value", Caddyfile: handler("control /c {", "	key", "}"), Want: "wrong argument count or unexpected line ending after 'key'", Line: 4},
		{Name: "control unknown option", Caddyfile: handler("control /c {", "	secret x", "}"), Want: `unknown control option "secret"`, Line: 4},

		// Handler: missing arguments.
		{Name: "subject without value", Caddyfile: handler("subject"), Want: "wrong argument count or unexpected line ending after 'subject'", Line: 3},
		{Name: "channels without mode", Caddyfile: handler("channels"), Want: "wrong argument count or unexpected line ending after 'channels'", Line: 3},
		{Name: "channels fixed without channel", Caddyfile: handler("channels fixed"), Want: "wrong argument count or unexpected line ending after 'fixed'", Line: 3},
		{Name: "channels placeholder without placeholder", Caddyfile: handler("channels placeholder"), Want: "wrong argument count or unexpected line ending after 'placeholder'", Line: 3},
		{Name: "public without pattern", Caddyfile: handler("public"), Want: "wrong argument count or unexpected line ending after 'public'", Line: 3},
		{Name: "public without pattern after a public line", Caddyfile: handler("public a", "public"), Want: "wrong argument count or unexpected line ending after 'public'", Line: 4},
		{Name: "channel_pattern without value", Caddyfile: handler("channel_pattern"), Want: "after 'channel_pattern'", Line: 3},
		{Name: "max_channels without value", Caddyfile: handler("max_channels"), Want: "after 'max_channels'", Line: 3},
		{Name: "heartbeat without value", Caddyfile: handler("heartbeat"), Want: "after 'heartbeat'", Line: 3},

		// Handler: extra arguments.
		{Name: "subject with two values", Caddyfile: handler("subject a.{channel} b"), Want: "wrong argument count or unexpected line ending after 'b'", Line: 3},
		{Name: "heartbeat with two values", Caddyfile: handler("heartbeat 1s 2s"), Want: "wrong argument count or unexpected line ending after '2s'", Line: 3},
		{Name: "channels query with two params", Caddyfile: handler("channels query a b"), Want: "wrong argument count or unexpected line ending after 'b'", Line: 3},
		{Name: "channels placeholder with two values", Caddyfile: handler("channels placeholder {a} {b}"), Want: "after '{b}'", Line: 3},
		{Name: "queue_size with two values", Caddyfile: handler("queue_size 1 2"), Want: "after '2'", Line: 3},

		// Handler: bad values.
		{Name: "channels unknown mode", Caddyfile: handler("channels carrier-pigeon"), Want: `channels: unknown source "carrier-pigeon" (want query, placeholder or fixed)`, Line: 3},
		{Name: "heartbeat not a duration", Caddyfile: handler("heartbeat abc"), Want: `heartbeat: want a positive duration, got "abc"`, Line: 3},
		{Name: "heartbeat negative", Caddyfile: handler("heartbeat -1s"), Want: `heartbeat: want a positive duration, got "-1s"`, Line: 3},
		{Name: "retry zero", Caddyfile: handler("retry 0s"), Want: `retry: want a positive duration, got "0s"`, Line: 3},
		{Name: "write_timeout not a duration", Caddyfile: handler("write_timeout soon"), Want: `write_timeout: want a positive duration, got "soon"`, Line: 3},
		{Name: "queue_size zero", Caddyfile: handler("queue_size 0"), Want: `queue_size: want a positive integer, got "0"`, Line: 3},
		{Name: "queue_size not a number", Caddyfile: handler("queue_size x"), Want: `queue_size: want a positive integer, got "x"`, Line: 3},
		{Name: "max_channels negative", Caddyfile: handler("max_channels -3"), Want: `max_channels: want a positive integer, got "-3"`, Line: 3},
		{Name: "replay_limit zero", Caddyfile: handler("replay_limit 0"), Want: `replay_limit: want a positive integer, got "0"`, Line: 3},
		{Name: "http1_takeover yes", Caddyfile: handler("http1_takeover yes"), Want: `http1_takeover: want on or off, got "yes"`, Line: 3},

		// Global option: unknown and misplaced tokens.
		{Name: "global unknown option", Caddyfile: global("urls nats://a:4222"), Want: `unknown ssegate option "urls"`, Line: 3},
		{Name: "global option given twice", Caddyfile: "{\n\tssegate {\n\t\turl nats://a:4222\n\t}\n\tssegate {\n\t\tstart_timeout 5s\n\t}\n}\n", Want: "more than once", Line: 5},
		{Name: "global argument", Caddyfile: "{\n\tssegate extra-arg {\n\t\turl nats://a:4222\n\t}\n}\n", Want: "wrong argument count or unexpected line ending after 'extra-arg'", Line: 2},
		{Name: "tls unknown option", Caddyfile: global("url nats://a:4222", "tls {", "\tcafile /ca.pem", "}"), Want: `unknown tls option "cafile"`, Line: 5},
		{Name: "tls argument", Caddyfile: global("url nats://a:4222", "tls on"), Want: "after 'on'", Line: 4},
		{Name: "embedded unknown option", Caddyfile: global("embedded {", "\tport 4222", "}"), Want: `unknown embedded option "port"`, Line: 4},
		{Name: "embedded argument", Caddyfile: global("embedded 127.0.0.1:4222"), Want: "after '127.0.0.1:4222'", Line: 3},
		{Name: "stream unknown option", Caddyfile: global("stream {", "\tretention limits", "}"), Want: `unknown stream option "retention"`, Line: 4},
		{Name: "embedded user without name", Caddyfile: global("embedded {", "\tuser", "}"), Want: "after 'user'", Line: 4},
		{Name: "embedded user with two names", Caddyfile: global("embedded {", "\tuser a b {", "\t\tpassword p", "\t}", "}"), Want: "after 'b'", Line: 4},
		{Name: "embedded user unknown option", Caddyfile: global("embedded {", "\tuser a {", "\t\tpasswd p", "\t}", "}"), Want: `unknown user option "passwd"`, Line: 5},
		{Name: "embedded user publish without subject", Caddyfile: global("embedded {", "\tuser a {", "\t\tpassword p", "\t\tpublish", "\t}", "}"), Want: "after 'publish'", Line: 6},
		{Name: "embedded user password with two values", Caddyfile: global("embedded {", "\tuser a {", "\t\tpassword p q", "\t}", "}"), Want: "after 'q'", Line: 5},
		{Name: "embedded nkey with password", Caddyfile: global("embedded {", "\tnkey "+testNKey+" {", "\t\tpassword p", "\t}", "}"), Want: "an nkey user takes no password", Line: 5},
		{Name: "embedded anonymous maybe", Caddyfile: global("embedded {", "\tanonymous maybe", "}"), Want: `anonymous: want on or off, got "maybe"`, Line: 4},
		{Name: "embedded nkey without key", Caddyfile: global("embedded {", "\tnkey {", "\t\tpublish a", "\t}", "}"), Want: "after 'nkey'", Line: 4},
		{Name: "stream argument", Caddyfile: global("stream EVENTS {", "\tstorage file", "}"), Want: "after 'EVENTS'", Line: 3},

		// Global option: missing and extra arguments.
		{Name: "url without value", Caddyfile: global("url"), Want: "wrong argument count or unexpected line ending after 'url'", Line: 3},
		{Name: "url without value after a url line", Caddyfile: global("url nats://a:4222", "url"), Want: "wrong argument count or unexpected line ending after 'url'", Line: 4},
		{Name: "user without value", Caddyfile: global("url nats://a:4222", "user"), Want: "after 'user'", Line: 4},
		{Name: "password with two values", Caddyfile: global("url nats://a:4222", "user u", "password p q"), Want: "after 'q'", Line: 5},
		{Name: "stream subjects without value", Caddyfile: global("stream {", "\tsubjects", "}"), Want: "after 'subjects'", Line: 4},
		{Name: "manage_stream without value", Caddyfile: global("manage_stream"), Want: "after 'manage_stream'", Line: 3},
		{Name: "start_timeout with two values", Caddyfile: global("start_timeout 1s 2s"), Want: "after '2s'", Line: 3},

		// Global option: bad values.
		{Name: "storage disk", Caddyfile: global("stream {", "\tstorage disk", "}"), Want: `storage must be file or memory, not "disk"`, Line: 4},
		{Name: "replicas zero", Caddyfile: global("stream {", "\treplicas 0", "}"), Want: `replicas: want a positive integer, got "0"`, Line: 4},
		{Name: "max_bytes not a size", Caddyfile: global("stream {", "\tmax_bytes lots", "}"), Want: `max_bytes "lots"`, Line: 4},
		{Name: "max_bytes beyond int64", Caddyfile: global("stream {", "\tmax_bytes 10EiB", "}"), Want: `max_bytes "10EiB"`, Line: 4},
		{Name: "max_age not a duration", Caddyfile: global("stream {", "\tmax_age forever", "}"), Want: `max_age: want a positive duration, got "forever"`, Line: 4},
		{Name: "max_msgs_per_subject zero", Caddyfile: global("stream {", "\tmax_msgs_per_subject 0", "}"), Want: `max_msgs_per_subject: want a positive integer, got "0"`, Line: 4},
		{Name: "manage_stream maybe", Caddyfile: global("manage_stream maybe"), Want: `manage_stream: want on or off, got "maybe"`, Line: 3},
		{Name: "reconnect_wait zero", Caddyfile: global("reconnect_wait 0"), Want: `reconnect_wait: want a positive duration, got "0"`, Line: 3},
		{Name: "start_timeout not a duration", Caddyfile: global("start_timeout x"), Want: `start_timeout: want a positive duration, got "x"`, Line: 3},
		{Name: "replay_concurrency zero", Caddyfile: global("replay_concurrency 0"), Want: `replay_concurrency: want a positive integer, got "0"`, Line: 3},
		{Name: "replay_pull_bytes not a size", Caddyfile: global("replay_pull_bytes lots"), Want: `replay_pull_bytes "lots"`, Line: 3},
		{Name: "replay_pull_bytes zero", Caddyfile: global("replay_pull_bytes 0"), Want: `replay_pull_bytes: want a positive size`, Line: 3},
		{Name: "replay_pull_bytes beyond int32", Caddyfile: global("replay_pull_bytes 3GiB"), Want: `replay_pull_bytes 3221225472: too large`, Line: 3},
		{Name: "replay_budget without value", Caddyfile: global("replay_budget"), Want: "after 'replay_budget'", Line: 3},
		{Name: "replay_budget with two values", Caddyfile: global("replay_budget 1MiB 2MiB"), Want: "after '2MiB'", Line: 3},
		{Name: "replay_budget negative", Caddyfile: global("replay_budget -1MiB"), Want: `replay_budget "-1MiB"`, Line: 3},
	})
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
