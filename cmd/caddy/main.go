// Command caddy is Caddy with its standard modules and ssegate, for running
// the gateway without xcaddy: go run ./cmd/caddy run --config Caddyfile.example
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/ssegate/ssegate"
)

func main() {
	caddycmd.Main()
}
