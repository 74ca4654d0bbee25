package replay

import "strings"

// SubjectMatches reports whether a NATS subject pattern (with * and >)
// matches subject, which may itself hold wildcards: then it asks whether
// everything subject matches is matched by pattern too.
func SubjectMatches(pattern, subject string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		if st[i] == ">" {
			return false
		}
		if p != "*" && (p != st[i] || st[i] == "*") {
			return false
		}
	}
	return len(pt) == len(st)
}

// ValidSubject reports whether s is a NATS subject: non-empty tokens without
// whitespace, and wildcards only where allowed and in their own tokens.
func ValidSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return false
		}
		if t == "*" || t == ">" {
			if !wildcards || (t == ">" && i != len(tokens)-1) {
				return false
			}
			continue
		}
		if strings.ContainsAny(t, "*>") {
			return false
		}
	}
	return true
}
