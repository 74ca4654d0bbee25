package presence

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/kvttl"
)

// conn is the worker's hold on NATS and the bucket.
type conn struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	stopWatch context.CancelFunc
}

// sweepEvery is how often the worker looks for expired entries and
// checks the bucket for the health endpoint.
const sweepEvery = time.Second

// run is the worker: all KV writes and announcements happen here, one at
// a time, so a member's join and leave are never reordered.
func (r *Registry) run(ctx context.Context) {
	defer close(r.done)
	c := r.dial(ctx)
	if c == nil {
		return
	}
	defer func() {
		if c.stopWatch != nil {
			c.stopWatch()
		}
	}()
	refresh := time.NewTicker(r.cfg.ttl() / 3)
	defer refresh.Stop()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	// A flush under way when Stop comes runs to its end (each step is
	// bounded by opTimeout): a claim made must have its announcement.
	work := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			r.flush(work, c, time.Time{})
		case <-refresh.C:
			if c.kv == nil {
				r.open(ctx, c)
			}
			// An entry written within the last fifth of the TTL is at
			// most 8/15 of it old at the next refresh, and lasts through
			// one missed refresh.
			r.flush(work, c, time.Now().Add(-r.cfg.ttl()/5))
		case <-sweep.C:
			r.sweep(work, c)
		}
	}
}

// dial waits for NATS, then opens the bucket; while the bucket cannot be
// opened, health says so and the worker tries again at each refresh.
func (r *Registry) dial(ctx context.Context) *conn {
	for {
		nc, js, err := r.connect(ctx)
		if err == nil {
			c := &conn{nc: nc, js: js}
			r.health.Use(js)
			r.open(ctx, c)
			return c
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// open ensures the bucket and starts watching the entries.
func (r *Registry) open(ctx context.Context, c *conn) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	kv, err := kvttl.Ensure(octx, c.js, r.cfg.bucket(), "ssegate presence: entries per gateway and channel, and members")
	cancel()
	if err != nil {
		r.log.Warn("presence: bucket unavailable", zap.String("bucket", r.cfg.bucket()), zap.Error(err))
		return
	}
	wctx, stop := context.WithCancel(ctx)
	w, err := kv.Watch(wctx, entryPrefix+">")
	if err != nil {
		stop()
		return
	}
	c.kv, c.stopWatch = kv, stop
	go r.watch(w)
}

// lose drops the bucket after a failure that says it is gone; the next
// refresh opens it again.
func (r *Registry) lose(c *conn, err error) {
	if kvttl.Missing(err) && c.stopWatch != nil {
		c.stopWatch()
		c.kv, c.stopWatch = nil, nil
	}
}

// flush writes what changed: leaves first (a member's claim, then the
// entry without it), then entries, then joins (the entry with a new
// member, then its claim). A gateway that dies between the two steps
// thus leaves an entry that names more users than its claims, which the
// cleanup of its entries handles, and never a claim that no entry names.
func (r *Registry) flush(ctx context.Context, c *conn, staleBefore time.Time) {
	// The handle of this flush: a write that finds the bucket gone drops
	// c.kv, and the claims after it then fail and are retried.
	kv := c.kv
	if kv == nil {
		return
	}
	b := r.loc.take(r.id, staleBefore)
	r.loc.retry(r.claim(ctx, c, kv, b.leaves, leave, "leave"), false)
	if err := r.write(ctx, c, b.entries); err != nil {
		r.lose(c, err)
	}
	r.loc.retry(r.claim(ctx, c, kv, b.joins, join, "join"), true)
	r.releaseLost(ctx, c)
}

// claim changes each of ms's claims with change, join or leave, and
// announces kind for each whose change was the user's first join or last
// leave. It returns the members whose change failed, to retry.
func (r *Registry) claim(ctx context.Context, c *conn, kv jetstream.KeyValue, ms []member,
	change func(context.Context, jetstream.KeyValue, member, string) (bool, error), kind string) []member {
	var failed []member
	for _, m := range ms {
		announce, err := change(ctx, kv, m, r.id)
		if err != nil {
			failed = append(failed, m)
			continue
		}
		if announce {
			c.announce(ctx, r, kind, m, r.id)
		}
	}
	return failed
}

// write stores entries with the TTL, all in flight at once.
func (r *Registry) write(ctx context.Context, c *conn, es []*entry) error {
	if len(es) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(es))
	for _, e := range es {
		b, _ := json.Marshal(e)
		f, err := c.js.PublishAsync("$KV."+r.cfg.bucket()+"."+entryKey(e.Channel, r.id), b, jetstream.WithMsgTTL(r.cfg.ttl()))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	var first error
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			first = cmpErr(first, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// sweep treats entries not refreshed within the TTL as gone (their
// expiry may not be announced to a watcher that joined late), and drops
// a bucket that was deleted, to open it afresh at the next refresh.
func (r *Registry) sweep(ctx context.Context, c *conn) {
	cutoff := time.Now().Add(-r.cfg.ttl() - sweepEvery)
	if gone := r.view.stale(r.id, cutoff); len(gone) > 0 {
		r.addLost(gone...)
	}
	r.releaseLost(ctx, c)
	if c.kv != nil && r.health.State(r.cfg.bucket()) == kvttl.StateBucketMissing {
		r.lose(c, jetstream.ErrBucketNotFound)
	}
}

func (r *Registry) addLost(s ...*seen) {
	r.lostMu.Lock()
	r.lost = append(r.lost, s...)
	r.lostMu.Unlock()
	r.poke()
}

// releaseLost takes the vanished gateways' names off their users' claims;
// whichever gateway takes off the last name announces the leave, once.
func (r *Registry) releaseLost(ctx context.Context, c *conn) {
	kv := c.kv
	if kv == nil {
		return
	}
	r.lostMu.Lock()
	lost := r.lost
	r.lost = nil
	r.lostMu.Unlock()
	var again []*seen
	for _, s := range lost {
		for sub := range s.e.Users {
			m := member{s.e.Channel, sub}
			last, err := leave(ctx, kv, m, s.e.Gateway)
			if err != nil {
				again = append(again, s)
				break
			}
			if last {
				c.announce(ctx, r, "leave", m, s.e.Gateway)
			}
		}
	}
	if len(again) > 0 {
		r.lostMu.Lock()
		r.lost = append(r.lost, again...)
		r.lostMu.Unlock()
	}
}

// watch keeps the view of every gateway's entries. A vanished entry of
// another gateway is lost; one of this gateway's own that vanished while
// it still has users there means the others released them, so they are
// claimed again.
func (r *Registry) watch(w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for upd := range w.Updates() {
		if upd == nil {
			continue
		}
		ch, gw, ok := parseEntryKey(upd.Key())
		if !ok {
			continue
		}
		if upd.Operation() == jetstream.KeyValuePut {
			var e entry
			if json.Unmarshal(upd.Value(), &e) != nil || e.Channel != ch || e.Gateway != gw {
				continue
			}
			r.view.set(ch, gw, &seen{e: &e, at: upd.Created(), rev: upd.Revision()})
			continue
		}
		s := r.view.remove(ch, gw)
		switch {
		case gw == r.id:
			r.loc.reclaim(ch)
			r.poke()
		case s != nil && len(s.e.Users) > 0:
			r.addLost(s)
		}
	}
}
