package ssegate

import (
	"math"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/control"
	"github.com/ssegate/ssegate/history"
	"github.com/ssegate/ssegate/internal/caddyargs"
	"github.com/ssegate/ssegate/presence"
	publishing "github.com/ssegate/ssegate/publish"
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
//	    history <path> { ... } (see package history)
//	    poll    <path> { ... } (see package history)
//	    client  <path> (the browser client, client.js)
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
	fields := caddyargs.Fields{
		String: map[string]*string{"subject": &h.Subject, "channel_pattern": &h.ChannelPattern,
			"health": &h.HealthPath, "console": &h.ConsolePath, "client": &h.ClientPath},
		Strings:     map[string]*[]string{"public": &h.Public},
		PositiveInt: map[string]*int{"max_channels": &h.MaxChannels, "queue_size": &h.QueueSize, "replay_limit": &h.ReplayLimit},
		Duration:    map[string]*caddy.Duration{"heartbeat": &h.Heartbeat, "retry": &h.Retry, "write_timeout": &h.WriteTimeout},
		OnOff:       map[string]*bool{"http1_takeover": &h.HTTP1Takeover},
	}
	for d.NextBlock(0) {
		ok, err := fields.Read(d, d.Val())
		if !ok {
			err = h.unmarshalBlock(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalBlock reads the subdirectives that are more than one value.
func (h *Handler) unmarshalBlock(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "channels":
		return h.parseChannels(d)
	case "publish":
		if h.Publish != nil {
			return d.Err("publish is given more than once")
		}
		h.Publish = new(publishing.Config)
		return h.Publish.UnmarshalCaddyfile(d)
	case "presence", "presence_channels", "presence_events":
		return presence.UnmarshalCaddyfile(d, &h.Presence)
	case "control":
		if h.Control != nil {
			return d.Err("control is given more than once")
		}
		h.Control = new(control.Config)
		return h.Control.UnmarshalCaddyfile(d)
	case "auth":
		if h.Auth != nil {
			return d.Err("auth is given more than once")
		}
		h.Auth = new(auth.Config)
		return h.Auth.UnmarshalCaddyfile(d)
	case "history":
		h.History = new(history.Config)
		return h.History.UnmarshalCaddyfile(d)
	case "poll":
		h.Poll = new(history.PollConfig)
		return h.Poll.UnmarshalCaddyfile(d)
	}
	return d.Errf("unknown ssegate subdirective %q", d.Val())
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
//	    url, user, password, token, creds_file, nkey_file,
//	    tls { ... }, reconnect_wait, embedded { ... }
//	                   (see upstream.Config.UnmarshalCaddyfileOption)
//	    stream { ... } (see replay.StreamConfig.UnmarshalCaddyfile)
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
		if ok, err := app.NATS.UnmarshalCaddyfileOption(d); ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := app.unmarshalCaddyfileOption(d); err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "ssegate", Value: caddyconfig.JSON(app, nil)}, nil
}

// unmarshalCaddyfileOption reads one line of the global option that is
// the app's own or its stream's.
func (a *App) unmarshalCaddyfileOption(d *caddyfile.Dispenser) error {
	fields := caddyargs.Fields{
		Duration:    map[string]*caddy.Duration{"start_timeout": &a.StartTimeout},
		PositiveInt: map[string]*int{"replay_concurrency": &a.ReplayConcurrency},
	}
	if ok, err := fields.Read(d, d.Val()); ok {
		return err
	}
	switch d.Val() {
	case "stream":
		return a.Stream.UnmarshalCaddyfile(d)
	case "manage_stream":
		on, err := caddyargs.OnOff(d)
		a.Stream.Unmanaged = !on
		return err
	case "replay_pull_bytes":
		var n int64
		if err := caddyargs.PositiveSize(d, &n); err != nil {
			return err
		}
		if n > math.MaxInt32 {
			return d.Errf("replay_pull_bytes %d: too large", n)
		}
		a.ReplayPullBytes = int(n)
		return nil
	case "replay_budget":
		return caddyargs.PositiveSize(d, &a.ReplayBudget)
	}
	return d.Errf("unknown ssegate option %q", d.Val())
}

// Interface guards.
var _ caddyfile.Unmarshaler = (*Handler)(nil)
