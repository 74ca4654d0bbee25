package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/caddyserver/caddy/v2"
)

// Config says how to reach NATS. With no URLs, the gateway runs an embedded
// nats-server with JetStream, so a single binary is a complete deployment.
type Config struct {
	// URLs of an external NATS cluster. Empty means embedded.
	URLs []string `json:"urls,omitempty"`

	User string `json:"user,omitempty"`
	// Password and Token may be Caddy placeholders such as {env.NAME},
	// resolved when connecting.
	Password  string `json:"password,omitempty"`
	Token     string `json:"token,omitempty"`
	CredsFile string `json:"creds_file,omitempty"`
	// NKeyFile is a file holding an nkey seed.
	NKeyFile string     `json:"nkey_file,omitempty"`
	TLS      *TLSConfig `json:"tls,omitempty"`

	// Embedded configures the built-in server used when URLs is empty.
	Embedded *EmbeddedConfig `json:"embedded,omitempty"`

	// ReconnectWait is the pause between reconnect attempts. Default 1s.
	ReconnectWait caddy.Duration `json:"reconnect_wait,omitempty"`
}

// TLSConfig is client TLS towards NATS; files are PEM.
type TLSConfig struct {
	CA         string `json:"ca,omitempty"`
	Cert       string `json:"cert,omitempty"`
	Key        string `json:"key,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// Listen is the client address; default 127.0.0.1:4222, so that
	// publishers on the same machine can reach it and nothing else can.
	Listen string `json:"listen,omitempty"`
	// StoreDir holds JetStream data; default <caddy data dir>/ssegate/nats.
	StoreDir string `json:"store_dir,omitempty"`
	// Users may connect with a password or an nkey, each with its own
	// publish and subscribe permissions. On a loopback listener, clients
	// without credentials are still let in, with the backend role (publish
	// to the stream's subjects only); on any other listener they are not,
	// and users are required.
	Users []EmbeddedUser `json:"users,omitempty"`
	// Anonymous lets clients without credentials in, with the backend
	// role. Default: on for a loopback listener; it cannot be on for any
	// other.
	Anonymous *bool `json:"anonymous,omitempty"`
}

// DefaultListen is the embedded server's client address.
const DefaultListen = "127.0.0.1:4222"

// IsEmbedded reports whether this config runs its own server.
func (c Config) IsEmbedded() bool { return len(c.URLs) == 0 }

// Validate checks the config without touching the network, so that
// `caddy validate` and `caddy adapt` work where NATS is unreachable.
func (c Config) Validate() error {
	if c.IsEmbedded() {
		if c.User != "" || c.Password != "" || c.Token != "" || c.CredsFile != "" || c.NKeyFile != "" || c.TLS != nil {
			return errors.New("credentials and tls apply to external NATS urls; the embedded server needs none (its clients' users go in the embedded block)")
		}
		e := c.embedded()
		if _, _, err := e.hostPort(); err != nil {
			return err
		}
		return e.validateUsers()
	}
	if c.Embedded != nil {
		return errors.New("embedded and urls are exclusive")
	}
	auths := 0
	for _, set := range []bool{c.User != "", c.Token != "", c.CredsFile != "", c.NKeyFile != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		return errors.New("choose one of user/password, token, creds_file and nkey_file")
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("user and password go together")
	}
	if c.TLS != nil && (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls cert and key go together")
	}
	return nil
}

func (c Config) embedded() EmbeddedConfig {
	var e EmbeddedConfig
	if c.Embedded != nil {
		e = *c.Embedded
	}
	if e.Listen == "" {
		e.Listen = DefaultListen
	}
	if e.StoreDir == "" {
		e.StoreDir = filepath.Join(caddy.AppDataDir(), "ssegate", "nats")
	}
	return e
}

func (e EmbeddedConfig) hostPort() (string, int, error) {
	host, portStr, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return "", 0, fmt.Errorf("embedded listen %q: %v", e.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("embedded listen %q: bad port", e.Listen)
	}
	return host, port, nil
}

// key identifies connections that can be shared: two configs with the same
// key get the same pooled connection across reloads. An embedded server's
// users follow the stream's subjects, so those are part of its key.
func (c Config) key(streamSubjects []string) string {
	var b []byte
	if c.IsEmbedded() {
		b, _ = json.Marshal(struct {
			Config
			Subjects []string
		}{c, streamSubjects})
	} else {
		b, _ = json.Marshal(c)
	}
	return "ssegate.nats:" + string(b)
}
