// Package refusal answers the requests that the gateway's endpoints do not
// serve: a status and a short JSON body (auth.Error), one log line that
// names the path but never the query, which may carry a ticket, and the
// refusals count.
package refusal

import (
	"cmp"
	"net/http"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
)

// Refuser writes refusals. Its zero value writes them without a log line
// or a count.
type Refuser struct {
	log   *zap.Logger
	count func(code string)
	// endpoint names the endpoint in log lines: "stream refused",
	// "publish refused".
	endpoint string
}

// New returns a Refuser that logs to log and counts each refusal's code
// with count; either may be nil.
func New(log *zap.Logger, count func(code string)) Refuser {
	return Refuser{log: log, count: count, endpoint: "stream"}
}

// Named returns a Refuser whose log lines name endpoint.
func (f Refuser) Named(endpoint string) Refuser {
	f.endpoint = endpoint
	return f
}

// Refuse answers r with status and a JSON body of code and detail. It
// returns nil, for handlers that return its result: the request was
// answered.
func (f Refuser) Refuse(w http.ResponseWriter, r *http.Request, status int, code, detail string) error {
	if f.log != nil {
		// The code's key is "code", and a 5xx is a warning, as in
		// package auth's lines.
		lvl := f.log.Info
		if status >= 500 {
			lvl = f.log.Warn
		}
		lvl(cmp.Or(f.endpoint, "stream")+" refused",
			zap.Int("status", status),
			zap.String("code", code),
			zap.String("detail", detail),
			zap.String("path", r.URL.Path),
			zap.String("remote", r.RemoteAddr))
	}
	if f.count != nil {
		f.count(code)
	}
	(&auth.Error{Status: status, Code: code, Detail: detail}).Write(w)
	return nil
}

// NotRead refuses a request that is neither GET nor HEAD, as every
// read-only endpoint does (405, Allow: GET, HEAD), and reports whether it
// did.
func (f Refuser) NotRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	w.Header().Set("Allow", "GET, HEAD")
	_ = f.Refuse(w, r, http.StatusMethodNotAllowed, auth.CodeMethodNotAllowed, "use GET or HEAD")
	return true
}
