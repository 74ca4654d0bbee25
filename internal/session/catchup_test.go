package session

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// busyChannelHistory has one more event on every read, as a channel that
// is busier than its client can read has.
type busyChannelHistory struct{ reads int }

func (h *busyChannelHistory) Resolve(context.Context, string, []string) (replay.Resolution, error) {
	return replay.Resolution{After: 10, Current: replay.ID{Seq: 10, Epoch: "abcd"}}, nil
}

func (h *busyChannelHistory) Read(_ context.Context, _ []string, after, _ uint64, _ int, fn func(replay.Msg) error) error {
	h.reads++
	return fn(replay.Msg{Seq: after + 1, Subject: "events.busy", Data: []byte("x")})
}

func (h *busyChannelHistory) Epoch() string { return "abcd" }

// behindClient is a hub attachment whose live delivery always moved on
// while the session read: every handover asks for another read.
type behindClient struct{ handovers int }

func (c *behindClient) Ready() <-chan struct{} { return nil }
func (c *behindClient) Take(dst []upstream.Frame, _ int) ([]upstream.Frame, bool) {
	return dst, false
}
func (c *behindClient) Done() <-chan struct{}   { return nil }
func (c *behindClient) Reason() upstream.Reason { return upstream.ReasonNone }
func (c *behindClient) Epoch() string           { return "abcd" }
func (c *behindClient) EndReplay(uint64) bool   { c.handovers++; return false }
func (c *behindClient) Start() uint64           { return 0 }
func (c *behindClient) Detach()                 {}

// TestCatchUpEndsAfterBoundedPasses: a replay that never catches up with a
// busy channel ends after a bounded number of reads, as slow, so that the
// client resumes from the last event it got, instead of holding a replay
// slot and creating consumers for ever.
func TestCatchUpEndsAfterBoundedPasses(t *testing.T) {
	sv := New(Config{Retry: time.Second, ReplayLimit: 100}, Metrics{}, nil)
	rec := httptest.NewRecorder()
	history, client := &busyChannelHistory{}, &behindClient{}
	s := sv.newSession(rec, []string{"events.busy"})
	s.client, s.history = client, history
	s.run(context.Background(), "HTTP/1.1", "10-abcd", time.Time{})
	if s.ended != endSlow {
		t.Fatalf("stream ended as %q, want slow", s.ended)
	}
	if history.reads != maxCatchUpPasses || client.handovers != maxCatchUpPasses {
		t.Fatalf("%d reads and %d handovers, want %d of each", history.reads, client.handovers, maxCatchUpPasses)
	}
	events, end, ok := strings.Cut(rec.Body.String(), ": end: slow")
	if !ok || !strings.HasSuffix(strings.TrimSpace(events), "id: 14-abcd\ndata: x") || !strings.Contains(end, "retry: ") {
		t.Fatalf("stream does not end as slow, with a retry, after its events:\n%s", rec.Body.String())
	}
	if s.lastSent != 10+maxCatchUpPasses {
		t.Fatalf("resumes from %d, want %d", s.lastSent, 10+maxCatchUpPasses)
	}
}
