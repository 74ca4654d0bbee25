package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ssegate/ssegate/internal/natstest"
)

type natsCluster struct {
	servers []*server.Server
	log     *lockedBuffer

	mu   sync.Mutex
	down map[string]bool // servers shut down by the test
}

// startNATSCluster starts three JetStream servers, s1 to s3, routed to each
// other on loopback, and waits until JetStream has a meta leader.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	cl := &natsCluster{log: new(lockedBuffer), down: make(map[string]bool)}
	ports := freePorts(t, 3)
	routes := make([]string, len(ports))
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	for i, p := range ports {
		name := fmt.Sprintf("s%d", i+1)
		ns, err := server.NewServer(&server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "ssegate-e2e",
				Host: "127.0.0.1",
				Port: p,
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatalf("nats-server %s: %v", name, err)
		}
		ns.SetLoggerV2(natsLogger{name: name, w: cl.log}, false, false, false)
		ns.Start()
		cl.servers = append(cl.servers, ns)
	}
	t.Cleanup(func() {
		for _, ns := range cl.servers {
			ns.Shutdown()
		}
		for _, ns := range cl.servers {
			ns.WaitForShutdown()
		}
		if t.Failed() {
			t.Logf("nats-server log:\n%s", logTailOf(cl.log.String(), 12000))
		}
	})
	for _, ns := range cl.servers {
		if !ns.ReadyForConnections(clusterTimeout) {
			t.Fatalf("nats-server %s did not start; log:\n%s", ns.Name(), cl.log.String())
		}
	}
	// JetStream answers account info only once the meta group has a leader
	// that knows the account, and places R3 streams once it knows every peer.
	nc, js := natstest.ConnectURL(t, strings.Join(cl.clientURLs(), ","), nats.Name("e2e-probe"))
	defer nc.Close()
	var last error
	if err := pollUntil(context.Background(), clusterTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, last = js.AccountInfo(ctx)
		return last == nil && natstest.AllPeersOnline(cl.servers)
	}); err != nil {
		t.Fatalf("JetStream meta leader: %v (last error: %v); log:\n%s", err, last, logTailOf(cl.log.String(), 12000))
	}
	return cl
}

func (cl *natsCluster) clientURLs() []string {
	urls := make([]string, len(cl.servers))
	for i, ns := range cl.servers {
		urls[i] = ns.ClientURL()
	}
	return urls
}

// connect returns a JetStream client of the cluster that reconnects
// forever, quickly.
func (cl *natsCluster) connect(t *testing.T, name string) jetstream.JetStream {
	t.Helper()
	_, js := natstest.ConnectURL(t, strings.Join(cl.clientURLs(), ","), nats.Name(name), natstest.Reconnecting())
	return js
}

func (cl *natsCluster) server(name string) *server.Server {
	for _, ns := range cl.servers {
		if ns.Name() == name {
			return ns
		}
	}
	return nil
}

// servingNode finds the node holding a gateway connection subscribed to
// the live subject of room.a: the connection of the gateway that the
// client is reading from.
func (cl *natsCluster) servingNode() string {
	live := "ssegate.live.events.room.a"
	for _, ns := range cl.servers {
		cl.mu.Lock()
		down := cl.down[ns.Name()]
		cl.mu.Unlock()
		if down {
			continue
		}
		cz, err := ns.Connz(&server.ConnzOptions{Subscriptions: true})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.Name == "ssegate" && slices.Contains(c.Subs, live) {
				return ns.Name()
			}
		}
	}
	return ""
}

// killServingNode makes the node the serving gateway is connected to the
// stream leader, then shuts it down. It says what it did. It runs in its
// own goroutine, so it reports instead of logging.
func (cl *natsCluster) killServingNode(ctx context.Context, js jetstream.JetStream, published func() int64, at *atomic.Pointer[time.Time]) string {
	begin := time.Now()
	var notes []string
	var target string
	if err := pollUntil(ctx, 10*time.Second, func() bool {
		target = cl.servingNode()
		return target != ""
	}); err != nil {
		target = "s1"
		notes = append(notes, fmt.Sprintf("no node has the serving gateway's subscription (%v), so s1 was chosen", err))
	} else {
		notes = append(notes, "it held the connection of the gateway serving the client")
	}
	leader := streamLeader(ctx, js)
	if leader != target {
		// A leader stepdown may name the preferred new leader (server 2.11+).
		if err := stepDown(ctx, js, target); err != nil {
			notes = append(notes, fmt.Sprintf("moving the stream leader from %s to it failed: %v", leader, err))
		} else if err := pollUntil(ctx, 10*time.Second, func() bool {
			leader = streamLeader(ctx, js)
			return leader == target
		}); err != nil {
			notes = append(notes, fmt.Sprintf("the stream leader did not move to it: %v", err))
		} else {
			notes = append(notes, "it was made the stream leader first")
		}
	}
	ns := cl.server(target)
	cl.mu.Lock()
	cl.down[target] = true
	cl.mu.Unlock()
	now := time.Now()
	at.Store(&now)
	n := published()
	ns.Shutdown()
	ns.WaitForShutdown()
	return fmt.Sprintf("shut down %s after %d acked events (%v after choosing it), stream leader %q at the time; %s",
		target, n, now.Sub(begin).Round(time.Millisecond), leader, strings.Join(notes, "; "))
}

func streamLeader(ctx context.Context, js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, gatewayStreamName)
	if err != nil || s.CachedInfo().Cluster == nil {
		return ""
	}
	return s.CachedInfo().Cluster.Leader
}

func stepDown(ctx context.Context, js jetstream.JetStream, preferred string) error {
	req, _ := json.Marshal(map[string]any{"placement": map[string]any{"preferred": preferred}})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+gatewayStreamName, req)
	if err != nil {
		return err
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return err
	}
	if !resp.Success {
		if resp.Error != nil {
			return errors.New(resp.Error.Description)
		}
		return fmt.Errorf("stepdown refused: %s", msg.Data)
	}
	return nil
}

// logConsumers lists the stream's consumers, for a failed consumer check.
func (cl *natsCluster) logConsumers(t *testing.T, js jetstream.JetStream) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, gatewayStreamName)
	if err != nil {
		t.Logf("listing consumers: %v", err)
		return
	}
	lister := s.ListConsumers(ctx)
	for info := range lister.Info() {
		cluster := ""
		if info.Cluster != nil {
			cluster = fmt.Sprintf(" leader %s", info.Cluster.Leader)
		}
		t.Logf("leftover consumer %s: created %v, delivered %d, pending %d, filters %v%s",
			info.Name, info.Created.Format(time.RFC3339Nano), info.Delivered.Stream, info.NumPending, info.Config.FilterSubjects, cluster)
	}
	if err := lister.Err(); err != nil {
		t.Logf("listing consumers: %v", err)
	}
}

// natsLogger collects the servers' log lines, prefixed with their names.
type natsLogger struct {
	name string
	w    io.Writer
}

func (l natsLogger) logf(level, format string, v ...any) {
	fmt.Fprintf(l.w, "%s [%s] %s %s\n", time.Now().Format("15:04:05.000"), l.name, level, fmt.Sprintf(format, v...))
}
func (l natsLogger) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  {}
func (l natsLogger) Tracef(format string, v ...any)  {}

func logTailOf(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
