package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/child"
	"github.com/ssegate/ssegate/internal/natstest"
)

// A NATS cluster of real nats-server processes, for faults that an
// embedded server cannot show: a SIGKILL takes with it whatever the node
// had in its buffers, and a restarted node comes back on the same ports
// with the same store.

const natsNodeConf = `server_name: %[1]s
listen: 127.0.0.1:%[2]d
http: 127.0.0.1:%[3]d
jetstream { store_dir: %[4]q }
cluster {
	name: ssegate-faults
	listen: 127.0.0.1:%[5]d
	routes: [%[6]s]
}
`

// natsNode is one nats-server process; start runs it again on the same
// ports and store after a kill.
type natsNode struct {
	name, conf string
	port       int
	log        *lockedBuffer

	mu   sync.Mutex
	proc *child.Process // nil until the first start
}

type natsProcCluster struct {
	bin   string
	nodes []*natsNode
}

// startNATSProcCluster runs three nodes, s1 to s3, and waits until
// JetStream can place an R3 stream.
func startNATSProcCluster(t *testing.T) *natsProcCluster {
	t.Helper()
	cl := &natsProcCluster{bin: natsServerBin(t)}
	ports := freePorts(t, 9)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[6+i]))
	}
	dir := t.TempDir()
	for i := range 3 {
		n := &natsNode{name: fmt.Sprintf("s%d", i+1), port: ports[i], log: new(lockedBuffer), conf: filepath.Join(dir, fmt.Sprintf("s%d.conf", i+1))}
		conf := fmt.Sprintf(natsNodeConf, n.name, ports[i], ports[3+i], filepath.Join(dir, n.name), ports[6+i], strings.Join(routes, ", "))
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cl.nodes = append(cl.nodes, n)
		cl.start(t, n)
	}
	t.Cleanup(func() {
		for _, n := range cl.nodes {
			n.stop()
		}
		if t.Failed() {
			for _, n := range cl.nodes {
				t.Logf("nats-server %s log:\n%s", n.name, logTailOf(n.log.String(), 6000))
			}
		}
	})
	cl.waitJetStream(t)
	return cl
}

func (cl *natsProcCluster) start(t *testing.T, n *natsNode) {
	t.Helper()
	cmd := exec.Command(cl.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	proc, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.proc = proc
	n.mu.Unlock()
}

func (n *natsNode) process() *child.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// kill sends SIGKILL and waits until the process is gone: reaped, and its
// pid answers no signal. It returns the pid.
func (n *natsNode) kill(t *testing.T) int {
	t.Helper()
	proc := n.process()
	pid := proc.Cmd.Process.Pid
	if err := proc.KillGone(10 * time.Second); err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	return pid
}

func (n *natsNode) running() bool {
	proc := n.process()
	return proc != nil && proc.Running()
}

func (n *natsNode) stop() {
	if proc := n.process(); proc != nil {
		proc.Stop(10 * time.Second)
	}
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (cl *natsProcCluster) node(name string) *natsNode {
	for _, n := range cl.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (cl *natsProcCluster) clientURLs() []string {
	var urls []string
	for _, n := range cl.nodes {
		urls = append(urls, n.url())
	}
	return urls
}

// connect returns a JetStream client of the cluster that reconnects
// forever, quickly, and connects once a node listens.
func (cl *natsProcCluster) connect(t *testing.T, name string) jetstream.JetStream {
	t.Helper()
	_, js := natstest.ConnectURL(t, strings.Join(cl.clientURLs(), ","), nats.Name(name), natstest.Reconnecting(), nats.RetryOnFailedConnect(true))
	return js
}

// waitJetStream waits until an R3 stream can be placed: a throwaway one
// is created and deleted, so the gateway's own create does not meet a meta
// group that does not know every peer yet.
func (cl *natsProcCluster) waitJetStream(t *testing.T) {
	t.Helper()
	js := cl.connect(t, "e2e-probe")
	var last error
	err := pollUntil(context.Background(), clusterTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, last = js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"}, Replicas: 3})
		if last == nil {
			last = js.DeleteStream(ctx, "PROBE")
		}
		return last == nil
	})
	js.Conn().Close()
	if err != nil {
		t.Fatalf("JetStream cannot place an R3 stream: %v (last error: %v)", err, last)
	}
}
