// Package versioncmd is the `caddy ssegate version` command.
package versioncmd

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/cobra"

	"github.com/ssegate/ssegate/internal/version"
)

// Command is `caddy ssegate version`. `caddy list-modules --versions`
// finds a plugin's version among the binary's dependencies only: built
// from a clone (go run ./cmd/caddy), ssegate is the main module and gets
// no version there. `caddy ssegate version` answers in every build, in the
// spirit of `caddy version`.
func Command() caddycmd.Command {
	return caddycmd.Command{
		Name:  "ssegate",
		Short: "Commands of the ssegate plugin",
		CobraFunc: func(c *cobra.Command) {
			c.AddCommand(&cobra.Command{
				Use:   "version",
				Short: "Prints the ssegate version, with the Caddy and nats-server versions it was built with",
				Args:  cobra.NoArgs,
				RunE: func(c *cobra.Command, _ []string) error {
					simple, _ := caddy.Version()
					_, err := fmt.Fprintf(c.OutOrStdout(), "ssegate %s\ncaddy %s\nnats-server v%s\n", version.Full(), simple, server.VERSION)
					return err
				},
			})
		},
	}
}
