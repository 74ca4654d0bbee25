package ssegate

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ssegate/ssegate/internal/testkit"
)

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
