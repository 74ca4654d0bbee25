package e2e

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strings"
)

// The Caddyfiles the tests run, with all state in the test's directory.

// embeddedOptions is the global options block of a gateway with the
// embedded NATS server.
const embeddedOptions = `{
	admin %[1]s
	persist_config off
	storage file_system %[2]s%[3]s
	ssegate {
		embedded {
			listen 127.0.0.1:%[4]d
			store_dir %[5]s
		}%[6]s
	}
}
`

// embeddedConf fills in embeddedOptions.
type embeddedConf struct {
	natsPort int    // where the embedded NATS server listens
	admin    string // the admin endpoint's address; off when empty
	global   string // more global options
	app      string // more of the ssegate global option
}

// options is the global options block, with Caddy's state and the NATS
// server's store in dir.
func (c embeddedConf) options(dir string) string {
	return fmt.Sprintf(embeddedOptions, cmp.Or(c.admin, "off"), filepath.Join(dir, "caddy"), c.global,
		c.natsPort, filepath.Join(dir, "nats"), c.app)
}

// servers is a global option: the server on port speaks protocols.
func servers(port int, protocols string) string {
	return fmt.Sprintf("\n\tservers 127.0.0.1:%d {\n\t\tprotocols %s\n\t}", port, protocols)
}

// internalTLS are the global options of a gateway with a tls internal
// site: its CA stays out of the system's trust store, and HTTP is not
// redirected to HTTPS.
const internalTLS = "\n\tskip_install_trust\n\tauto_https disable_redirects"

// streamLimits bounds the stream as Caddyfile.example does, but smaller.
const streamLimits = "\n\t\tstream {\n\t\t\tmax_age 1h\n\t\t\tmax_bytes 64MiB\n\t\t}"

// externalCaddyfile is the Caddyfile of a gateway on an external NATS:
// one plain HTTP site whose /events* route serves room.* with a 1-s
// heartbeat, and the app reconnecting every 100 ms.
const externalCaddyfile = `{
	admin off
	persist_config off
	storage file_system %[1]s
	auto_https off%[2]s
	ssegate {
		url %[3]s
		reconnect_wait 100ms%[4]s
	}
}

http://127.0.0.1:%[5]d {
	bind 127.0.0.1
	ssegate /events* {
		public room.*
		heartbeat 1s
		retry %[6]s
	}%[7]s
}
`

// externalConf fills in externalCaddyfile.
type externalConf struct {
	nats   []string // the NATS servers' URLs
	port   int
	retry  string // the route's retry hint; 100ms when empty
	global string // more global options
	app    string // more of the ssegate global option
	site   string // more of the site
}

// caddyfile is the Caddyfile, with the gateway's state in dir.
func (c externalConf) caddyfile(dir string) string {
	return fmt.Sprintf(externalCaddyfile, filepath.Join(dir, "caddy"), c.global, strings.Join(c.nats, " "),
		c.app, c.port, cmp.Or(c.retry, "100ms"), c.site)
}

// clusterCaddyfile is the Caddyfile of a gateway on the cluster at natsURLs,
// with an R3 file stream and a debug log; extra is put in the ssegate
// global option.
func clusterCaddyfile(dir string, natsURLs []string, port int, extra string) string {
	return externalConf{
		nats:   natsURLs,
		port:   port,
		global: "\n\tlog {\n\t\tlevel DEBUG\n\t}",
		app:    extra + "\n\t\tstream {\n\t\t\treplicas 3\n\t\t\tstorage file\n\t\t}",
	}.caddyfile(dir)
}
