package main

import (
	"strings"
	"testing"
)

func TestBadArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "want exactly one data argument"},
		{[]string{"a", "b"}, "want exactly one data argument"},
		{[]string{"-count", "0", "x"}, "-count must be between"},
		{[]string{"-count", "2000000", "x"}, "-count must be between"},
		{[]string{"-header", "novalue", "-server", "nats://127.0.0.1:1", "x"}, "want Key=Value"},
		{[]string{"-nosuchflag", "x"}, "flag provided but not defined"},
		{[]string{"-server", "nats://127.0.0.1:1", "x"}, "connect"},
	}
	for _, tt := range tests {
		err := run(tt.args)
		if err == nil {
			t.Errorf("run(%q) succeeded", tt.args)
			continue
		}
		if tt.want != "" && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.want)) {
			t.Errorf("run(%q) = %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}
