package ssegate

import (
	"math"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/control"
	"github.com/ssegate/ssegate/presence"
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
//	    publish <path> { ... } (see parsePublish)
//	    health  <path>
//	    console <path>
//	    presence <path> { ... } (see package presence)
//	    presence_channels <pattern...>
//	    presence_events   <pattern...>
//	    control <path> { ... }  (see package control)
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
			err = oneString(d, &h.Subject)
		case "channel_pattern":
			err = oneString(d, &h.ChannelPattern)
		case "max_channels":
			err = positiveInt(d, &h.MaxChannels)
		case "public":
			err = appendArgs(d, &h.Public)
		case "heartbeat":
			err = duration(d, &h.Heartbeat)
		case "retry":
			err = duration(d, &h.Retry)
		case "queue_size":
			err = positiveInt(d, &h.QueueSize)
		case "write_timeout":
			err = duration(d, &h.WriteTimeout)
		case "replay_limit":
			err = positiveInt(d, &h.ReplayLimit)
		case "http1_takeover":
			h.HTTP1Takeover, err = onOff(d)
		case "publish":
			err = h.parsePublish(d)
		case "health":
			err = oneString(d, &h.HealthPath)
		case "console":
			err = oneString(d, &h.ConsolePath)
		case "presence", "presence_channels", "presence_events":
			err = presence.UnmarshalCaddyfile(d, &h.Presence)
		case "control":
			if h.Control != nil {
				return d.Err("control is given more than once")
			}
			h.Control = new(control.Config)
			err = h.Control.UnmarshalCaddyfile(d)
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
		return oneString(d, &h.ChannelPlaceholder)
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
			err = appendArgs(d, &app.NATS.URLs)
		case "user":
			err = oneString(d, &app.NATS.User)
		case "password":
			err = oneString(d, &app.NATS.Password)
		case "token":
			err = oneString(d, &app.NATS.Token)
		case "creds_file":
			err = oneString(d, &app.NATS.CredsFile)
		case "nkey_file":
			err = oneString(d, &app.NATS.NKeyFile)
		case "tls":
			app.NATS.TLS = new(upstream.TLSConfig)
			err = parseTLS(d, app.NATS.TLS)
		case "reconnect_wait":
			err = duration(d, &app.NATS.ReconnectWait)
		case "embedded":
			app.NATS.Embedded = new(upstream.EmbeddedConfig)
			err = parseEmbedded(d, app.NATS.Embedded)
		case "stream":
			err = parseStream(d, app)
		case "manage_stream":
			var on bool
			if on, err = onOff(d); err == nil {
				app.Stream.Unmanaged = !on
			}
		case "start_timeout":
			err = duration(d, &app.StartTimeout)
		case "replay_concurrency":
			err = positiveInt(d, &app.ReplayConcurrency)
		case "replay_pull_bytes":
			var n int64
			if err = positiveSize(d, &n); err == nil && n > math.MaxInt32 {
				err = d.Errf("replay_pull_bytes %d: too large", n)
			}
			app.ReplayPullBytes = int(n)
		case "replay_budget":
			err = positiveSize(d, &app.ReplayBudget)
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
			err = oneString(d, &t.CA)
		case "cert":
			err = oneString(d, &t.Cert)
		case "key":
			err = oneString(d, &t.Key)
		case "server_name":
			err = oneString(d, &t.ServerName)
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
			err = oneString(d, &e.Listen)
		case "store_dir":
			err = oneString(d, &e.StoreDir)
		case "user", "nkey":
			err = parseEmbeddedUser(d, e)
		case "anonymous":
			var on bool
			if on, err = onOff(d); err == nil {
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
			err = oneString(d, &u.Password)
		case "publish":
			err = appendArgs(d, &u.Publish)
		case "subscribe":
			err = appendArgs(d, &u.Subscribe)
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
			err = oneString(d, &s.Name)
		case "subjects":
			s.Subjects = d.RemainingArgs()
			if len(s.Subjects) == 0 {
				err = d.ArgErr()
			}
		case "republish_prefix":
			err = oneString(d, &s.RepublishPrefix)
		case "storage":
			if err = oneString(d, &s.Storage); err == nil && s.Storage != "file" && s.Storage != "memory" {
				err = d.Errf("storage must be file or memory, not %q", s.Storage)
			}
		case "replicas":
			err = positiveInt(d, &s.Replicas)
		case "max_age":
			err = duration(d, &s.MaxAge)
		case "max_msgs_per_subject":
			var n int
			if err = positiveInt(d, &n); err == nil {
				s.MaxMsgsPerSubject = int64(n)
			}
		case "max_bytes":
			err = byteSize(d, &s.MaxBytes)
		default:
			err = d.Errf("unknown stream option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func appendArgs(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

func oneString(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func positiveInt(d *caddyfile.Dispenser, dst *int) error {
	key := d.Val()
	var v string
	if err := oneString(d, &v); err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return d.Errf("%s: want a positive integer, got %q", key, v)
	}
	*dst = n
	return nil
}

// byteSize reads one size such as 64MiB or 1GB.
func byteSize(d *caddyfile.Dispenser, dst *int64) error {
	key := d.Val()
	var v string
	if err := oneString(d, &v); err != nil {
		return err
	}
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return d.Errf("%s %q: %v", key, v, err)
	}
	if n > math.MaxInt64 {
		return d.Errf("%s %q: too large", key, v)
	}
	*dst = int64(n)
	return nil
}

func positiveSize(d *caddyfile.Dispenser, dst *int64) error {
	key := d.Val()
	if err := byteSize(d, dst); err != nil {
		return err
	}
	if *dst <= 0 {
		return d.Errf("%s: want a positive size", key)
	}
	return nil
}

func duration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	key := d.Val()
	var v string
	if err := oneString(d, &v); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return d.Errf("%s: want a positive duration, got %q", key, v)
	}
	*dst = caddy.Duration(dur)
	return nil
}

func onOff(d *caddyfile.Dispenser) (bool, error) {
	key := d.Val()
	var v string
	if err := oneString(d, &v); err != nil {
		return false, err
	}
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, d.Errf("%s: want on or off, got %q", key, v)
}

// Interface guards.
var _ caddyfile.Unmarshaler = (*Handler)(nil)
