package ssegate

import (
	"math"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/caddyargs"
	publishing "github.com/ssegate/ssegate/publish"
	"github.com/ssegate/ssegate/upstream"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("ssegate", parseHandler)
	// Before respond, so that no route block is needed next to the usual
	// static responses, and after encode, which must wrap the stream.
	httpcaddyfile.RegisterDirectiveOrder("ssegate", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterGlobalOption("ssegate", parseApp)
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	ssegate [<matcher>] {
//	    channels query [<param>] | placeholder <placeholder> | fixed <channel...>
//	    subject         <template with {channel}>
//	    channel_pattern <regexp>
//	    max_channels    <n>
//	    public          <pattern...>
//	    heartbeat       <duration>
//	    retry           <duration>
//	    queue_size      <n>
//	    write_timeout   <duration>
//	    replay_limit    <n>
//	    auth { ... }    (see package auth)
//	    publish <path> { ... } (see package publish)
//	    health  <path>
//	    console <path>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "channels":
			err = h.parseChannels(d)
		case "subject":
			err = caddyargs.String(d, &h.Subject)
		case "channel_pattern":
			err = caddyargs.String(d, &h.ChannelPattern)
		case "max_channels":
			err = caddyargs.PositiveInt(d, &h.MaxChannels)
		case "public":
			err = caddyargs.Strings(d, &h.Public)
		case "heartbeat":
			err = caddyargs.Duration(d, &h.Heartbeat)
		case "retry":
			err = caddyargs.Duration(d, &h.Retry)
		case "queue_size":
			err = caddyargs.PositiveInt(d, &h.QueueSize)
		case "write_timeout":
			err = caddyargs.Duration(d, &h.WriteTimeout)
		case "replay_limit":
			err = caddyargs.PositiveInt(d, &h.ReplayLimit)
		case "http1_takeover":
			h.HTTP1Takeover, err = caddyargs.OnOff(d)
		case "publish":
			if h.Publish != nil {
				return d.Err("publish is given more than once")
			}
			h.Publish = new(publishing.Config)
			err = h.Publish.UnmarshalCaddyfile(d)
		case "health":
			err = caddyargs.String(d, &h.HealthPath)
		case "console":
			err = caddyargs.String(d, &h.ConsolePath)
		case "auth":
			if h.Auth != nil {
				return d.Err("auth is given more than once")
			}
			h.Auth = new(auth.Config)
			err = h.Auth.UnmarshalCaddyfile(d)
		default:
			err = d.Errf("unknown ssegate subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) parseChannels(d *caddyfile.Dispenser) error {
	if h.ChannelParam != "" || h.ChannelPlaceholder != "" || len(h.Channels) > 0 {
		return d.Err("channels is given more than once")
	}
	if !d.NextArg() {
		return d.ArgErr()
	}
	switch mode := d.Val(); mode {
	case "query":
		h.ChannelParam = "channel"
		if d.NextArg() {
			h.ChannelParam = d.Val()
		}
	case "placeholder":
		return caddyargs.String(d, &h.ChannelPlaceholder)
	case "fixed":
		h.Channels = d.RemainingArgs()
		if len(h.Channels) == 0 {
			return d.ArgErr()
		}
		return nil
	default:
		return d.Errf("channels: unknown source %q (want query, placeholder or fixed)", mode)
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parseApp reads the global option:
//
//	ssegate {
//	    url            <nats-url...>
//	    user           <user>
//	    password       <password>
//	    token          <token>
//	    creds_file     <path>
//	    nkey_file      <path>
//	    tls {
//	        ca          <pem file>
//	        cert        <pem file>
//	        key         <pem file>
//	        server_name <name>
//	    }
//	    reconnect_wait <duration>
//	    embedded {
//	        listen    <host:port>
//	        store_dir <path>
//	        anonymous on|off
//	        user <name> {
//	            password  <password or bcrypt hash>
//	            publish   <subject...>
//	            subscribe <subject...>
//	        }
//	        nkey <public user nkey> {
//	            publish   <subject...>
//	            subscribe <subject...>
//	        }
//	    }
//	    stream {
//	        name                 <name>
//	        subjects             <subject...>
//	        republish_prefix     <prefix>
//	        storage              file|memory
//	        replicas             <n>
//	        max_age              <duration>
//	        max_msgs_per_subject <n>
//	        max_bytes            <size>
//	    }
//	    manage_stream  on|off
//	    start_timeout  <duration>
//	    replay_concurrency <n>
//	    replay_pull_bytes  <size>
//	    replay_budget      <size>
//	}
func parseApp(d *caddyfile.Dispenser, existing any) (any, error) {
	d.Next() // option name
	if existing != nil {
		return nil, d.Err("the ssegate global option is given more than once")
	}
	app := new(App)
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "url":
			err = caddyargs.Strings(d, &app.NATS.URLs)
		case "user":
			err = caddyargs.String(d, &app.NATS.User)
		case "password":
			err = caddyargs.String(d, &app.NATS.Password)
		case "token":
			err = caddyargs.String(d, &app.NATS.Token)
		case "creds_file":
			err = caddyargs.String(d, &app.NATS.CredsFile)
		case "nkey_file":
			err = caddyargs.String(d, &app.NATS.NKeyFile)
		case "tls":
			app.NATS.TLS = new(upstream.TLSConfig)
			err = parseTLS(d, app.NATS.TLS)
		case "reconnect_wait":
			err = caddyargs.Duration(d, &app.NATS.ReconnectWait)
		case "embedded":
			app.NATS.Embedded = new(upstream.EmbeddedConfig)
			err = parseEmbedded(d, app.NATS.Embedded)
		case "stream":
			err = parseStream(d, app)
		case "manage_stream":
			var on bool
			if on, err = caddyargs.OnOff(d); err == nil {
				app.Stream.Unmanaged = !on
			}
		case "start_timeout":
			err = caddyargs.Duration(d, &app.StartTimeout)
		case "replay_concurrency":
			err = caddyargs.PositiveInt(d, &app.ReplayConcurrency)
		case "replay_pull_bytes":
			var n int64
			if err = caddyargs.PositiveSize(d, &n); err == nil && n > math.MaxInt32 {
				err = d.Errf("replay_pull_bytes %d: too large", n)
			}
			app.ReplayPullBytes = int(n)
		case "replay_budget":
			err = caddyargs.PositiveSize(d, &app.ReplayBudget)
		default:
			err = d.Errf("unknown ssegate option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "ssegate", Value: caddyconfig.JSON(app, nil)}, nil
}

func parseTLS(d *caddyfile.Dispenser, t *upstream.TLSConfig) error {
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

func parseEmbedded(d *caddyfile.Dispenser, e *upstream.EmbeddedConfig) error {
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
			err = parseEmbeddedUser(d, e)
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

// parseEmbeddedUser reads `user <name> { password ... }` or
// `nkey <U...> [{ ... }]`, each with optional publish and subscribe lists.
func parseEmbeddedUser(d *caddyfile.Dispenser, e *upstream.EmbeddedConfig) error {
	kind := d.Val()
	var u upstream.EmbeddedUser
	id := &u.User
	if kind == "nkey" {
		id = &u.NKey
	}
	if !d.NextArg() {
		return d.ArgErr()
	}
	*id = d.Val()
	if d.NextArg() {
		return d.ArgErr()
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

func parseStream(d *caddyfile.Dispenser, app *App) error {
	s := &app.Stream
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "name":
			err = caddyargs.String(d, &s.Name)
		case "subjects":
			s.Subjects = d.RemainingArgs()
			if len(s.Subjects) == 0 {
				err = d.ArgErr()
			}
		case "republish_prefix":
			err = caddyargs.String(d, &s.RepublishPrefix)
		case "storage":
			if err = caddyargs.String(d, &s.Storage); err == nil && s.Storage != "file" && s.Storage != "memory" {
				err = d.Errf("storage must be file or memory, not %q", s.Storage)
			}
		case "replicas":
			err = caddyargs.PositiveInt(d, &s.Replicas)
		case "max_age":
			err = caddyargs.Duration(d, &s.MaxAge)
		case "max_msgs_per_subject":
			var n int
			if err = caddyargs.PositiveInt(d, &n); err == nil {
				s.MaxMsgsPerSubject = int64(n)
			}
		case "max_bytes":
			err = caddyargs.Size(d, &s.MaxBytes)
		default:
			err = d.Errf("unknown stream option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards.
var _ caddyfile.Unmarshaler = (*Handler)(nil)
