package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ssegate/ssegate/internal/version"
)

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	// -version needs no data argument and no server.
	if err := run([]string{"-version", "-server", "nats://127.0.0.1:1"}, strings.NewReader(""), &stdout, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if got, want := stdout.String(), "publish: ssegate "+version.Release+"\n"; got != want {
		t.Errorf("-version printed %q, want %q", got, want)
	}
}

func TestBadArguments(t *testing.T) {
	t.Setenv(passwordEnv, "")
	dead := "nats://127.0.0.1:1"
	tests := []struct {
		args []string
		want string
	}{
		{nil, "want exactly one data argument"},
		{[]string{"a", "b"}, "want exactly one data argument"},
		{[]string{"-count", "0", "x"}, "-count must be between"},
		{[]string{"-count", "2000000", "x"}, "-count must be between"},
		{[]string{"-interval", "-1s", "x"}, "-interval cannot be negative"},
		{[]string{"-header", "novalue", "-server", dead, "x"}, "want Key=Value"},
		{[]string{"-header", "=v", "-server", dead, "x"}, "want Key=Value"},
		{[]string{"-nosuchflag", "x"}, "flag provided but not defined"},
		{[]string{"-user", "backend", "x"}, "needs a password: set $SSEGATE_NATS_PASSWORD"},
		{[]string{"-password", "p", "x"}, "-password needs -user"},
		{[]string{"-user", "u", "-password", "p", "-token", "t", "x"}, "choose one of"},
		{[]string{"-creds", "c", "-token", "t", "x"}, "choose one of"},
		{[]string{"-server", dead, "x"}, "connecting to nats://127.0.0.1:1"},
		// Nothing listening: say what should be.
		{[]string{"-server", dead, "x"}, "Is the gateway running? With Caddyfile.example, its embedded NATS listens on 127.0.0.1:4222"},
	}
	for _, tt := range tests {
		var stdout bytes.Buffer
		err := run(tt.args, strings.NewReader(""), &stdout, new(bytes.Buffer))
		if err == nil {
			t.Errorf("run(%q) succeeded", tt.args)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want it to mention %q", tt.args, err, tt.want)
		}
		if strings.Contains(err.Error(), "is the subject stored") || strings.Contains(err.Error(), "stream stores") {
			t.Errorf("run(%q) = %v: a hint about the stream that does not apply", tt.args, err)
		}
		if stdout.Len() > 0 {
			t.Errorf("run(%q) printed %q on an error", tt.args, stdout.String())
		}
	}
}
