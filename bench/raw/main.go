// Command raw is the baseline that ssegate is measured against: a minimal
// net/http + core NATS event-stream server. It holds one core subscription
// per channel, gives each client a Go channel, and writes and flushes each
// frame as it comes. Nothing else: no auth, no replay, no heartbeats, no
// batching. It serves HTTP/1.1 and h2c on loopback only.
//
//	go run ./bench/raw -listen 127.0.0.1:8081 -nats nats://127.0.0.1:4222
//
// URL and frames have ssegate's shape: GET /events?channel=x streams
// "id: <stream sequence>\ndata: <payload>\n\n". By default it reads the
// subjects the JetStream stream republishes to, as ssegate does, so both
// servers are fed the same messages by the same nats-server.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/nats-io/nats.go"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "event stream address (loopback only)")
	admin := flag.String("admin", "", "pprof address (loopback only; empty: none)")
	natsURL := flag.String("nats", nats.DefaultURL, "NATS server URL")
	prefix := flag.String("prefix", "ssegate.live.events.", "subject prefix a channel name is appended to")
	queue := flag.Int("queue", 256, "frames queued per client before it is cut as slow")
	flag.Parse()
	if err := run(*listen, *admin, *natsURL, *prefix, *queue); err != nil {
		log.Fatal("raw: ", err)
	}
}

func run(listen, admin, natsURL, prefix string, queue int) error {
	for _, a := range []string{listen, admin} {
		if err := loopback(a); err != nil {
			return err
		}
	}
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	h := &hub{nc: nc, prefix: prefix, queue: queue, topics: map[string]*topic{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", h.serve)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {})
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	// 250 streams per connection, as Caddy's HTTP/2 server allows.
	srv := &http.Server{Addr: listen, Handler: mux, Protocols: p, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 250}}
	if admin != "" {
		go servePprof(admin)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() { <-stop; _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func loopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: only loopback addresses are allowed", addr)
	}
	return nil
}

func servePprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	log.Print(http.ListenAndServe(addr, mux))
}

type hub struct {
	nc     *nats.Conn
	prefix string
	queue  int

	mu     sync.Mutex
	topics map[string]*topic
}

type topic struct {
	sub     *nats.Subscription
	clients map[*client]struct{}
}

type client struct {
	frames chan []byte
	slow   chan struct{}
	cut    atomic.Bool
}

func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("channel")
	if ch == "" || len(ch) > 200 {
		http.Error(w, "bad channel", http.StatusBadRequest)
		return
	}
	c := &client{frames: make(chan []byte, h.queue), slow: make(chan struct{})}
	if err := h.attach(ch, c); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer h.detach(ch, c)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	for {
		select {
		case f := <-c.frames:
			if _, err := w.Write(f); err != nil || rc.Flush() != nil {
				return
			}
		case <-c.slow:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (h *hub) attach(ch string, c *client) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[ch]
	if t == nil {
		t = &topic{clients: map[*client]struct{}{}}
		sub, err := h.nc.Subscribe(h.prefix+ch, func(m *nats.Msg) { h.fanOut(ch, m) })
		if err != nil {
			return err
		}
		// A broadcast at full rate must not be dropped by nats.go.
		_ = sub.SetPendingLimits(-1, -1)
		t.sub = sub
		h.topics[ch] = t
	}
	t.clients[c] = struct{}{}
	return nil
}

func (h *hub) detach(ch string, c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[ch]
	delete(t.clients, c)
	if len(t.clients) == 0 {
		_ = t.sub.Unsubscribe()
		delete(h.topics, ch)
	}
}

// fanOut encodes the frame once and offers it to every client without
// blocking; a client whose queue is full is cut. The payload is written
// as one data line: the load tool's payloads hold no line breaks.
func (h *hub) fanOut(ch string, m *nats.Msg) {
	seq := m.Header.Values("Nats-Sequence")
	f := make([]byte, 0, len(m.Data)+40)
	if len(seq) > 0 {
		f = append(f, "id: "...)
		f = append(f, seq[len(seq)-1]...)
		f = append(f, '\n')
	}
	f = append(f, "data: "...)
	f = append(f, m.Data...)
	f = append(f, "\n\n"...)
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[ch]
	if t == nil {
		return
	}
	for c := range t.clients {
		select {
		case c.frames <- f:
		default:
			if c.cut.CompareAndSwap(false, true) {
				close(c.slow)
			}
		}
	}
}
