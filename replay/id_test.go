package replay

import (
	"strings"
	"testing"
	"time"
)

func TestIDRoundTrip(t *testing.T) {
	for _, id := range []ID{{1, "abcd"}, {18446744073709551615, "zz27"}, {42, ""}} {
		got, err := Parse(id.String())
		if err != nil || got != id {
			t.Errorf("Parse(%q) = %+v, %v", id.String(), got, err)
		}
		if string(id.Append(nil)) != id.String() {
			t.Errorf("Append and String differ for %+v", id)
		}
	}
}

func TestParseRefusesWhatItDoesNotWrite(t *testing.T) {
	for _, raw := range []string{
		"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "abc", "1.5",
		"18446744073709551616",             // one past uint64
		"99999999999999999999999999999999", // huge
		strings.Repeat("9", 1000),
		"1\x00", "1\r", "1\n2", "1-", "1-abc", "1-abcde", "1-ABCD", "1-ab1d", "1-abcd-x",
		"-abcd", "日本",
	} {
		if id, err := Parse(raw); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", raw, id)
		}
	}
}

func TestEpochIsShortAndStable(t *testing.T) {
	created := time.Date(2026, 11, 21, 10, 0, 0, 123, time.UTC)
	a, b := Epoch(created), Epoch(created)
	if a != b || !validEpoch(a) {
		t.Fatalf("epoch %q, %q", a, b)
	}
	if Epoch(created.Add(time.Nanosecond)) == a {
		t.Fatal("a recreated stream must get another epoch")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "12-abcd", "-", "1-", "18446744073709551615-zzzz", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := Parse(raw)
		if err != nil {
			return
		}
		if back, err := Parse(id.String()); err != nil || back != id {
			t.Fatalf("%q parsed to %+v, which does not round-trip", raw, id)
		}
	})
}
