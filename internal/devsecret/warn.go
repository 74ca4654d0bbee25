package devsecret

import (
	"net/netip"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Warn logs a warning when a handler verifies tokens with the
// development secret of Caddyfile.example while its server listens where
// other hosts can connect: anyone who has read the README can then mint a
// token for any channel. On loopback it is the quick start, and stays quiet.
// secrets are the handler's HMAC secrets, placeholders and all.
func Warn(ctx caddy.Context, secrets []string, log *zap.Logger) {
	if !usesDevSecret(secrets) {
		return
	}
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok {
		return
	}
	if exposed := reachableListeners(srv.Listen); len(exposed) > 0 {
		log.Warn("the development JWT secret is in use on a listener other hosts can reach: "+
			"anyone can mint a token for any channel; set SSEGATE_JWT_SECRET to a secret of 32 bytes or more",
			zap.Strings("listen", exposed))
	}
}

// usesDevSecret resolves placeholders the way the auth gate does, so that
// {env.SSEGATE_JWT_SECRET} set to the development secret counts too.
func usesDevSecret(secrets []string) bool {
	repl := caddy.NewReplacer()
	for _, k := range secrets {
		if repl.ReplaceKnown(k, "") == Secret {
			return true
		}
	}
	return false
}

// reachableListeners returns the listen addresses that are not loopback
// or a local socket. An address that does not parse counts as reachable:
// the warning errs on the side of being shown.
func reachableListeners(listen []string) []string {
	repl := caddy.NewReplacer()
	var out []string
	for _, l := range listen {
		na, err := caddy.ParseNetworkAddress(repl.ReplaceKnown(l, ""))
		if err == nil && (na.IsUnixNetwork() || na.IsFdNetwork() || isLoopbackHost(na.Host)) {
			continue
		}
		out = append(out, l)
	}
	return out
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
