package caddyargs

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// line returns a dispenser on the first token of input.
func line(input string) *caddyfile.Dispenser {
	d := caddyfile.NewTestDispenser(input)
	d.Next()
	return d
}

// TestOneValue: each kind of value, and the mistakes each refuses.
func TestOneValue(t *testing.T) {
	var n int
	var sz int64
	var dur caddy.Duration
	tests := []struct {
		input string
		read  func(*caddyfile.Dispenser) error
		want  string // "" for no error
	}{
		{"k 3", func(d *caddyfile.Dispenser) error { return PositiveInt(d, &n) }, ""},
		{"k 0", func(d *caddyfile.Dispenser) error { return PositiveInt(d, &n) }, `k: want a positive integer, got "0"`},
		{"k 0", func(d *caddyfile.Dispenser) error { return NonNegativeInt(d, &n) }, ""},
		{"k -1", func(d *caddyfile.Dispenser) error { return NonNegativeInt(d, &n) }, `k: want a non-negative integer, got "-1"`},
		{"k", func(d *caddyfile.Dispenser) error { return PositiveInt(d, &n) }, "after 'k'"},
		{"k 1 2", func(d *caddyfile.Dispenser) error { return PositiveInt(d, &n) }, "after '2'"},
		{"k 64MiB", func(d *caddyfile.Dispenser) error { return Size(d, &sz) }, ""},
		{"k lots", func(d *caddyfile.Dispenser) error { return Size(d, &sz) }, `k "lots"`},
		{"k 0", func(d *caddyfile.Dispenser) error { return PositiveSize(d, &sz) }, "k: want a positive size"},
		{"k 2KiB", func(d *caddyfile.Dispenser) error { return SizeUpTo(d, &sz, 1024) }, `k "2KiB": want a size from 1B to 1.0 KiB`},
		{"k 1d", func(d *caddyfile.Dispenser) error { return Duration(d, &dur) }, ""},
		{"k -1s", func(d *caddyfile.Dispenser) error { return Duration(d, &dur) }, `k: want a positive duration, got "-1s"`},
		{"k maybe", func(d *caddyfile.Dispenser) error { _, err := OnOff(d); return err }, `k: want on or off, got "maybe"`},
	}
	for _, tc := range tests {
		err := tc.read(line(tc.input))
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v, want %q", tc.input, err, tc.want)
		}
	}
	if n != 0 || sz != 0 || time.Duration(dur) != 24*time.Hour {
		t.Errorf("values: %d %d %v", n, sz, time.Duration(dur))
	}
}

// TestBlockWithFields: a block read through a Fields table, with the
// parser's own case for the rest.
func TestBlockWithFields(t *testing.T) {
	var name string
	var subjects []string
	var on bool
	fields := Fields{String: map[string]*string{"name": &name}, Strings: map[string]*[]string{"subjects": &subjects},
		OnOff: map[string]*bool{"flag": &on}}
	d := line("stream {\n\tname S\n\tsubjects a b\n\tsubjects c\n\tflag on\n\tother\n}")
	var others int
	err := Block(d, func(key string) error {
		if ok, err := fields.Read(d, key); ok {
			return err
		}
		others++
		return nil
	})
	if err != nil || name != "S" || strings.Join(subjects, ",") != "a,b,c" || !on || others != 1 {
		t.Fatalf("%v: %q %v %v %d", err, name, subjects, on, others)
	}
	if err := Block(line("stream arg {\n}"), func(string) error { return nil }); err == nil {
		t.Fatal("a block whose line has an argument was read")
	}
}

// TestEndpoint: an endpoint's path, its block read by a Fields table and
// by the parser's own cases, and the mistakes it refuses.
func TestEndpoint(t *testing.T) {
	var path, bucket string
	var keys []string
	fields := Fields{String: map[string]*string{"bucket": &bucket}}
	own := func(d *caddyfile.Dispenser) func(string) (bool, error) {
		return func(key string) (bool, error) {
			if key != "key" {
				return false, nil
			}
			return true, Strings(d, &keys)
		}
	}
	d := line("control /c {\n\tbucket b\n\tkey k1\n\tkey k2\n}")
	if err := Endpoint(d, &path, fields, own(d)); err != nil || path != "/c" || bucket != "b" || strings.Join(keys, ",") != "k1,k2" {
		t.Fatalf("%v: %q %q %v", err, path, bucket, keys)
	}
	for _, tc := range []struct{ input, want string }{
		{"control", "after 'control'"},
		{"control /a /b", "after '/b'"},
		{"control /c {\n\tother 1\n}", `unknown control option "other"`},
		{"poll /p {\n\tkey k\n}", `unknown poll option "key"`},
	} {
		d := line(tc.input)
		var o func(string) (bool, error)
		if strings.HasPrefix(tc.input, "control") {
			o = own(d)
		}
		if err := Endpoint(d, &path, fields, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.input, err, tc.want)
		}
	}
}
