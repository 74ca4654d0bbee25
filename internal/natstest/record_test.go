package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/testkit"
)

func TestRecord(t *testing.T) {
	ns := Server(t, WithoutJetStream())
	nc, _ := Connect(t, ns)
	r := Record(t, nc, "room.>")
	// Published at once from another connection: Record has flushed its
	// subscription, so none of these is missed.
	pub, _ := Connect(t, ns)
	for _, subj := range []string{"room.a", "room.b", "room.a", "other.a"} {
		if err := pub.Publish(subj, []byte(subj)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	onA := func(m *nats.Msg) bool { return m.Subject == "room.a" }
	testkit.Eventually(t, 5*time.Second, "both room.a messages", func() bool { return r.Count(onA) == 2 })
	testkit.Eventually(t, 5*time.Second, "the three room messages", func() bool { return r.Count(func(*nats.Msg) bool { return true }) == 3 })
	if n := r.Count(func(m *nats.Msg) bool { return m.Subject == "other.a" }); n != 0 {
		t.Errorf("kept %d messages outside the subject", n)
	}
}
