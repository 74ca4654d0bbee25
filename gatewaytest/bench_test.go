package gatewaytest

// Benchmarks of the whole gateway: a JetStream nats-server, Caddy with the
// ssegate handler, and the HTTP clients all run in this process, so every
// figure includes the cost of all three sharing the machine's cores. The
// harness loads Caddy's global config, so one gateway runs at a time; each
// benchmark starts its servers once, before its timer starts. Each
// bench_*_test.go holds one subject (replay and handoff, the reconnect
// storm, fan-out, per-user channels at scale); this file holds what they
// share: publishers, h2c clients, and a reader of their streams.
//
//	go test -run '^$' -bench . -benchtime=1x -count=1 ./gatewaytest/
//
// See BENCHMARKS.md for results and what limits them.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchSettle waits for the server side of every stream to end, so the
// next benchmark starts clean: the clients gauge lives in Caddy's metrics
// registry across config loads, and a handler may still be returning
// after its client has gone.
func benchSettle(b testing.TB, g *gateway) {
	eventually(b, 10*time.Second, "streams ended", func() bool {
		return g.metric(mClients) == 0
	})
}

// benchPublisher publishes to JetStream on its own connection.
type benchPublisher struct {
	b  testing.TB
	js jetstream.JetStream
}

func newBenchPublisher(b testing.TB, natsURL string) *benchPublisher {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*benchPubWindow))
	if err != nil {
		b.Fatal(err)
	}
	return &benchPublisher{b: b, js: js}
}

// benchPubWindow is how many asynchronous publishes may await their ack.
const benchPubWindow = 1000

// publishAsync publishes n messages in windows of benchPubWindow, waiting
// for each window's acks, and returns the highest sequence acknowledged.
func (p *benchPublisher) publishAsync(n int, msg func(i int) (subject string, data []byte)) uint64 {
	var last uint64
	futures := make([]jetstream.PubAckFuture, 0, benchPubWindow)
	for i := 0; i < n; {
		futures = futures[:0]
		for ; i < n && len(futures) < benchPubWindow; i++ {
			subj, data := msg(i)
			f, err := p.js.PublishAsync(subj, data)
			if err != nil {
				p.b.Fatalf("publish %d: %v", i, err)
			}
			futures = append(futures, f)
		}
		select {
		case <-p.js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			p.b.Fatalf("%d publishes not acknowledged within 30s", p.js.PublishAsyncPending())
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				last = max(last, ack.Sequence)
			case err := <-f.Err():
				p.b.Fatalf("publish: %v", err)
			}
		}
	}
	return last
}

// publishPaced publishes n events to subject at rate events/s, each
// carrying its publish time, waiting for every acknowledgement.
func (p *benchPublisher) publishPaced(n, rate int, subject string) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		if i > 0 {
			<-tick.C
		}
		msg := nats.NewMsg(subject)
		msg.Data = strconv.AppendInt(nil, time.Now().UnixNano(), 10)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := p.js.PublishMsg(ctx, msg)
		cancel()
		if err != nil {
			p.b.Fatalf("publish %d: %v", i, err)
		}
	}
}

// benchH2C is an h2c client; dials, when not nil, counts its connections.
func benchH2C(dials *atomic.Int64) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:          p,
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials != nil {
				dials.Add(1)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

// benchH2CPool returns n h2c clients, each with one connection already
// open, for up to benchStreamsPerConn streams each. Go's transport dials a
// connection per request when many requests start at once on a cold
// client (it dialled ~2 per request here), so the connections are opened
// before the load starts. Caddy allows 250 concurrent streams per HTTP/2
// connection; past that a transport dials more.
func benchH2CPool(b testing.TB, base string, n int, dials *atomic.Int64) []*http.Client {
	cs := make([]*http.Client, n)
	for i := range cs {
		cs[i] = benchH2C(dials)
		resp, err := cs[i].Get(base + "/events") // no channel: a quick 400
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			b.Fatalf("warm-up used %s, want HTTP/2", resp.Proto)
		}
		b.Cleanup(cs[i].CloseIdleConnections)
	}
	return cs
}

// benchStreamsPerConn is how many streams the benchmarks put on one h2c
// connection, below Caddy's limit of 250.
const benchStreamsPerConn = 200

// benchOpen opens an event stream; lastID, when set, is sent as the
// Last-Event-ID header the way an EventSource resumes.
func benchOpen(ctx context.Context, c *http.Client, rawURL, lastID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s %q %s", rawURL, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	return resp, nil
}

// benchEvent is one parsed event; its slices are reused for the next one.
type benchEvent struct {
	seq  uint64
	name []byte
	data []byte
}

// benchEndError is the gateway ending a stream with ": end: <reason>" and
// a retry delay, after which an EventSource reconnects.
type benchEndError struct {
	reason string
	retry  time.Duration
}

func (e *benchEndError) Error() string {
	return fmt.Sprintf("the gateway ended the stream (%s, retry %v)", e.reason, e.retry)
}

// benchReadEvents is a small event-stream parser for many concurrent
// streams (the harness's go-sse reader buffers 100,000 events per stream).
// It calls fn for at most max events and stops when fn returns false. A
// reset event is an error, and so is the gateway's "end" comment, reported
// as a *benchEndError once the stream has ended.
func benchReadEvents(r io.Reader, max int, fn func(*benchEvent) bool) error {
	br := bufio.NewReaderSize(r, 32<<10)
	var ev benchEvent
	var end *benchEndError
	hasData := false
	for n := 0; n < max; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if end != nil {
				return end
			}
			return err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			if hasData && end == nil {
				if string(ev.name) == "reset" {
					return fmt.Errorf("reset event: %s", ev.data)
				}
				n++
				if !fn(&ev) {
					return nil
				}
			}
			ev.seq, ev.name, ev.data, hasData = 0, ev.name[:0], ev.data[:0], false
			continue
		}
		if reason, ok := bytes.CutPrefix(line, []byte(": end: ")); ok {
			end = &benchEndError{reason: string(reason)}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.seq = 0
			for _, c := range value {
				if c < '0' || c > '9' {
					break
				}
				ev.seq = ev.seq*10 + uint64(c-'0')
			}
		case "event":
			ev.name = append(ev.name, value...)
		case "data":
			if hasData {
				ev.data = append(ev.data, '\n')
			}
			ev.data = append(ev.data, value...)
			hasData = true
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && end != nil {
				end.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return nil
}

// benchCounter counts the bytes read through it.
type benchCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c *benchCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// benchPct is the p-quantile of sorted durations (nearest rank).
func benchPct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func benchMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// feedOpeners hands the indexes 0..n-1 to the goroutines opening streams,
// waits for them, and fails the benchmark if one of them failed.
func feedOpeners(b *testing.B, next chan<- int, n int, opening *sync.WaitGroup, failed <-chan error) {
	b.Helper()
	for i := range n {
		next <- i
	}
	close(next)
	opening.Wait()
	select {
	case err := <-failed:
		b.Fatal(err)
	default:
	}
}
