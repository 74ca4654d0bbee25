package upstream

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// ReplayConn is a second NATS connection, to the same servers with the
// same credentials as a Conn, that carries only replays and their
// JetStream API requests.
//
// Replays pull large amounts of stored data. On the live connection, a
// burst of them made the server cut that connection as a slow consumer,
// and every live client of the gateway with it. On a connection of their
// own, they can at worst lose this one; replays then fail and resume,
// while live events keep flowing.
type ReplayConn struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	key    string
	closed chan struct{}
	drops  atomic.Uint64
}

// Drops is how often, since it was dialled, the connection was cut while
// the live one stayed up, or lost messages, as a slow consumer. nats-server
// cuts a connection with more than its max_pending queued for it without
// a word to the client; a NATS restart cuts both and is not counted.
func (rc *ReplayConn) Drops() uint64 { return rc.drops.Load() }

// ReplayName is the replay connection's name, as the server's monitoring
// shows it.
const ReplayName = "ssegate-replay"

// AcquireReplay returns the pooled replay connection that goes with c,
// dialling it on first use. It is pooled like c, so a config reload keeps
// it. Every AcquireReplay needs one Release, before c's. dropped, when
// set, hears of each drop (see Drops); the dialling config's is kept.
func AcquireReplay(c *Conn, log *zap.Logger, dropped func()) (*ReplayConn, error) {
	key := c.key + "#replay"
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return dialReplay(c.NC, key, log.Named("replay"), dropped)
	})
	if err != nil {
		return nil, err
	}
	return v.(*ReplayConn), nil
}

// dialReplay connects with a copy of the live connection's options, so
// that whatever way that one reaches NATS (URLs, embedded server,
// credentials, TLS) the replay connection reaches it the same way. Only
// the name and the callbacks are its own: the live connection's callbacks
// drive the hubs' recovery, which a replay connection's troubles must not.
// Opts is only written while connecting and by the Set*Handler methods,
// which ssegate does not call, so reading it here does not race.
func dialReplay(live *nats.Conn, key string, log *zap.Logger, dropped func()) (*ReplayConn, error) {
	rc := &ReplayConn{key: key, closed: make(chan struct{})}
	drop := func() {
		rc.drops.Add(1)
		if dropped != nil {
			dropped()
		}
	}
	o := live.Opts
	o.Name = ReplayName
	o.ClosedCB = func(*nats.Conn) { close(rc.closed) }
	// A cut of this connection alone, with the live one up all along, is
	// a slow consumer: nats-server says nothing to the client it cuts.
	// Decided at the reconnect, so that a NATS restart, which cuts both,
	// is not counted.
	var liveAt atomic.Int64 // the live connection's reconnects at the cut; -1: it was down
	o.DisconnectedErrCB = func(nc *nats.Conn, err error) {
		if nc.IsClosed() {
			return // closed by the gateway
		}
		liveAt.Store(-1)
		if live.Status() == nats.CONNECTED {
			liveAt.Store(int64(live.Stats().Reconnects))
		}
		log.Warn("nats replay connection disconnected; replays fail and resume", zap.Error(err))
	}
	o.ReconnectedCB = func(nc *nats.Conn) {
		log.Info("nats replay connection reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		if at := liveAt.Load(); at >= 0 && live.Status() == nats.CONNECTED && int64(live.Stats().Reconnects) == at {
			drop()
			log.Warn("the replay connection was cut while the live connection stayed up: a slow consumer, " +
				"more than nats-server's max_pending queued for it (see replay_budget)")
		}
	}
	o.AsyncErrorCB = func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			drop()
		}
		// A message dropped here shows as a gap in a replay, which reads
		// it again; it is worth a line, not more.
		log.Warn("nats replay connection async error", zap.Error(err))
	}
	o.DisconnectedCB, o.ConnectedCB, o.DiscoveredServersCB, o.ReconnectErrCB, o.LameDuckModeHandler = nil, nil, nil, nil, nil
	nc, err := o.Connect()
	if err != nil {
		return nil, fmt.Errorf("connecting the replay connection to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	rc.NC, rc.JS = nc, js
	return rc, nil
}

// Release gives back a connection from AcquireReplay; the last release
// closes it.
func (rc *ReplayConn) Release() error {
	_, err := pool.Delete(rc.key)
	return err
}

// Destruct implements caddy.Destructor for the pool. Replays hold no
// state worth draining: a cut replay resumes from its client's position.
func (rc *ReplayConn) Destruct() error {
	rc.NC.Close()
	select {
	case <-rc.closed:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("nats replay connection did not close within 5s")
	}
}
