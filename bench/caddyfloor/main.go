// Command caddyfloor is Caddy with its standard modules and one handler,
// sse_floor, that opens an event stream and holds it without doing
// anything else. It measures what Caddy itself costs per open stream, the
// floor under any streaming handler: sseload -servers raw,floor=<dir>,...
package main

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func init() {
	caddy.RegisterModule(Floor{})
	httpcaddyfile.RegisterHandlerDirective("sse_floor", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		var f Floor
		return f, f.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("sse_floor", httpcaddyfile.Before, "respond")
}

// Floor answers a GET with the headers and one comment, as an event
// stream does, and then waits for the client to leave.
type Floor struct{}

// CaddyModule returns the Caddy module information.
func (Floor) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sse_floor", New: func() caddy.Module { return Floor{} }}
}

func (Floor) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet {
		// sseload opens its h2c connections with an OPTIONS request.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": floor\n\n"))
	_ = http.NewResponseController(w).Flush()
	<-r.Context().Done()
	return nil
}

var (
	_ caddyhttp.MiddlewareHandler = Floor{}
	_ caddyfile.Unmarshaler       = (*Floor)(nil)
)

// UnmarshalCaddyfile takes no options.
func (*Floor) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func main() {
	caddycmd.Main()
}
