package replay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/testkit"
)

// TestReadAcrossFailover: on a 3-node cluster with an R3 stream, a read
// whose consumer's server is shut down, or whose stream leader steps down,
// in the middle goes on from where it was and delivers every event once,
// in order. The reader before continuity checks failed the first case
// with "replay stalled with messages pending: consumer is offline".
// Cost: about 8 s under -race (two clusters of three servers).
func TestReadAcrossFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server clusters")
	}
	const events = 1500
	faults := []struct {
		name  string
		fault func(ctx context.Context, servers []*server.Server, js jetstream.JetStream) error
	}{
		{"consumer's server shut down", shutDownConsumerServer},
		{"stream leader steps down", func(ctx context.Context, _ []*server.Server, js jetstream.JetStream) error {
			_, err := js.Conn().Request("$JS.API.STREAM.LEADER.STEPDOWN.SSEGATE", nil, 5*time.Second)
			return err
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			servers := cluster(t)
			js := clusterClient(t, servers)
			stream, err := Ensure(ctx, js, StreamConfig{Storage: "memory", Replicas: 3})
			if err != nil {
				t.Fatal(err)
			}
			for i := range events {
				if _, err := js.PublishAsync("events.a", fmt.Appendf(nil, "%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatal("publishing did not complete")
			}
			// Small pulls, so that the fault lands between two of them.
			h := NewHistory(js, stream, 1, WithPullBytes(4096))
			var got []uint64
			err = h.Read(ctx, []string{"events.a"}, 0, 0, 0, func(m Msg) error {
				got = append(got, m.Seq)
				if m.Seq == events/2 {
					return f.fault(ctx, servers, js)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("read %d events, then: %v", len(got), err)
			}
			if want := seqs(1, events); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("read %d events, not 1 to %d once each in order: %v", len(got), events, got)
			}
		})
	}
}

// shutDownConsumerServer shuts down the server that holds the read's
// consumer, taking the consumer with it.
func shutDownConsumerServer(ctx context.Context, servers []*server.Server, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, "SSEGATE")
	if err != nil {
		return err
	}
	for name := range s.ConsumerNames(ctx).Name() {
		c, err := s.Consumer(ctx, name)
		if err != nil {
			return err
		}
		host := c.CachedInfo().Cluster.Leader
		for _, ns := range servers {
			if ns.Name() == host {
				ns.Shutdown()
				return nil
			}
		}
		return fmt.Errorf("consumer %s is on %q, not a known server", name, host)
	}
	return errors.New("no consumer")
}

// cluster starts three JetStream servers routed to each other on loopback
// and waits until JetStream has a meta leader.
func cluster(t *testing.T) []*server.Server {
	t.Helper()
	ports := make([]int, 3)
	routes := make([]string, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i])
	}
	var servers []*server.Server
	for i, port := range ports {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("s%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "replay-test", Host: "127.0.0.1", Port: port},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		servers = append(servers, ns)
	}
	for _, ns := range servers {
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-server %s did not start", ns.Name())
		}
	}
	js := clusterClient(t, servers)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := testkit.Poll(ctx, 50*time.Millisecond, func() error {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := js.AccountInfo(actx); err != nil {
			return fmt.Errorf("no meta leader: %w", err)
		}
		if !natstest.AllPeersOnline(servers) {
			return errors.New("not every peer online")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("JetStream cluster not formed: %v", err)
	}
	return servers
}

// clusterClient connects to every server of a cluster, reconnecting fast.
func clusterClient(t *testing.T, servers []*server.Server) jetstream.JetStream {
	t.Helper()
	urls := make([]string, len(servers))
	for i, ns := range servers {
		urls[i] = ns.ClientURL()
	}
	_, js := natstest.ConnectURL(t, strings.Join(urls, ","), natstest.Reconnecting())
	return js
}
