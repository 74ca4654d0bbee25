package history

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/eventfilter"
)

// params are a history or poll request's query, checked.
type params struct {
	// after is the raw position, hasAfter whether one was given.
	after    string
	hasAfter bool
	// last, when > 0, asks for the newest last events.
	last int
	// since is an RFC 3339 time to start at, when there is no after.
	since string
	limit int
	// wait is how long a poll waits for an event.
	wait time.Duration
	// filter keeps the events asked for by name.
	filter eventfilter.Filter
}

func badRequest(code, detail string) *auth.Error {
	return &auth.Error{Status: http.StatusBadRequest, Code: code, Detail: detail}
}

// parseParams reads what both endpoints share. A position that is not an
// id is not an error here: it gets a reset in the answer, as a bad
// Last-Event-ID gets one on a stream.
func parseParams(q url.Values, defLimit, maxLimit int) (params, *auth.Error) {
	var p params
	if v, ok := q["after"]; ok {
		p.after, p.hasAfter = v[0], true
	}
	var ferr error
	if p.filter, ferr = eventfilter.Parse(q); ferr != nil {
		return p, badRequest(auth.CodeInvalidEvent, ferr.Error())
	}
	var err *auth.Error
	if p.limit, err = count(q, "limit", auth.CodeInvalidLimit, defLimit, maxLimit); err != nil {
		return p, err
	}
	if p.last, err = count(q, "last", auth.CodeInvalidLast, 0, maxLimit); err != nil {
		return p, err
	}
	if p.last > 0 && p.hasAfter {
		return p, badRequest(auth.CodeConflictingParams, "give after or last, not both")
	}
	if p.since = q.Get("since"); p.since != "" && p.last > 0 {
		return p, badRequest(auth.CodeConflictingParams, "give since or last, not both")
	}
	if p.last > 0 {
		p.limit = p.last
	}
	return p, nil
}

// count reads a parameter that must be an integer from 1 to most, or
// absent (def); a bad one is refused with code.
func count(q url.Values, name, code string, def, most int) (int, *auth.Error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	if len(v) > 1 {
		return 0, badRequest(code, name+" is given more than once")
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > most {
		return 0, badRequest(code, fmt.Sprintf("%s must be an integer from 1 to %d", name, most))
	}
	return n, nil
}

// parseWait reads a poll's wait: a Go duration or a number of seconds,
// capped at most. Asking for longer is not an error: the cap is what a
// proxy in between would impose anyway, and the client polls again.
func parseWait(q url.Values, most time.Duration) (time.Duration, *auth.Error) {
	if len(q["wait"]) > 1 {
		return 0, badRequest(auth.CodeInvalidWait, "wait is given more than once")
	}
	v := q.Get("wait")
	if v == "" {
		return most, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, serr := strconv.ParseUint(v, 10, 32)
		if serr != nil {
			return 0, badRequest(auth.CodeInvalidWait, "wait must be a duration such as 25s")
		}
		d = time.Duration(secs) * time.Second
	}
	if d < 0 {
		return 0, badRequest(auth.CodeInvalidWait, "wait cannot be negative")
	}
	return min(d, most), nil
}
