// Command sseload opens many EventSource-like streams to one ssegate URL on
// this machine and reports delivered events per second and latencies.
//
//	go run ./bench/sseload -url 'http://127.0.0.1:8080/events?channel=demo' -n 1000 -proto h2c -duration 30s
//
// With -compare it runs the same load against the raw baseline
// (bench/raw) and ssegate, one after the other, each a fresh process with
// a fresh nats-server that it builds and starts itself, publishes the
// events itself, and prints both servers' figures and their ratios:
//
//	go run ./bench/sseload -compare -scenario broadcast -proto h1 -n 5000 -rate 100 -duration 20s
//
// Scenarios: broadcast (every stream on one channel, -rate events/s),
// users (stream i on channel user<i>, -rate events/s round-robin over
// them, or over -channels channels: -n 10 -channels 1000 is a gateway
// whose clients want 1% of the stream), idle (RSS per idle stream only),
// churn (-rate connects/s, each stream held for -hold on a channel of its
// own).
//
// With -modes stream,poll each server runs twice, each time fresh: once
// with the clients on streams, once with each client looping over the
// poll endpoint (GET /events/poll?channel=..&after=<last_id>&wait=25s on a
// kept-alive HTTP/1.1 connection; -poll-wait sets the wait), on the same
// channels:
//
//	go run ./bench/sseload -compare -scenario idle -proto h1 -n 1000 -modes stream,poll -servers ssegate -duration 30s
//	go run ./bench/sseload -compare -scenario users -proto h1 -n 1000 -channels 100 -rate 100 -ts -modes stream,poll -servers ssegate
//
// An idle run also reads the server's CPU over -duration with the
// clients idle: heartbeats for streams, the polls that end at their wait
// and are sent again.
//
// With -ts, each event's data must hold its publish time in Unix
// nanoseconds, alone or as a JSON field "ts", and the report includes
// publish-to-receipt latency percentiles. Publisher and sseload must then
// share a clock: both run on this machine. Only loopback addresses are
// accepted, and every loop is bounded by -duration and -max-events.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sseload:", err)
		os.Exit(1)
	}
}

type options struct {
	url         string
	n           int
	proto       string
	conns       int
	duration    time.Duration
	maxEvents   int
	lastEventID string
	ts          bool
	ramp        int
	compare     bool
	cmp         compareOptions
}

func run(args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("sseload", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "event stream URL, for example http://127.0.0.1:8080/events?channel=demo (loopback only)")
	fs.IntVar(&o.n, "n", 100, "number of streams, 1 to 19000 (h1) or 100000 (h2c)")
	fs.StringVar(&o.proto, "proto", "h2c", "h1 (one TCP connection per stream) or h2c (streams share -conns connections)")
	fs.IntVar(&o.conns, "conns", 0, "h2c connections; default one per 200 streams")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to hold the streams open, at most 1h")
	fs.IntVar(&o.maxEvents, "max-events", 0, "stop a stream after this many events (0: no limit but -duration)")
	fs.StringVar(&o.lastEventID, "last-event-id", "", "Last-Event-ID sent on connect, to measure replay")
	fs.BoolVar(&o.ts, "ts", false, "event data carries its publish time in Unix ns (bare or JSON field \"ts\"): report latency")
	fs.IntVar(&o.ramp, "ramp", 16, "how many streams are opened concurrently")
	fs.BoolVar(&o.compare, "compare", false, "run raw and ssegate in turn, each fresh, and compare (ignores -url)")
	fs.StringVar(&o.cmp.servers, "servers", "raw,ssegate", "-compare: servers to run, in order; ssegate=<dir> runs <dir>/caddy, for before and after figures in one run; floor=<dir> runs a caddy built from bench/caddyfloor (idle only), for what Caddy itself costs per stream")
	fs.StringVar(&o.cmp.modes, "modes", "stream", "-compare: how clients read, run in turn on each server, each fresh: stream, poll (a loop of GET /events/poll?channel=..&after=<last_id>&wait=25s over HTTP/1.1), or stream,poll")
	fs.DurationVar(&o.cmp.pollWait, "poll-wait", 25*time.Second, "-modes poll: the wait each poll asks for (the gateway caps it at its max_wait, 60 s by default)")
	fs.StringVar(&o.cmp.scenario, "scenario", "broadcast", "-compare: broadcast, users, idle or churn")
	fs.Float64Var(&o.cmp.rate, "rate", 100, "-compare: events/s published (broadcast, users) or connects/s (churn)")
	fs.IntVar(&o.cmp.channels, "channels", 0, "-compare users: channels published round-robin (default -n); stream i is on channel user<i mod channels>, so -n 10 -channels 1000 is a gateway whose clients want 1% of the stream")
	fs.DurationVar(&o.cmp.hold, "hold", time.Second, "-compare churn: how long each stream stays open")
	fs.DurationVar(&o.cmp.settle, "settle", 3*time.Second, "-compare: wait after opening the streams before reading RSS and publishing")
	fs.DurationVar(&o.cmp.drain, "drain", 15*time.Second, "-compare: longest wait for queued events after publishing stops")
	fs.StringVar(&o.cmp.repo, "repo", ".", "-compare: repository root to build cmd/caddy and bench/raw from")
	fs.StringVar(&o.cmp.workdir, "workdir", "", "-compare: directory for binaries, logs and stores (default: a new temporary one)")
	fs.StringVar(&o.cmp.bindir, "bindir", "", "-compare: directory for the built binaries (default: <workdir>/bin)")
	fs.BoolVar(&o.cmp.noBuild, "no-build", false, "-compare: reuse binaries already in -bindir")
	fs.StringVar(&o.cmp.cpuProfile, "cpuprofile", "", "-compare: save each server's heap profile with the streams idle (<prefix>-<server>-idle.heap) and CPU profile over the middle half of the window (<prefix>-<server>.pprof), or with -scenario idle over the idle -duration (<prefix>-<server>-idle.pprof)")
	fs.StringVar(&o.cmp.handlerExtra, "ssegate-handler", "", "-compare: Caddyfile lines added to ssegate's handler block, e.g. 'queue_size 64'")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.compare {
		o.url = "http://127.0.0.1/"
	}
	if err := o.check(); err != nil {
		return err
	}
	if o.compare {
		if err := o.cmp.check(&o); err != nil {
			return err
		}
		return runCompare(o, out)
	}
	return load(o, out)
}

func (o *options) check() error {
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("-url %q: want an http:// URL (h1 or h2c; no TLS)", o.url)
	}
	host := u.Hostname()
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("-url host %q: %v", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-url host %q resolves to %v: only loopback targets are allowed", host, ip)
		}
	}
	if o.proto != "h1" && o.proto != "h2c" {
		return errors.New("-proto must be h1 or h2c")
	}
	// Over HTTP/1.1 every stream is a file on both ends, and a process may
	// open at most 20,000 here; h2c streams share connections.
	if o.n < 1 || (o.proto == "h1" && o.n > 19000) || o.n > 100000 {
		return errors.New("-n must be between 1 and 19000 (h1) or 100000 (h2c)")
	}
	if o.conns == 0 {
		o.conns = (o.n + 199) / 200
	}
	if o.conns < 1 || o.conns > o.n {
		return errors.New("-conns must be between 1 and -n")
	}
	if o.duration <= 0 || o.duration > time.Hour {
		return errors.New("-duration must be positive and at most 1h")
	}
	if o.maxEvents < 0 {
		return errors.New("-max-events cannot be negative")
	}
	if o.ramp < 1 || o.ramp > 1000 {
		return errors.New("-ramp must be between 1 and 1000")
	}
	return nil
}

// result is one stream's record.
type result struct {
	firstEvent time.Duration // from request start; 0 if none arrived
	events     int
	lat        []time.Duration
	err        error
	outOfOrder int
}

func load(o options, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	clients := make([]*http.Client, o.conns)
	for i := range clients {
		clients[i] = newClient(o.proto)
		if o.proto == "h2c" {
			// Open the connection before the streams: a cold transport
			// dials about one connection per concurrent request.
			if err := warm(ctx, clients[i], o.url); err != nil {
				return err
			}
		}
	}
	results := make([]result, o.n)
	var delivered atomic.Int64
	var opened atomic.Int64
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.ramp, o.n) {
		wg.Go(func() {
			for i := range next {
				opened.Add(1)
				stream(ctx, clients[i%len(clients)], o, &results[i], &delivered)
			}
		})
	}
	go func() {
		defer close(next)
		for i := range o.n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Streams are read by goroutines started in stream; wait for them all.
	wg.Wait()
	streamsDone.Wait()
	elapsed := time.Since(start)
	report(out, o, results, delivered.Load(), opened.Load(), elapsed)
	return nil
}

var streamsDone sync.WaitGroup

// stream opens one stream and reads it in the background until the
// deadline, -max-events, or the server ends it.
func stream(ctx context.Context, c *http.Client, o options, r *result, delivered *atomic.Int64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		r.err = err
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	if o.lastEventID != "" {
		req.Header.Set("Last-Event-ID", o.lastEventID)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		r.err = err
		return
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		r.err = fmt.Errorf("%s %s", resp.Status, bytes.TrimSpace(body))
		return
	}
	streamsDone.Go(func() {
		defer resp.Body.Close()
		maxEvents := o.maxEvents
		if maxEvents == 0 {
			maxEvents = math.MaxInt
		}
		var prev uint64
		r.err = readEvents(resp.Body, maxEvents, func(id, data []byte) {
			now := time.Now()
			if r.events == 0 {
				r.firstEvent = now.Sub(t0)
			}
			r.events++
			delivered.Add(1)
			if seq := leadingUint(id); seq != 0 {
				if prev != 0 && seq <= prev {
					r.outOfOrder++
				}
				prev = seq
			}
			if o.ts {
				if ts, ok := timestamp(data); ok {
					r.lat = append(r.lat, now.Sub(time.Unix(0, ts)))
				}
			}
		})
		if errors.Is(r.err, context.DeadlineExceeded) || errors.Is(r.err, context.Canceled) || ctx.Err() != nil {
			r.err = nil
		}
	})
}

// readEvents parses an event stream and calls fn for each event, up to max.
// Its buffer is small, so that tens of thousands of idle streams stay
// cheap for the load tool; longer lines are put together in long.
func readEvents(body io.Reader, max int, fn func(id, data []byte)) error {
	br := bufio.NewReaderSize(body, 4<<10)
	var id, data, long []byte
	hasData := false
	for n := 0; n < max; {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the server ended the stream")
			}
			return err
		}
		if len(long) > 0 {
			long = append(long, line...)
			line, long = long, long[:0]
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			if hasData {
				fn(id, data)
				n++
			}
			data, hasData = data[:0], false
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			id = append(id[:0], value...)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
	return nil
}

func leadingUint(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

func timestamp(data []byte) (int64, bool) {
	if ts, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64); err == nil {
		return ts, true
	}
	var v struct {
		TS int64 `json:"ts"`
	}
	if json.Unmarshal(data, &v) == nil && v.TS != 0 {
		return v.TS, true
	}
	return 0, false
}

func newClient(proto string) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	if proto == "h2c" {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = p
	}
	return &http.Client{Transport: tr}
}

func warm(ctx context.Context, c *http.Client, rawURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		return fmt.Errorf("server answered h2c with %s", resp.Proto)
	}
	return nil
}
