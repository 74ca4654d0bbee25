package faulttest

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client reads Channels like a browser's EventSource: when a stream ends
// or fails, it reconnects after the server's retry delay (capped by
// MaxRetry) and sends the last event id it saw, including one from an id
// line that carried no data. Any status but 200 or a content type other
// than text/event-stream makes it give up for good, as a browser does.
type Client struct {
	Name     string
	Channels []string
	// Base gives the gateway's base URL ("http://host:port") for the n-th
	// connection attempt, counting from 0.
	Base func(n int) string
	HTTP *http.Client
	// LastID, when set, is sent on the first connection.
	LastID string
	// MaxRetry caps the server's retry hint; 10s when zero. A browser
	// honours the hint as it is.
	MaxRetry time.Duration
	// SessionEvents, when set, makes the client close each stream itself
	// after that many events, then reconnect (to the next Base).
	SessionEvents int
	// SessionTime, when set, makes the client close each stream itself
	// that long after the stream's first event, and open the next one (to
	// the next Base) at once, as a page that moves its EventSource between
	// gateways does. A stream that brings no event is closed after
	// SessionIdle (2 s when zero). Counted from the first event, not from
	// the opening, the hop lets a replay that takes longer than SessionTime
	// deliver its first events: otherwise every stream of a client whose
	// replays are slower than that would be cut before its first event,
	// and the client would never move on.
	SessionTime time.Duration
	SessionIdle time.Duration
	// StallAfter and StallFor make the client stop reading for StallFor
	// once, after StallAfter events of its first stream: a slow client.
	StallAfter int
	StallFor   time.Duration

	mu       sync.Mutex
	lastID   string
	got      []Received
	newest   map[string]uint64 // by channel, the newest sequence received
	attempts int
	streams  int            // connections answered 200
	ends     map[string]int // by the reason in the gateway's end comment
	netErrs  int
	resets   []string
	fatal    error
	opened   chan struct{}
	stalled  bool
	bases    []string // by stream, from 1: the gateway each one was on
	startID  string   // the first id a client without a position was told, without data
}

// Received is one event as a client got it.
type Received struct {
	Event
	At      time.Time
	Stream  int    // which connection carried it, from 1
	Gateway string // that connection's base URL
}

// Run reads until ctx is done or the client gives up. It returns the
// reason it gave up, or nil.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	c.lastID = c.LastID
	c.ends = make(map[string]int)
	c.mu.Unlock()
	retry := time.Second
	for n := 0; ctx.Err() == nil; n++ {
		hint, hopped, err := c.stream(ctx, n)
		if hopped {
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.fatal = err
			c.mu.Unlock()
			return err
		}
		if hint > 0 {
			retry = hint
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(retry, cmp.Or(c.MaxRetry, 10*time.Second))):
		}
	}
	return nil
}

// Opened is closed once the client's first stream answered 200.
func (c *Client) Opened() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opened == nil {
		c.opened = make(chan struct{})
	}
	return c.opened
}

// stream runs one connection. It returns an error only for what makes an
// EventSource give up, the retry hint the server sent, if any, and
// whether the client ended the stream itself to hop to the next gateway.
func (c *Client) stream(ctx context.Context, n int) (time.Duration, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := c.Base(n)
	q := url.Values{"channel": c.Channels}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?"+q.Encode(), nil)
	if err != nil {
		return 0, false, err
	}
	c.mu.Lock()
	c.attempts++
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	c.mu.Unlock()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.mu.Lock()
		c.netErrs++
		c.mu.Unlock()
		return 0, false, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, false, fmt.Errorf("%s: %s %q: %s", c.Name, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	c.mu.Lock()
	c.streams++
	stream := c.streams
	c.bases = append(c.bases, base)
	if c.opened == nil {
		c.opened = make(chan struct{})
	}
	select {
	case <-c.opened:
	default:
		close(c.opened)
	}
	c.mu.Unlock()
	var hopped atomic.Bool
	onEvent, stop := c.hopTimer(func() { hopped.Store(true); cancel() })
	defer stop()
	retry, broken, err := c.read(resp.Body, stream, onEvent)
	if broken && !hopped.Load() {
		c.mu.Lock()
		c.netErrs++
		c.mu.Unlock()
	}
	return retry, hopped.Load() && err == nil, err
}

// hopTimer arms the end of a stream by SessionTime: hop runs that long
// after the first event (onEvent says when one came), or after SessionIdle
// if none comes. stop disarms it.
func (c *Client) hopTimer(hop func()) (onEvent, stop func()) {
	if c.SessionTime == 0 {
		return func() {}, func() {}
	}
	idle := time.AfterFunc(cmp.Or(c.SessionIdle, 2*time.Second), hop)
	var session *time.Timer
	onEvent = func() {
		if session == nil && idle.Stop() {
			session = time.AfterFunc(c.SessionTime, hop)
		}
	}
	stop = func() {
		idle.Stop()
		if session != nil {
			session.Stop()
		}
	}
	return onEvent, stop
}

// read parses one stream by the WHATWG rules, up to its end, calling
// onEvent after each event. It returns the retry hint, and whether the
// stream broke rather than ended.
func (c *Client) read(body io.Reader, stream int, onEvent func()) (time.Duration, bool, error) {
	var retry time.Duration
	var data, typ []string
	var idBuf string
	hasID := false
	events := 0
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasID {
				c.setLastID(idBuf, events == 0 && len(data) == 0)
			}
			if len(data) > 0 {
				if err := c.dispatch(strings.Join(typ, ""), strings.Join(data, "\n"), idBuf, stream); err != nil {
					return retry, false, err
				}
				events++
				onEvent()
				if c.SessionEvents > 0 && events >= c.SessionEvents {
					return retry, false, nil
				}
				c.maybeStall(events, stream)
			}
			data, typ = data[:0], typ[:0]
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			if reason, ok := strings.CutPrefix(value, "end: "); ok {
				c.mu.Lock()
				c.ends[reason]++
				c.mu.Unlock()
			}
		case "id":
			if !strings.ContainsRune(value, 0) {
				idBuf, hasID = value, true
			}
		case "data":
			data = append(data, value)
		case "event":
			typ = []string{value}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return retry, sc.Err() != nil, nil
}

// setLastID moves the position a reconnect sends. An id without data,
// before any event, told to a client that has no position yet is where it
// starts: every event after it is owed to the client. That is usually its
// first stream's first bytes, but a stream refused while NATS was away
// says no position, and the client then starts where its next stream says.
func (c *Client) setLastID(id string, start bool) {
	c.mu.Lock()
	if start && c.LastID == "" && c.lastID == "" {
		c.startID = id
	}
	c.lastID = id
	c.mu.Unlock()
}

// StartSeq is the position the gateway said a client without a position
// starts at, as an id without data before any event; false if it said
// none.
func (c *Client) StartSeq() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, err := strconv.ParseUint(strings.SplitN(c.startID, "-", 2)[0], 10, 64)
	return seq, c.startID != "" && err == nil
}

func (c *Client) maybeStall(events, stream int) {
	if c.StallFor == 0 || stream != 1 || events != c.StallAfter {
		return
	}
	c.mu.Lock()
	c.stalled = true
	c.mu.Unlock()
	time.Sleep(c.StallFor)
}

// dispatch records one event. Events carry "channel|n" as data and
// "seq-epoch" (or "seq") as id.
func (c *Client) dispatch(typ, data, id string, stream int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if typ == "reset" {
		c.resets = append(c.resets, fmt.Sprintf("stream %d: reset %s to %s", stream, data, id))
		return nil
	}
	seqText, _, _ := strings.Cut(id, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	ch, _, ok := strings.Cut(data, "|")
	if err != nil || !ok {
		return fmt.Errorf("%s: event %q with id %q", c.Name, data, id)
	}
	var gw string
	if stream >= 1 && stream <= len(c.bases) {
		gw = c.bases[stream-1]
	}
	c.got = append(c.got, Received{Event: Event{Seq: seq, Channel: ch}, At: time.Now(), Stream: stream, Gateway: gw})
	if c.newest == nil {
		c.newest = make(map[string]uint64, len(c.Channels))
	}
	c.newest[ch] = max(c.newest[ch], seq)
	return nil
}

// Newest is the newest sequence received on channel, 0 if none.
func (c *Client) Newest(channel string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newest[channel]
}

// Received returns what the client got, in arrival order.
func (c *Client) Received() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.got...)
}

// Stats is what happened to a client's connections.
type Stats struct {
	Attempts, Streams, NetErrors int
	Ends                         map[string]int
	Resets                       []string
	Stalled                      bool
	Fatal                        error
}

// Stats returns a snapshot of the client's connection history.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	ends := make(map[string]int, len(c.ends))
	for k, v := range c.ends {
		ends[k] = v
	}
	return Stats{Attempts: c.attempts, Streams: c.streams, NetErrors: c.netErrs, Ends: ends,
		Resets: append([]string(nil), c.resets...), Stalled: c.stalled, Fatal: c.fatal}
}
