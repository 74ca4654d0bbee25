package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ssegate/ssegate/internal/version"
)

func TestStatus(t *testing.T) {
	var stderr bytes.Buffer
	if got := Status("token", nil, &stderr); got != 0 || stderr.Len() != 0 {
		t.Errorf("Status(nil) = %d, wrote %q; want 0 and nothing", got, stderr.String())
	}
	if got := Status("token", errors.New("-sub is required"), &stderr); got != 1 || stderr.String() != "token: -sub is required\n" {
		t.Errorf("Status(err) = %d, wrote %q; want 1 and the error after the name", got, stderr.String())
	}
}

func TestFlagSet(t *testing.T) {
	var stderr bytes.Buffer
	fs, v := FlagSet("publish", &stderr)
	if err := fs.Parse([]string{"-version"}); err != nil || !*v {
		t.Errorf("-version: %v, set %v", err, *v)
	}
	fs, _ = FlagSet("publish", &stderr)
	if err := fs.Parse([]string{"-nosuchflag"}); err == nil || !strings.Contains(stderr.String(), "flag provided but not defined") {
		t.Errorf("an unknown flag: %v, stderr %q; want an error and the usage on stderr", err, stderr.String())
	}
}

func TestPrintVersion(t *testing.T) {
	var out bytes.Buffer
	if err := PrintVersion(&out, "token"); err != nil {
		t.Fatal(err)
	}
	if want := "token: ssegate " + version.Full() + "\n"; out.String() != want {
		t.Errorf("PrintVersion: %q, want %q", out.String(), want)
	}
}

func TestList(t *testing.T) {
	l := &List{Check: func(v string) error {
		if strings.TrimSpace(v) == "" {
			return errors.New("empty")
		}
		return nil
	}}
	for _, v := range []string{"demo", "orders.*"} {
		if err := l.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if err := l.Set(" "); err == nil {
		t.Error("Set(\" \") passed the check")
	}
	if got := l.String(); got != "demo,orders.*" {
		t.Errorf("String() = %q, want the values in order", got)
	}
	var unchecked List
	if err := unchecked.Set(""); err != nil || len(unchecked.Values) != 1 {
		t.Errorf("without a check, Set(\"\") = %v, values %q", err, unchecked.Values)
	}
}
