package presence

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/streams"
)

// TestPresenceLoad measures what presence costs NATS: 10,000 connections
// (one user each) on 1,000 channels on two gateways, churning at 100
// connections a second (a close and an open each), over a minute with the
// default TTL. It reports KV writes per second (messages stored in the
// bucket) and NATS messages per second (in and out of the server), with
// the churn and without. It is a load run, not a unit test:
//
//	SSEGATE_PRESENCE_LOAD=60s go test -run TestPresenceLoad -v ./presence
func TestPresenceLoad(t *testing.T) {
	d, _ := time.ParseDuration(os.Getenv("SSEGATE_PRESENCE_LOAD"))
	if d <= 0 {
		t.Skip("a load run: set SSEGATE_PRESENCE_LOAD=<duration>")
	}
	const conns, channels, churn = 10000, 1000, 100
	ns := natstest.Server(t)
	gws := []*Registry{startRegistry(t, ns, Config{}), startRegistry(t, ns, Config{})}
	type conn struct {
		gw    int
		close func()
	}
	open := make([]conn, 0, conns)
	next := 0
	add := func() {
		gw := next % 2
		info := &streams.Info{ID: streams.NewID(), Sub: "user-" + strconv.Itoa(next), Channels: []string{fmt.Sprintf("room.%d", rand.N(channels))}}
		next++
		open = append(open, conn{gw, gws[gw].Opened(info, func() {})})
	}
	for range conns {
		add()
	}
	// Settle: every entry written and every join announced.
	time.Sleep(5 * time.Second)
	measure := func(name string, churning bool) {
		kv0, msgs0 := kvWrites(t, ns), natsMsgs(ns)
		start := time.Now()
		tick := time.NewTicker(time.Second / churn)
		defer tick.Stop()
		for time.Since(start) < d {
			<-tick.C
			if churning {
				i := rand.N(len(open))
				open[i].close()
				open[i] = open[len(open)-1]
				open = open[:len(open)-1]
				add()
			}
		}
		secs := time.Since(start).Seconds()
		kv1, msgs1 := kvWrites(t, ns), natsMsgs(ns)
		t.Logf("%s: %d connections, %d channels, 2 gateways: %.0f KV writes/s, %.0f NATS msgs/s (in+out) over %.0fs",
			name, len(open), channels, float64(kv1-kv0)/secs, float64(msgs1-msgs0)/secs, secs)
	}
	measure("idle", false)
	measure(fmt.Sprintf("churn %d/s", churn), true)
}

// kvWrites is how many messages the presence bucket has stored.
func kvWrites(t *testing.T, ns *server.Server) uint64 {
	_, js := natstest.Connect(t, ns)
	s, err := js.Stream(context.Background(), "KV_"+DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

func natsMsgs(ns *server.Server) int64 {
	v, _ := ns.Varz(nil)
	return v.InMsgs + v.OutMsgs
}
