package publish

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// TestEventDigestTellsEventsApart: the digest covers the channel, the
// event name and the data with their lengths, so moving a byte from one
// to the next makes another digest, and the same event the same one.
func TestEventDigestTellsEventsApart(t *testing.T) {
	base := eventDigest("orders", "created", []byte("x"))
	if eventDigest("orders", "created", []byte("x")) != base {
		t.Fatal("the same event has two digests")
	}
	for _, other := range []string{
		eventDigest("order", "screated", []byte("x")),
		eventDigest("orders", "create", []byte("dx")),
		eventDigest("orders.eu", "created", []byte("x")),
		eventDigest("orders", "", []byte("x")),
		eventDigest("orders", "created", []byte("y")),
	} {
		if other == base {
			t.Fatal("two events share a digest")
		}
	}
}

// TestMsgSizeCountsHeaders: what max_payload bounds is the headers as
// sent and the data.
func TestMsgSizeCountsHeaders(t *testing.T) {
	msg := nats.NewMsg("events.a")
	msg.Data = []byte("12345")
	if got := msgSize(msg); got != int64(len("NATS/1.0\r\n\r\n")+5) {
		t.Fatalf("no headers: %d", got)
	}
	msg.Header.Set("Sse-Event", "e")
	if got, want := msgSize(msg), int64(len("NATS/1.0\r\nSse-Event: e\r\n\r\n")+5); got != want {
		t.Fatalf("one header: %d, want %d", got, want)
	}
}

// TestCheckEventNameAsDelivered: NATS trims header values, so a name with
// a space at either end would be delivered as another name ("reset").
func TestCheckEventNameAsDelivered(t *testing.T) {
	for _, name := range []string{"reset", "reset ", " reset", "update ", " update"} {
		if checkEventName(name) == "" {
			t.Errorf("%q accepted", name)
		}
	}
	for _, name := range []string{"", "update", "order.created", "a b"} {
		if why := checkEventName(name); why != "" {
			t.Errorf("%q refused: %s", name, why)
		}
	}
}

// TestOnce: a value given in several places is taken when its non-empty
// copies agree; an empty copy is an absent one.
func TestOnce(t *testing.T) {
	for _, tc := range []struct {
		vals []string
		want string
		ok   bool
	}{
		{nil, "", true},
		{[]string{"a"}, "a", true},
		{[]string{"a", "a"}, "a", true},
		{[]string{"", "b"}, "b", true},
		{[]string{"a", ""}, "a", true},
		{[]string{"a", "b"}, "", false},
		{[]string{"", "a", "b"}, "", false},
	} {
		if got, ok := once(tc.vals); got != tc.want || ok != tc.ok {
			t.Errorf("once(%q) = %q, %v; want %q, %v", tc.vals, got, ok, tc.want, tc.ok)
		}
	}
}
