// Package jsonout writes the gateway's JSON answers as plain text.
// encoding/json escapes <, > and & by default (as \u003c, \u003e, \u0026),
// which turns a detail such as `channel "a.>" is not valid` into
// `channel "a.\u003e" ...`. Every answer goes out as application/json with
// nosniff, so no browser reads it as HTML and the escaping buys nothing.
package jsonout

import (
	"encoding/json"
	"io"
)

// Encode writes v as one line of JSON, without HTML escaping.
func Encode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
