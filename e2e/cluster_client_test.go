package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	gosse "github.com/tmaxmax/go-sse"
)

type receivedEvent struct {
	seq     uint64
	data    string
	gateway string
	session int
}

type sessionLog struct {
	gateway  string
	from     string // Last-Event-ID sent
	events   int
	first    uint64
	last     uint64
	end      string // the gateway's end comment, if it ended the stream
	rewind   string // an id-only frame: where the gateway asked to resume
	err      string
	start    time.Time
	duration time.Duration
}

// clusterClient reads the channels like an EventSource that is moved to
// the other gateway every few events.
type clusterClient struct {
	gws  []*clusterGateway
	http *http.Client
	// target is the stream's last sequence once publishing is over; the
	// client stops when it has reached it.
	target atomic.Uint64

	killedAt atomic.Pointer[time.Time] // when the NATS node was shut down

	// Written by run, read after it returns.
	received []receivedEvent
	sessions []sessionLog
	resets   []string
}

var eventIDRE = regexp.MustCompile(`^([0-9]+)-[a-z2-7]{4}$`)

func (c *clusterClient) run(ctx context.Context, opened chan<- struct{}) error {
	lastID := ""
	lastSeq := uint64(0)
	for i := 0; ; i++ {
		if t := c.target.Load(); t != 0 && lastSeq >= t {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped at %s (seq %d, target %d): %w", lastID, lastSeq, c.target.Load(), ctx.Err())
		}
		gw := c.gws[i%len(c.gws)]
		sl, err := c.session(ctx, i, gw, &lastID, &lastSeq, opened)
		opened = nil
		c.sessions = append(c.sessions, sl)
		if err != nil {
			return err
		}
		if sl.events == 0 && sl.end != "" {
			// The gateway ended the stream at once (say, NATS unavailable):
			// come back after a pause, as an EventSource does.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// session reads one stream from gw, starting after *lastID, until it has
// read sessionEvents events, sessionTime passed (after its first event
// when it has no position yet), the gateway ended it or the target is
// reached.
func (c *clusterClient) session(ctx context.Context, idx int, gw *clusterGateway, lastID *string, lastSeq *uint64, opened chan<- struct{}) (sl sessionLog, _ error) {
	sl = sessionLog{gateway: gw.name, from: *lastID, start: time.Now()}
	defer func() { sl.duration = time.Since(sl.start) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.url+"/events?channel=room.a&channel=room.b", nil)
	if err != nil {
		return sl, err
	}
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Loopback to a running gateway: any failure here is a finding.
		sl.err = err.Error()
		return sl, fmt.Errorf("session %d on %s: %w", idx, gw.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		// An EventSource gives up for good on these.
		return sl, fmt.Errorf("session %d on %s: %s %q: %s", idx, gw.name, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if opened != nil {
		close(opened)
	}
	var raw lockedBuffer
	events := make(chan gosse.Event, 64)
	readErr := make(chan error, 1)
	go func() {
		defer close(events)
		for ev, err := range gosse.Read(io.TeeReader(resp.Body, &raw), &gosse.ReadConfig{MaxEventSize: 1 << 16}) {
			if err != nil {
				readErr <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	var timer <-chan time.Time
	armTimer := func() {
		if timer == nil {
			timer = time.After(sessionTime)
		}
	}
	if *lastID != "" {
		armTimer()
	}
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	defer func() { sl.end = endCommentOf(raw.String()) }()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				select {
				case err := <-readErr:
					if ctx.Err() == nil {
						sl.err = err.Error()
					}
				default:
				}
				return sl, nil // the gateway ended the stream
			}
			if ev.LastEventID != "" {
				*lastID = ev.LastEventID
			}
			switch {
			case ev.Type == "reset":
				c.resets = append(c.resets, fmt.Sprintf("session %d on %s: reset %s to %s", idx, gw.name, ev.Data, ev.LastEventID))
				sl.rewind = "reset to " + ev.LastEventID
				continue
			case ev.Data == "" && ev.Type == "":
				sl.rewind = ev.LastEventID // an id-only frame moves the position
				if m := eventIDRE.FindStringSubmatch(ev.LastEventID); m != nil {
					*lastSeq, _ = strconv.ParseUint(m[1], 10, 64)
				}
				continue
			}
			m := eventIDRE.FindStringSubmatch(ev.LastEventID)
			if m == nil {
				return sl, fmt.Errorf("session %d on %s: event with id %q", idx, gw.name, ev.LastEventID)
			}
			seq, _ := strconv.ParseUint(m[1], 10, 64)
			c.received = append(c.received, receivedEvent{seq: seq, data: ev.Data, gateway: gw.name, session: idx})
			*lastSeq = seq
			if sl.events == 0 {
				sl.first = seq
			}
			sl.last = seq
			sl.events++
			armTimer()
			if sl.events >= sessionEvents {
				return sl, nil
			}
			if t := c.target.Load(); t != 0 && seq >= t {
				return sl, nil
			}
		case <-timer:
			return sl, nil
		case <-poll.C:
			if t := c.target.Load(); t != 0 && *lastSeq >= t {
				return sl, nil
			}
		case <-ctx.Done():
			return sl, nil
		}
	}
}

var endCommentRE = regexp.MustCompile(`(?m)^: end: (.*)$`)

func endCommentOf(raw string) string {
	if m := endCommentRE.FindStringSubmatch(raw); m != nil {
		return m[1]
	}
	return ""
}

func (c *clusterClient) summary() string {
	var b bytes.Buffer
	for i, s := range c.sessions {
		fmt.Fprintf(&b, "  #%-2d %s from %-10q %3d events", i, s.gateway, s.from, s.events)
		if s.events > 0 {
			fmt.Fprintf(&b, " (seq %d-%d)", s.first, s.last)
		}
		fmt.Fprintf(&b, " in %v", s.duration.Round(time.Millisecond))
		if k := c.killedAt.Load(); k != nil && !k.Before(s.start) && k.Before(s.start.Add(s.duration)) {
			b.WriteString("; the NATS node was shut down during it")
		}
		if s.end != "" {
			fmt.Fprintf(&b, "; gateway ended it: %s", s.end)
		}
		if s.rewind != "" {
			fmt.Fprintf(&b, "; resume from %s", s.rewind)
		}
		if s.err != "" {
			fmt.Fprintf(&b, "; error: %s", s.err)
		}
		b.WriteByte('\n')
	}
	for _, r := range c.resets {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	return b.String()
}
