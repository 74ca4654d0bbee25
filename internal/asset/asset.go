// Package asset serves the files the gateway embeds for browsers: the
// console's page and client.js. Each goes out with its content type and an
// ETag of its bytes, under Cache-Control: no-cache, so a browser asks
// again each time, gets a new gateway's version at once, and downloads
// nothing when the file has not changed.
package asset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// File is one embedded file.
type File struct {
	name, ctype, etag string
	body              []byte
}

// New describes body, served as name with the content type ctype.
func New(name, ctype string, body []byte) *File {
	sum := sha256.Sum256(body)
	return &File{name: name, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, body: body}
}

// Serve answers a GET or a HEAD with the file, or with 304 Not Modified
// to a browser that has it; the caller refuses other methods.
func (f *File) Serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
