// Package caddyargs reads the arguments of Caddyfile lines, the same way
// for every package that parses its own block: one helper per kind of
// value, each failing with the line's directive and the value it got.
package caddyargs

import (
	"math"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// Block reads the block of a line that takes no argument of its own,
// such as `tls { ... }`: it calls option for each line of the block, with
// d on the line's first token, which is key.
func Block(d *caddyfile.Dispenser, option func(key string) error) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return Lines(d, option)
}

// Lines calls option for each line of the block that follows the current
// line, with d on the line's first token, which is key.
func Lines(d *caddyfile.Dispenser, option func(key string) error) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := option(d.Val()); err != nil {
			return err
		}
	}
	return nil
}

// Endpoint reads the line of an endpoint, `<name> <path> { ... }`: its
// one argument into path, then each line of its block, by fields or, for
// a key they do not name, by own (nil when there is none), which reports
// whether it knew the key. Any other key is an error that names the
// endpoint.
func Endpoint(d *caddyfile.Dispenser, path *string, fields Fields, own func(key string) (bool, error)) error {
	name := d.Val()
	if err := String(d, path); err != nil {
		return err
	}
	return Lines(d, func(key string) error {
		if ok, err := fields.Read(d, key); ok {
			return err
		}
		if own != nil {
			if ok, err := own(key); ok {
				return err
			}
		}
		return d.Errf("unknown %s option %q", name, key)
	})
}

// Strings appends the line's remaining arguments, at least one, to dst.
func Strings(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

// Head reads the line's arguments, one or more: the first, and the rest.
func Head(d *caddyfile.Dispenser) (first string, rest []string, err error) {
	var args []string
	if err := Strings(d, &args); err != nil {
		return "", nil, err
	}
	return args[0], args[1:], nil
}

// String reads the line's one argument.
func String(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// PositiveInt reads one integer above 0.
func PositiveInt(d *caddyfile.Dispenser, dst *int) error {
	return intAtLeast(d, dst, 1, "a positive integer")
}

// NonNegativeInt reads one integer, 0 or above: for limits where 0 means
// the default or none.
func NonNegativeInt(d *caddyfile.Dispenser, dst *int) error {
	return intAtLeast(d, dst, 0, "a non-negative integer")
}

func intAtLeast(d *caddyfile.Dispenser, dst *int, least int, want string) error {
	key := d.Val()
	var v string
	if err := String(d, &v); err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		return d.Errf("%s: want %s, got %q", key, want, v)
	}
	*dst = n
	return nil
}

// Size reads one size such as 64MiB or 1GB.
func Size(d *caddyfile.Dispenser, dst *int64) error {
	key := d.Val()
	var v string
	if err := String(d, &v); err != nil {
		return err
	}
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return d.Errf("%s %q: %v", key, v, err)
	}
	if n > math.MaxInt64 {
		return d.Errf("%s %q: too large", key, v)
	}
	*dst = int64(n)
	return nil
}

// PositiveSize reads one size above 0.
func PositiveSize(d *caddyfile.Dispenser, dst *int64) error {
	key := d.Val()
	if err := Size(d, dst); err != nil {
		return err
	}
	if *dst <= 0 {
		return d.Errf("%s: want a positive size", key)
	}
	return nil
}

// SizeUpTo reads one size from 1 byte to most.
func SizeUpTo(d *caddyfile.Dispenser, dst *int64, most int64) error {
	key := d.Val()
	var n int64
	err := Size(d, &n)
	if err == nil && (n <= 0 || n > most) {
		err = d.Errf("%s %q: want a size from 1B to %s", key, d.Val(), humanize.IBytes(uint64(most)))
	}
	if err != nil {
		return err
	}
	*dst = n
	return nil
}

// Duration reads one duration above 0, in Caddy's syntax (1d, 90s, ...).
func Duration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	key := d.Val()
	var v string
	if err := String(d, &v); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return d.Errf("%s: want a positive duration, got %q", key, v)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// OnOff reads one of on or off.
func OnOff(d *caddyfile.Dispenser) (bool, error) {
	key := d.Val()
	var v string
	if err := String(d, &v); err != nil {
		return false, err
	}
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, d.Errf("%s: want on or off, got %q", key, v)
}

// Fields names the settings of a block that each take one value of a
// kind, by their key: a parser reads those lines with Read and writes its
// own cases only for the rest.
type Fields struct {
	String         map[string]*string
	Strings        map[string]*[]string // appended to, one or more
	PositiveInt    map[string]*int
	NonNegativeInt map[string]*int
	Duration       map[string]*caddy.Duration
	OnOff          map[string]*bool
}

// Read reads the line of key into its field, and reports whether key
// named one.
func (f Fields) Read(d *caddyfile.Dispenser, key string) (bool, error) {
	if dst, ok := f.String[key]; ok {
		return true, String(d, dst)
	}
	if dst, ok := f.Strings[key]; ok {
		return true, Strings(d, dst)
	}
	if dst, ok := f.PositiveInt[key]; ok {
		return true, PositiveInt(d, dst)
	}
	if dst, ok := f.NonNegativeInt[key]; ok {
		return true, NonNegativeInt(d, dst)
	}
	if dst, ok := f.Duration[key]; ok {
		return true, Duration(d, dst)
	}
	if dst, ok := f.OnOff[key]; ok {
		on, err := OnOff(d)
		*dst = on
		return true, err
	}
	return false, nil
}
