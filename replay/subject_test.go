package replay

import "testing"

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"events.>", "events.a", true},
		{"events.>", "events.a.b", true},
		{"events.>", "events", false},
		{"events.*", "events.a", true},
		{"events.*", "events.a.b", false},
		{"events.a", "events.a", true},
		{"events.a", "events.b", false},
		{"*.a", "x.a", true},
		{">", "a", true},
		{"events.>", "events.*", true},
		{"events.*", "events.>", false},
		{"events.a", "events.*", false},
		{"events.>", "other.a", false},
	}
	for _, tt := range tests {
		if got := SubjectMatches(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("SubjectMatches(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}

func TestValidSubject(t *testing.T) {
	for s, want := range map[string]bool{
		"events.a": true, "events.>": false, "a..b": false, "": false, ".a": false,
		"a b": false, "a.*x": false, "a\tb": false,
	} {
		if got := ValidSubject(s, false); got != want {
			t.Errorf("ValidSubject(%q, false) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"events.>": true, "events.*.x": true, "events.>.x": false, ">": true} {
		if got := ValidSubject(s, true); got != want {
			t.Errorf("ValidSubject(%q, true) = %v", s, got)
		}
	}
}
