package faulttest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Window is where a client starts. No event at or below After may reach
// it; every acked event above Sure must. A client that resumes from a
// position has After == Sure; one that connects without a position starts
// at its channels' newest events when it subscribed, which lies between
// the last acked sequence before it asked and the last one once its
// stream was open.
type Window struct{ After, Sure uint64 }

// Ledger indexes the acked events by channel.
type Ledger struct {
	byChannel map[string][]uint64
	channelOf map[uint64]string
}

// NewLedger indexes acked.
func NewLedger(acked []Event) *Ledger {
	l := &Ledger{byChannel: make(map[string][]uint64), channelOf: make(map[uint64]string, len(acked))}
	for _, ev := range acked {
		l.byChannel[ev.Channel] = append(l.byChannel[ev.Channel], ev.Seq)
		l.channelOf[ev.Seq] = ev.Channel
	}
	for _, seqs := range l.byChannel {
		slices.Sort(seqs)
	}
	return l
}

// Result is one client's check.
type Result struct {
	Want, Got, Missing int
	Problems           []string
}

// Check compares what the client got with what was acked: every acked
// event of its channels past its window arrives exactly once, and all it
// got is in increasing sequence order, on its channels, past Window.After.
func (l *Ledger) Check(c *Client, w Window) Result {
	got := c.Received()
	var r Result
	r.Got = len(got)
	problem := func(format string, args ...any) {
		if len(r.Problems) < 10 {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	seen := make(map[uint64]bool, len(got))
	var prev uint64
	for i, ev := range got {
		switch {
		case i > 0 && ev.Seq == prev:
			problem("duplicate: seq %d (stream %d)", ev.Seq, ev.Stream)
		case i > 0 && ev.Seq < prev:
			problem("out of order: seq %d (stream %d) after %d", ev.Seq, ev.Stream, prev)
		case seen[ev.Seq]:
			problem("duplicate: seq %d (stream %d), not adjacent", ev.Seq, ev.Stream)
		}
		seen[ev.Seq] = true
		prev = max(prev, ev.Seq)
		if ev.Seq <= w.After {
			problem("seq %d on %s is at or before the client's start %d", ev.Seq, ev.Channel, w.After)
		}
		if !slices.Contains(c.Channels, ev.Channel) {
			problem("seq %d is on %s, not one of the client's channels", ev.Seq, ev.Channel)
		}
		if ch, ok := l.channelOf[ev.Seq]; ok && ch != ev.Channel {
			problem("seq %d arrived as %s but was published on %s", ev.Seq, ev.Channel, ch)
		}
	}
	var missing []uint64
	for _, ch := range c.Channels {
		seqs := l.byChannel[ch]
		for _, seq := range seqs[sort.Search(len(seqs), func(i int) bool { return seqs[i] > w.Sure }):] {
			r.Want++
			if !seen[seq] {
				missing = append(missing, seq)
			}
		}
	}
	r.Missing = len(missing)
	if len(missing) > 0 {
		slices.Sort(missing)
		problem("missing %d of %d acked events: %s", len(missing), r.Want, ranges(missing, 12))
		for _, hole := range l.holes(got, missing, 4) {
			problem("%s", hole)
		}
	}
	return r
}

// holes says, for the first n holes in what the client got, which
// events it lost and what it got on either side, on which stream and
// gateway: a hole inside one stream is the live path's, one across
// streams the resume's.
func (l *Ledger) holes(got []Received, missing []uint64, n int) []string {
	var out []string
	for i := 0; i < len(missing) && len(out) < n; {
		at := sort.Search(len(got), func(k int) bool { return got[k].Seq > missing[i] })
		j := i
		for j+1 < len(missing) && (at == len(got) || missing[j+1] < got[at].Seq) {
			j++
		}
		say := func(ev Received) string {
			return fmt.Sprintf("%d on %s (stream %d, %s)", ev.Seq, ev.Channel, ev.Stream, ev.Gateway)
		}
		before, after := "its start", "nothing"
		if at > 0 {
			before = say(got[at-1])
		}
		if at < len(got) {
			after = say(got[at])
		}
		var lost []string
		for _, seq := range missing[i : j+1] {
			if len(lost) == 8 {
				lost = append(lost, "…")
				break
			}
			lost = append(lost, fmt.Sprintf("%d %s", seq, l.channelOf[seq]))
		}
		out = append(out, fmt.Sprintf("lost %d (%s): after %s came %s", j-i+1, strings.Join(lost, ", "), before, after))
		i = j + 1
	}
	return out
}

// window is where c starts: a client without a position that the gateway
// told its start position starts exactly there.
func window(c Watched) Window {
	if c.LastID == "" {
		if seq, ok := c.StartSeq(); ok {
			return Window{After: seq, Sure: seq}
		}
	}
	return c.Window
}

// Watched is a client with its start window.
type Watched struct {
	*Client
	Window
}

// WaitDelivered waits until every client has got the newest acked event
// of each of its channels past its window, or timeout passes. It returns
// how long it waited, and an error naming the clients still behind at the
// timeout. Whether they got everything before it, once, is Check's job.
func WaitDelivered(ctx context.Context, pub *Publisher, clients []Watched, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		newest := make(map[string]uint64)
		for _, ev := range pub.Acked() {
			newest[ev.Channel] = max(newest[ev.Channel], ev.Seq)
		}
		var behind []string
		for _, c := range clients {
			for _, ch := range c.Channels {
				if want := newest[ch]; want > c.Sure && c.Newest(ch) < want {
					behind = append(behind, fmt.Sprintf("%s has %s up to %d of %d", c.Name, ch, c.Newest(ch), want))
					break
				}
			}
		}
		if len(behind) == 0 {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			if len(behind) > 10 {
				behind = append(behind[:10], fmt.Sprintf("and %d more clients", len(behind)-10))
			}
			return time.Since(start), fmt.Errorf("not delivered within %v: %s", timeout, strings.Join(behind, "; "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CheckAll checks every client against what pub acked and fails t for
// each problem. It returns the events delivered, which a test compares
// with a minimum so that a run where nothing flowed fails.
func CheckAll(t testing.TB, pub *Publisher, clients []Watched) (delivered int) {
	t.Helper()
	l := NewLedger(pub.Acked())
	failed := 0
	for _, c := range clients {
		w := window(c)
		r := l.Check(c.Client, w)
		delivered += r.Got
		if len(r.Problems) == 0 {
			continue
		}
		failed++
		if failed <= 10 {
			st := c.Stats()
			t.Errorf("%s on %v from %+v: got %d, wanted %d; %d streams, ends %v, resets %v:\n  %s",
				c.Name, c.Channels, w, r.Got, r.Want, st.Streams, st.Ends, st.Resets, strings.Join(r.Problems, "\n  "))
		}
		if st := c.Stats(); st.Fatal != nil {
			t.Errorf("%s gave up: %v", c.Name, st.Fatal)
		}
	}
	if failed > 10 {
		t.Errorf("%d more clients had problems", failed-10)
	}
	return delivered
}

// ranges formats sorted sequences as "3-7, 9", at most n ranges.
func ranges(seqs []uint64, n int) string {
	var parts []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if len(parts) == n {
			parts = append(parts, "…")
			break
		}
		if i == j {
			parts = append(parts, fmt.Sprint(seqs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", seqs[i], seqs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// Fleet is a set of running clients.
type Fleet struct {
	Clients []Watched
	ctx     context.Context
	cancel  context.CancelFunc
	done    sync.WaitGroup
	mu      sync.Mutex // held while Join changes Clients
}

// StartAll runs the clients and waits until each has its first stream
// open, recording each one's start window from what pub has acked (see
// Join).
func StartAll(ctx context.Context, pub *Publisher, clients []*Client, timeout time.Duration) (*Fleet, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{ctx: ctx, cancel: cancel}
	if err := f.Join(pub, clients, timeout); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// Join runs more clients in the fleet and waits until each has its first
// stream open, recording each one's start window from what pub has acked:
// every event whose publish began after the streams opened is owed (see
// Publisher.SettledSeq). A client with a LastID starts exactly there. The
// clients stay in the fleet when it fails. Joins may run concurrently,
// with each other only: Clients is read once they have returned.
func (f *Fleet) Join(pub *Publisher, clients []*Client, timeout time.Duration) error {
	before := pub.LastSeq()
	f.mu.Lock()
	first := len(f.Clients)
	for _, c := range clients {
		w := Window{After: before}
		if c.LastID != "" {
			seq, err := strconv.ParseUint(strings.SplitN(c.LastID, "-", 2)[0], 10, 64)
			if err != nil {
				f.mu.Unlock()
				return fmt.Errorf("%s: last id %q: %w", c.Name, c.LastID, err)
			}
			w = Window{After: seq, Sure: seq}
		}
		f.Clients = append(f.Clients, Watched{Client: c, Window: w})
		f.done.Add(1)
		go func() {
			defer f.done.Done()
			_ = c.Run(f.ctx)
		}()
	}
	f.mu.Unlock()
	deadline := time.After(timeout)
	for _, c := range clients {
		select {
		case <-c.Opened():
		case <-deadline:
			return fmt.Errorf("%s: no stream open within %v (%+v)", c.Name, timeout, c.Stats())
		}
	}
	sure := pub.SettledSeq(5 * time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := first; i < first+len(clients); i++ {
		if f.Clients[i].LastID == "" {
			f.Clients[i].Sure = sure
		}
	}
	return nil
}

// Stop ends every client and waits for them.
func (f *Fleet) Stop() {
	f.cancel()
	f.done.Wait()
}
