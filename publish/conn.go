package publish

import (
	"errors"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/upstream"
)

// publishName is the publish connection's name, as the server's
// monitoring shows it.
const publishName = "ssegate-publish"

// errNotConnected refuses a publish while NATS is away.
var errNotConnected = errors.New("not connected to NATS")

// Conn is the connection the publish endpoint stores events over.
// nats.go keeps what is published while it reconnects and sends it after,
// so a publish answered 503 during an outage would be stored later, and
// its retry stored again. This connection keeps nothing
// (ReconnectBufSize -1: a publish while reconnecting fails at once), and
// a publish is refused while it is not connected.
type Conn struct {
	mu   sync.Mutex
	from *upstream.Conn
	nc   *nats.Conn
	js   jetstream.JetStream
}

// Get returns the connection, dialled on first use the way conn was.
func (p *Conn) Get(conn *upstream.Conn) (*nats.Conn, jetstream.JetStream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nc == nil || p.from != conn || p.nc.IsClosed() {
		if p.nc != nil {
			p.nc.Close()
			p.nc = nil
		}
		nc, err := conn.Dial(publishName, nats.ReconnectBufSize(-1))
		if err != nil {
			return nil, nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		p.from, p.nc, p.js = conn, nc, js
	}
	if p.nc.Status() != nats.CONNECTED {
		return nil, nil, errNotConnected
	}
	return p.nc, p.js, nil
}

// Close closes the connection; a later Get dials again.
func (p *Conn) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nc != nil {
		p.nc.Close()
		p.nc = nil
	}
}
