package main

import (
	"strings"
	"testing"
)

func TestBadArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "-sub is required"},
		{[]string{"-ttl", "x", "-sub", "a"}, "invalid value"},
		{[]string{"-sub", "a", "-nosuchflag"}, "flag provided but not defined"},
	} {
		err := run(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}
