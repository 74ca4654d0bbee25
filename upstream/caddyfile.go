package upstream

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ssegate/ssegate/internal/caddyargs"
)

// UnmarshalCaddyfileOption reads one line of the ssegate global option
// that belongs to the NATS connection, and reports whether it was one:
//
//	url            <nats-url...>
//	user           <user>
//	password       <password>
//	token          <token>
//	creds_file     <path>
//	nkey_file      <path>
//	tls { ... }         (see TLSConfig.UnmarshalCaddyfile)
//	reconnect_wait <duration>
//	embedded { ... }    (see EmbeddedConfig.UnmarshalCaddyfile)
func (c *Config) UnmarshalCaddyfileOption(d *caddyfile.Dispenser) (bool, error) {
	fields := caddyargs.Fields{
		String: map[string]*string{"user": &c.User, "password": &c.Password, "token": &c.Token,
			"creds_file": &c.CredsFile, "nkey_file": &c.NKeyFile},
		Strings:  map[string]*[]string{"url": &c.URLs},
		Duration: map[string]*caddy.Duration{"reconnect_wait": &c.ReconnectWait},
	}
	if ok, err := fields.Read(d, d.Val()); ok {
		return true, err
	}
	switch d.Val() {
	case "tls":
		c.TLS = new(TLSConfig)
		return true, c.TLS.UnmarshalCaddyfile(d)
	case "embedded":
		c.Embedded = new(EmbeddedConfig)
		return true, c.Embedded.UnmarshalCaddyfile(d)
	}
	return false, nil
}

// UnmarshalCaddyfile reads:
//
//	tls {
//	    ca          <pem file>
//	    cert        <pem file>
//	    key         <pem file>
//	    server_name <name>
//	}
func (t *TLSConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	fields := caddyargs.Fields{String: map[string]*string{"ca": &t.CA, "cert": &t.Cert, "key": &t.Key, "server_name": &t.ServerName}}
	return caddyargs.Block(d, func(key string) error {
		if ok, err := fields.Read(d, key); ok {
			return err
		}
		return d.Errf("unknown tls option %q", key)
	})
}

// UnmarshalCaddyfile reads:
//
//	embedded {
//	    listen    <host:port>
//	    store_dir <path>
//	    anonymous on|off
//	    user <name> {
//	        password  <password or bcrypt hash>
//	        publish   <subject...>
//	        subscribe <subject...>
//	    }
//	    nkey <public user nkey> {
//	        publish   <subject...>
//	        subscribe <subject...>
//	    }
//	}
func (e *EmbeddedConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	fields := caddyargs.Fields{String: map[string]*string{"listen": &e.Listen, "store_dir": &e.StoreDir}}
	return caddyargs.Block(d, func(key string) error {
		if ok, err := fields.Read(d, key); ok {
			return err
		}
		switch key {
		case "user", "nkey":
			return e.unmarshalUser(d)
		case "anonymous":
			on, err := caddyargs.OnOff(d)
			e.Anonymous = &on
			return err
		}
		return d.Errf("unknown embedded option %q", key)
	})
}

// unmarshalUser reads `user <name> { password ... }` or
// `nkey <U...> [{ ... }]`, each with optional publish and subscribe lists.
func (e *EmbeddedConfig) unmarshalUser(d *caddyfile.Dispenser) error {
	kind := d.Val()
	var u EmbeddedUser
	id := &u.User
	if kind == "nkey" {
		id = &u.NKey
	}
	if err := caddyargs.String(d, id); err != nil {
		return err
	}
	err := caddyargs.Lines(d, func(key string) error {
		switch key {
		case "password":
			if kind == "nkey" {
				return d.Err("an nkey user takes no password; the client signs with its seed")
			}
			return caddyargs.String(d, &u.Password)
		case "publish":
			return caddyargs.Strings(d, &u.Publish)
		case "subscribe":
			return caddyargs.Strings(d, &u.Subscribe)
		}
		return d.Errf("unknown %s option %q", kind, key)
	})
	e.Users = append(e.Users, u)
	return err
}
