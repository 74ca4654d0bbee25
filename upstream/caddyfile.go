package upstream

import (
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
	var err error
	switch d.Val() {
	case "url":
		err = caddyargs.Strings(d, &c.URLs)
	case "user":
		err = caddyargs.String(d, &c.User)
	case "password":
		err = caddyargs.String(d, &c.Password)
	case "token":
		err = caddyargs.String(d, &c.Token)
	case "creds_file":
		err = caddyargs.String(d, &c.CredsFile)
	case "nkey_file":
		err = caddyargs.String(d, &c.NKeyFile)
	case "tls":
		c.TLS = new(TLSConfig)
		err = c.TLS.UnmarshalCaddyfile(d)
	case "reconnect_wait":
		err = caddyargs.Duration(d, &c.ReconnectWait)
	case "embedded":
		c.Embedded = new(EmbeddedConfig)
		err = c.Embedded.UnmarshalCaddyfile(d)
	default:
		return false, nil
	}
	return true, err
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
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "ca":
			err = caddyargs.String(d, &t.CA)
		case "cert":
			err = caddyargs.String(d, &t.Cert)
		case "key":
			err = caddyargs.String(d, &t.Key)
		case "server_name":
			err = caddyargs.String(d, &t.ServerName)
		default:
			err = d.Errf("unknown tls option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
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
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "listen":
			err = caddyargs.String(d, &e.Listen)
		case "store_dir":
			err = caddyargs.String(d, &e.StoreDir)
		case "user", "nkey":
			err = e.unmarshalUser(d)
		case "anonymous":
			var on bool
			if on, err = caddyargs.OnOff(d); err == nil {
				e.Anonymous = &on
			}
		default:
			err = d.Errf("unknown embedded option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
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
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "password":
			if kind == "nkey" {
				return d.Err("an nkey user takes no password; the client signs with its seed")
			}
			err = caddyargs.String(d, &u.Password)
		case "publish":
			err = caddyargs.Strings(d, &u.Publish)
		case "subscribe":
			err = caddyargs.Strings(d, &u.Subscribe)
		default:
			err = d.Errf("unknown %s option %q", kind, d.Val())
		}
		if err != nil {
			return err
		}
	}
	e.Users = append(e.Users, u)
	return nil
}
