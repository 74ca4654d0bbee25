// Package browser serves the browser client, client.js beside this file:
// an ES module without dependencies that pages import from the gateway
// (docs/history-and-poll.md).
package browser

import (
	_ "embed"
	"net/http"

	"github.com/ssegate/ssegate/internal/asset"
	"github.com/ssegate/ssegate/internal/refusal"
)

//go:embed client.js
var script []byte

// Script serves client.js.
type Script struct {
	file   *asset.File
	refuse refusal.Refuser
}

// New returns the handler of client.js, which refuses with refuse.
func New(refuse refusal.Refuser) *Script {
	return &Script{file: asset.New("client.js", "text/javascript; charset=utf-8", script), refuse: refuse}
}

// ServeHTTP answers GET and HEAD with the module; browsers revalidate it
// with its ETag, so a new gateway's client reaches them at once.
func (s *Script) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if !s.refuse.NotRead(w, r) {
		s.file.Serve(w, r)
	}
	return nil
}
