package replay

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
)

func jetStream(t *testing.T, enabled bool) jetstream.JetStream {
	t.Helper()
	var opts []natstest.Option
	if !enabled {
		opts = append(opts, natstest.WithoutJetStream())
	}
	_, js := natstest.Connect(t, natstest.Server(t, opts...))
	return js
}

func TestEnsureStartupErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	unmanaged := StreamConfig{Unmanaged: true}
	tests := []struct {
		name    string
		js      bool
		prepare *jetstream.StreamConfig
		cfg     StreamConfig
		want    []string
	}{
		{"JetStream disabled", false, nil, StreamConfig{}, []string{"JetStream is not enabled"}},
		{"stream missing", true, nil, unmanaged, []string{`stream "SSEGATE" does not exist`, "manage_stream off"}},
		{"no republish", true, &jetstream.StreamConfig{Name: "SSEGATE", Subjects: []string{"events.>"}}, unmanaged,
			[]string{"no republish rule", `"ssegate.live.>"`}},
		{"wrong subjects", true, &jetstream.StreamConfig{Name: "SSEGATE", Subjects: []string{"other.>"},
			RePublish: &jetstream.RePublish{Source: ">", Destination: "ssegate.live.>"}}, unmanaged,
			[]string{`do not include "events.>"`}},
		{"headers only", true, &jetstream.StreamConfig{Name: "SSEGATE", Subjects: []string{"events.>"},
			RePublish: &jetstream.RePublish{Source: ">", Destination: "ssegate.live.>", HeadersOnly: true}}, unmanaged,
			[]string{"headers_only"}},
		{"work queue", true, &jetstream.StreamConfig{Name: "SSEGATE", Subjects: []string{"events.>"}, Retention: jetstream.WorkQueuePolicy,
			RePublish: &jetstream.RePublish{Source: ">", Destination: "ssegate.live.>"}}, unmanaged,
			[]string{"retention must be limits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := jetStream(t, tt.js)
			if tt.prepare != nil {
				if _, err := js.CreateStream(ctx, *tt.prepare); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Ensure(ctx, js, tt.cfg)
			if err == nil {
				t.Fatal("Ensure succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestEnsureManagesAndVerifies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := jetStream(t, true)
	cfg := StreamConfig{Storage: "memory", MaxMsgsPerSubject: 100}
	first, err := Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The same config again: nothing differs.
	again, err := Ensure(ctx, js, cfg)
	if err != nil || again.Epoch != first.Epoch || len(again.Differs) != 0 {
		t.Fatalf("second Ensure: %+v, %v; want %+v", again, err, first)
	}
	// Another gateway's config (max_age 1m, another cap) keeps the
	// stream's and says where it differs.
	other := StreamConfig{Storage: "memory", MaxMsgsPerSubject: 200, MaxAge: caddy.Duration(time.Minute)}
	kept, err := Ensure(ctx, js, other)
	if err != nil || kept.Epoch != first.Epoch {
		t.Fatalf("Ensure with another config: %+v, %v", kept, err)
	}
	if d := strings.Join(kept.Differs, "; "); !strings.Contains(d, "max_age") || !strings.Contains(d, "max_msgs_per_subject: the stream has 100, this gateway 200") || len(kept.Differs) != 2 {
		t.Fatalf("differences %q", d)
	}
	// A gateway with another republish prefix cannot use the stream, and
	// must not take it from the others: it fails, and changes nothing.
	other.RepublishPrefix = "other.live"
	if _, err := Ensure(ctx, js, other); err == nil || !strings.Contains(err.Error(), `want ">" -> "other.live.>"`) {
		t.Fatalf("Ensure with another republish prefix: %v", err)
	}
	s, _ := js.Stream(ctx, "SSEGATE")
	got := s.CachedInfo().Config
	if got.MaxMsgsPerSubject != 100 || got.MaxAge != DefaultMaxAge || got.RePublish.Destination != "ssegate.live.>" {
		t.Fatalf("the stream was rewritten: %+v", got)
	}
	// The stream ssegate made passes the unmanaged check.
	if _, err := Ensure(ctx, js, StreamConfig{Unmanaged: true}); err != nil {
		t.Fatalf("unmanaged check of a managed stream: %v", err)
	}
	// Deleting and recreating the stream changes the epoch.
	if err := js.DeleteStream(ctx, "SSEGATE"); err != nil {
		t.Fatal(err)
	}
	recreated, err := Ensure(ctx, js, cfg)
	if err != nil || recreated.Epoch == first.Epoch {
		t.Fatalf("recreated stream epoch %q (was %q), %v", recreated.Epoch, first.Epoch, err)
	}
}

func TestHistoryResolve(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(10, "events.a")...)
	h := NewHistory(js, stream, 2)
	e := stream.Epoch
	tests := []struct {
		raw       string
		wantAfter uint64
		wantReset string
	}{
		{"5-" + e, 5, ""},
		{"5", 5, ""},
		{"0", 0, ""},
		{"10-" + e, 10, ""},
		{"11-" + e, 0, ResetUnknown},
		{"5-aaaa", 0, ResetStreamRecreated},
		{"abc", 0, ResetMalformed},
		{"-3", 0, ResetMalformed},
		{"18446744073709551616", 0, ResetMalformed},
		{"1\x00", 0, ResetMalformed},
	}
	for _, tt := range tests {
		r, err := h.Resolve(ctx, tt.raw, []string{"events.a"})
		if err != nil {
			t.Fatal(err)
		}
		if r.After != tt.wantAfter || r.Reset != tt.wantReset || r.Current.Seq != 10 || r.Current.Epoch != e {
			t.Errorf("Resolve(%q) = %+v; want after %d reset %q current 10", tt.raw, r, tt.wantAfter, tt.wantReset)
		}
	}
	s, _ := js.Stream(ctx, "SSEGATE")
	if err := s.Purge(ctx, jetstream.WithPurgeKeep(3)); err != nil {
		t.Fatal(err)
	}
	// Events 1 to 7 are gone: a client at 6 missed 7 for good, one at 7 did not.
	if r, _ := h.Resolve(ctx, "6-"+e, []string{"events.a"}); r.Reset != ResetExpired {
		t.Errorf("position before retention: %+v", r)
	}
	if r, _ := h.Resolve(ctx, "7-"+e, []string{"events.a"}); r.Reset != "" || r.After != 7 {
		t.Errorf("position at retention edge: %+v", r)
	}
}

func TestHistoryRead(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(30, "events.a", "events.b", "events.c")...)
	h := NewHistory(js, stream, 2)
	var got []uint64
	err := h.Read(ctx, []string{"events.a", "events.c"}, 10, 0, 0, func(m Msg) error {
		got = append(got, m.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{12, 13, 15, 16, 18, 19, 21, 22, 24, 25, 27, 28, 30}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if err := h.Read(ctx, []string{"events.a"}, 0, 0, 5, func(Msg) error { return nil }); err != ErrTooFarBehind {
		t.Fatalf("limit: %v", err)
	}
	// Nothing pending returns at once, without waiting for new events.
	if err := h.Read(ctx, []string{"events.a"}, 30, 0, 0, func(Msg) error { t.Fatal("called"); return nil }); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, "SSEGATE")
	if n := s.CachedInfo().State.Consumers; n != 0 {
		t.Fatalf("%d consumers left after reads", n)
	}
	if info, _ := s.Info(ctx); info.State.Consumers != 0 {
		t.Fatalf("%d consumers left after reads", info.State.Consumers)
	}
}

// resolveCase is a position, the subjects it is for, and the reset that
// Resolve must answer ("" for none).
type resolveCase struct {
	pos       string
	subjects  []string
	wantReset string
}

func checkResolves(ctx context.Context, t *testing.T, h *History, tests []resolveCase) {
	t.Helper()
	for _, tt := range tests {
		r, err := h.Resolve(ctx, tt.pos, tt.subjects)
		if err != nil {
			t.Fatal(err)
		}
		if r.Reset != tt.wantReset {
			t.Errorf("Resolve(%s, %v) = %+v, want reset %q", tt.pos, tt.subjects, r, tt.wantReset)
		}
	}
}

// TestResolveNoticesPerSubjectTrimming: max_msgs_per_subject removes old
// events of a channel without moving the stream's first sequence.
func TestResolveNoticesPerSubjectTrimming(t *testing.T) {
	// a: 1 3 5 7 9, of which 5 7 9 are kept; b: 2 4 6 8 10, of which 6 8
	// 10 are kept; c: 11. The stream's first sequence is 5.
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory", MaxMsgsPerSubject: 3},
		append(cycle(10, "events.a", "events.b"), "events.c")...)
	h := NewHistory(js, stream, 0)
	tests := []resolveCase{
		{"3", []string{"events.a"}, ResetExpired}, // before the first sequence
		// b is at its limit and its oldest event, 6, is not the next one:
		// b may have lost 5, and without the removed events' sequences
		// the check cannot tell, so it resets. (It did not.)
		{"4", []string{"events.a", "events.b"}, ResetExpired},
		{"4", []string{"events.a"}, ""}, // 5 is next and kept
		{"6", []string{"events.a", "events.b"}, ""},
		{"5", []string{"events.b"}, ""}, // 6 is next and kept
		{"6", []string{"events.c"}, ""}, // under its limit
	}
	checkResolves(ctx, t, h, tests)
}

// TestResolveNoticesSubjectPurge: a purge of one subject leaves the
// stream's first sequence alone. What it detects and what it cannot is in
// the README's "The reset event".
func TestResolveNoticesSubjectPurge(t *testing.T) {
	// 1 a, 2 bulk, 3 bulk, 4 a, 5 bulk, 6 other.
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"},
		"events.a", "events.bulk", "events.bulk", "events.a", "events.bulk", "events.other")
	h := NewHistory(js, stream, 1)
	if r, err := h.Resolve(ctx, "3", []string{"events.bulk"}); err != nil || r.Reset != "" || r.After != 3 {
		t.Fatalf("before the purge: %+v, %v", r, err)
	}
	s, _ := js.Stream(ctx, "SSEGATE")
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("events.bulk")); err != nil {
		t.Fatal(err)
	}
	tests := []resolveCase{
		{"3", []string{"events.bulk"}, ResetExpired},             // its last event, and 5 after it, purged
		{"2", []string{"events.a", "events.bulk"}, ResetExpired}, // the same, on two channels
		{"4", []string{"events.a"}, ""},                          // another channel's purge
		{"6", []string{"events.bulk"}, ""},                       // nothing on bulk after 6
		{"0", []string{"events.a"}, ""},                          // from the start, a lost nothing
		{"4", []string{"events.a", "events.bulk"}, ""},           // NOT detected: 5 lost, own event 4 kept
	}
	checkResolves(ctx, t, h, tests)
}

// TestFollowDoesNotWaitForReplays: with every replay slot and the reads'
// whole share of the budget taken, the hub's follower still runs.
func TestFollowDoesNotWaitForReplays(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(3, "events.a")...)
	// One slot, and a budget whose share for reads is one read's worth.
	h := NewHistory(js, stream, 1, WithPullBytes(1<<16), WithBudget(2<<16))
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- h.Read(ctx, []string{"events.a"}, 0, 0, 0, func(Msg) error {
			select {
			case <-holding:
			default:
				close(holding)
			}
			<-release
			return nil
		})
	}()
	<-holding
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if err := h.Read(short, []string{"events.a"}, 0, 0, 0, func(Msg) error { return nil }); err == nil {
		t.Fatal("a second replay ran while the only slot was taken")
	}
	n := 0
	enough := errors.New("enough")
	err := h.Follow(ctx, 0, func(Msg) error {
		if n++; n == 3 {
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) || n != 3 {
		t.Fatalf("follow: %d events, %v", n, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// seeded ensures a stream with cfg and publishes one event to each of
// subjects, in order, so that the i-th subject's event has sequence i+1.
func seeded(t *testing.T, cfg StreamConfig, subjects ...string) (context.Context, jetstream.JetStream, Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	js := jetStream(t, true)
	stream, err := Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range subjects {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, js, stream
}

// cycle lists n subjects taken in turn from subjects.
func cycle(n int, subjects ...string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = subjects[i%len(subjects)]
	}
	return out
}

// TestFuturePositionLetsOtherLookupsThrough: a position past the stream is
// read again for a few seconds before it counts as unknown. Meanwhile it
// does not hold a lookup slot: with one slot, another client's lookup is
// answered while the made-up one still waits.
func TestFuturePositionLetsOtherLookupsThrough(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(10, "events.a")...)
	h := NewHistory(js, stream, 1)
	forged := make(chan Resolution, 1)
	go func() {
		r, _ := h.Resolve(ctx, "1000-"+stream.Epoch, []string{"events.a"})
		forged <- r
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.lookups) == 0 && len(forged) == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	r, err := h.Resolve(ctx, "5-"+stream.Epoch, []string{"events.a"})
	if err != nil || r.After != 5 {
		t.Fatalf("resolve beside a made-up position: %+v, %v", r, err)
	}
	select {
	case <-forged:
		t.Fatal("the real lookup was answered only after the made-up one")
	default:
	}
	if r := <-forged; r.Reset != ResetUnknown {
		t.Fatalf("made-up position: %+v", r)
	}
}
