package faulttest

import (
	"strings"
	"testing"
)

// TestCheckFindsEveryKindOfFault: the checker is what makes the fault
// suite able to fail, so each fault it must see is shown to it.
func TestCheckFindsEveryKindOfFault(t *testing.T) {
	acked := []Event{{1, "a"}, {2, "b"}, {3, "a"}, {4, "c"}, {5, "b"}, {6, "a"}}
	l := NewLedger(acked)
	tests := []struct {
		name   string
		window Window
		got    []uint64 // channels from acked
		want   string   // a problem containing this; "" for none
	}{
		{"all, in order", Window{}, []uint64{1, 2, 3, 5, 6}, ""},
		{"from a position", Window{After: 2, Sure: 2}, []uint64{3, 5, 6}, ""},
		{"live start may include the window", Window{After: 1, Sure: 3}, []uint64{5, 6}, ""},
		{"duplicate", Window{}, []uint64{1, 2, 3, 3, 5, 6}, "duplicate"},
		{"duplicate after a rewind", Window{}, []uint64{1, 2, 3, 2, 5, 6}, "out of order"},
		{"out of order", Window{}, []uint64{1, 3, 2, 5, 6}, "out of order"},
		{"missing", Window{}, []uint64{1, 2, 5, 6}, "missing 1 of 5 acked events: 3"},
		{"missing, where", Window{}, []uint64{1, 5, 6}, "lost 2 (2 b, 3 a): after 1 on a (stream 0, ) came 5 on b"},
		{"missing the last", Window{}, []uint64{1, 2, 3, 5}, "missing 1 of 5 acked events: 6"},
		{"history before the start", Window{After: 3, Sure: 3}, []uint64{1, 5, 6}, "at or before the client's start"},
		{"another channel", Window{}, []uint64{1, 2, 3, 4, 5, 6}, "not one of the client's channels"},
	}
	channelOf := map[uint64]string{}
	for _, ev := range acked {
		channelOf[ev.Seq] = ev.Channel
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{Name: "c", Channels: []string{"a", "b"}}
			for _, seq := range tt.got {
				c.got = append(c.got, Received{Event: Event{Seq: seq, Channel: channelOf[seq]}})
			}
			r := l.Check(c, tt.window)
			problems := strings.Join(r.Problems, "\n")
			if tt.want == "" && problems != "" || !strings.Contains(problems, tt.want) {
				t.Fatalf("problems %q, want one with %q", problems, tt.want)
			}
		})
	}
}

// TestClientFollowsEventSourceRules: an id line without data moves the
// position a reconnect sends, comments and retry hints are read, and a
// reset is recorded, not taken for an event.
func TestClientFollowsEventSourceRules(t *testing.T) {
	c := &Client{Name: "c", Channels: []string{"a"}, ends: map[string]int{}}
	wire := ": ssegate\nretry: 250\n\nid: 7-abcd\ndata: a|1\n\nevent: reset\nid: 9-abcd\ndata: expired\n\n: end: slow\nid: 12-abcd\nretry: 300\n\n"
	retry, _, err := c.read(strings.NewReader(wire), 1, func() {})
	if err != nil {
		t.Fatal(err)
	}
	if retry.Milliseconds() != 300 || c.lastID != "12-abcd" || c.ends["slow"] != 1 || len(c.resets) != 1 {
		t.Fatalf("retry %v, last id %q, ends %v, resets %v", retry, c.lastID, c.ends, c.resets)
	}
	if got := c.Received(); len(got) != 1 || got[0].Seq != 7 || got[0].Channel != "a" {
		t.Fatalf("received %+v", got)
	}
}

// TestStartPositionSetsTheWindow: a client without a position whose first
// stream opens with an id and no data starts exactly there, so the
// checker owes it every event after that id and none before.
func TestStartPositionSetsTheWindow(t *testing.T) {
	l := NewLedger([]Event{{1, "a"}, {2, "a"}, {3, "a"}, {4, "a"}})
	c := &Client{Name: "c", Channels: []string{"a"}, ends: map[string]int{}}
	if _, _, err := c.read(strings.NewReader(": ssegate\nretry: 100\n\nid: 2-abcd\n\nid: 4-abcd\ndata: a|4\n\n"), 1, func() {}); err != nil {
		t.Fatal(err)
	}
	if seq, ok := c.StartSeq(); !ok || seq != 2 {
		t.Fatalf("start %d %v, want 2", seq, ok)
	}
	w := window(Watched{Client: c, Window: Window{After: 0, Sure: 4}})
	r := l.Check(c, w)
	if w != (Window{After: 2, Sure: 2}) || r.Missing != 1 || !strings.Contains(strings.Join(r.Problems, "\n"), "lost 1 (3 a): after its start came 4") {
		t.Fatalf("window %+v, result %+v", w, r)
	}
}

// TestStartPositionAfterARefusedStream: a client whose first stream was
// refused while NATS was away (no id, an end comment) starts where its
// next stream says, not at what was acked when it first asked: the
// gateway it reaches may not have had those events yet.
func TestStartPositionAfterARefusedStream(t *testing.T) {
	c := &Client{Name: "c", Channels: []string{"a"}, ends: map[string]int{}}
	if _, _, err := c.read(strings.NewReader(": ssegate\nretry: 100\n\n: end: unavailable\n\n"), 1, func() {}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.StartSeq(); ok {
		t.Fatal("a refused stream said a start")
	}
	if _, _, err := c.read(strings.NewReader(": ssegate\nretry: 100\n\nid: 2-abcd\n\nid: 3-abcd\ndata: a|3\n\n"), 2, func() {}); err != nil {
		t.Fatal(err)
	}
	if w := window(Watched{Client: c, Window: Window{After: 4, Sure: 4}}); w != (Window{After: 2, Sure: 2}) {
		t.Fatalf("window %+v, want the second stream's start 2", w)
	}
	// A later id without data, once the client has a position, is not
	// a start.
	if _, _, err := c.read(strings.NewReader(": ssegate\nretry: 100\n\nid: 9-abcd\n\n"), 3, func() {}); err != nil {
		t.Fatal(err)
	}
	if seq, _ := c.StartSeq(); seq != 2 {
		t.Fatalf("start moved to %d", seq)
	}
}
