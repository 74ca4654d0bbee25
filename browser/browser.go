// Package browser serves the browser client, client.js beside this file:
// an ES module without dependencies that pages import from the gateway
// (docs/history-and-poll.md).
package browser

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/ssegate/ssegate/internal/refusal"
)

//go:embed client.js
var script []byte

// Script serves client.js.
type Script struct {
	etag   string
	refuse refusal.Refuser
}

// New returns the handler of client.js, which refuses with refuse.
func New(refuse refusal.Refuser) *Script {
	sum := sha256.Sum256(script)
	return &Script{etag: `"` + hex.EncodeToString(sum[:8]) + `"`, refuse: refuse}
}

// ServeHTTP answers GET and HEAD with the module; browsers revalidate it
// with its ETag, so a new gateway's client reaches them at once.
func (s *Script) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if s.refuse.NotRead(w, r) {
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", s.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "client.js", time.Time{}, bytes.NewReader(script))
	return nil
}
