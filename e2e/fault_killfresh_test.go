package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/natstest"
)

// TestFaultGatewayKilledBeforeFirstEvent: EventSources in Chromium and
// from the npm eventsource package open on a fresh channel; the gateway
// is SIGKILLed before any event, so their streams break without an end
// frame, and it starts again on its port. Then 60 events are published
// (or a publisher at 100/s runs from the kill until 100 events after the
// restart). Every client must get every event exactly once, in order:
// the only position such a client can come back with is the one the
// stream said when it opened.
func TestFaultGatewayKilledBeforeFirstEvent(t *testing.T) {
	tl := findTools(t)
	for _, client := range []string{"chromium", "eventsource"} {
		for _, steady := range []bool{false, true} {
			name := client + "/60 after restart"
			if steady {
				name = client + "/100 per s across restart"
			}
			t.Run(name, func(t *testing.T) { killFresh(t, tl, client, steady) })
		}
	}
}

func killFresh(t *testing.T, tl tools, client string, steady bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := natstest.Server(t)
	// The retry hint is Caddyfile.example's 2 s, so clients come back after
	// the first events are published; a page on the gateway's origin is
	// for Chromium's EventSources.
	gw := faultGateway(t, ctx, tl.bin, "A", freePorts(t, 1)[0], externalConf{nats: []string{ns.ClientURL()}, retry: "2s",
		site: "\n\theader /page Content-Type \"text/html; charset=utf-8\"\n\trespond /page \"<!doctype html><title>ssegate</title>\" 200"})
	pub, _ := faultPublisher(t, ns.ClientURL())
	channel := "room.fresh"
	pub.Channels, pub.Interval = []string{channel}, 10*time.Millisecond

	sc := startScript(t, tl, "killfresh.mjs", "SSEGATE_ORIGIN="+gw.url(), "SSEGATE_CHANNEL="+channel,
		"SSEGATE_CLIENT="+client, "CHROMIUM_PATH="+tl.chromium)
	sc.await(t, "OPEN")
	pid := gw.kill(t)
	killed := time.Now()
	t.Logf("gateway SIGKILLed (pid %d, gone) with %s clients open on %s and no event published", pid, client, channel)
	var stop func() error
	if steady {
		stop = runFaultPublisher(pub)
		waitFaultAcked(t, ctx, pub, 20, 10*time.Second)
	}
	gw.launch(t, ctx)
	t.Logf("gateway serves again; %d events acked meanwhile", pub.Count())
	if steady {
		waitFaultAcked(t, ctx, pub, pub.Count()+100, 20*time.Second)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	} else {
		for range 60 {
			if _, err := pub.Publish(ctx, channel); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []uint64
	for _, ev := range pub.Acked() {
		want = append(want, ev.Seq)
	}
	slices.Sort(want)
	sc.send(t, strconv.Itoa(len(want)))
	var got [][]string
	if err := json.Unmarshal([]byte(sc.await(t, "RESULT ")), &got); err != nil {
		t.Fatal(err)
	}
	for i, ids := range got {
		if problem := exactly(want, ids); problem != "" {
			t.Errorf("%s client %d: %s", client, i, problem)
		}
	}
	t.Logf("%d %s clients, %d events (seq %d to %d), checked %v after the kill", len(got), client, len(want), want[0], want[len(want)-1], time.Since(killed).Round(time.Millisecond))
}

// exactly says how ids (seq-epoch, in arrival order) differ from want.
func exactly(want []uint64, ids []string) string {
	var got []uint64
	for _, id := range ids {
		seq, err := strconv.ParseUint(strings.SplitN(id, "-", 2)[0], 10, 64)
		if err != nil {
			return fmt.Sprintf("event id %q", id)
		}
		got = append(got, seq)
	}
	// A publish still waiting for its ack when the publisher stopped may
	// have been stored: the stream has it, and so may every client, after
	// every acked one and in order.
	for len(got) > len(want) && len(want) > 0 && got[len(got)-1] > want[len(want)-1] &&
		(len(got) < 2 || got[len(got)-2] < got[len(got)-1]) && slices.Equal(got[:len(want)], want) {
		got = got[:len(got)-1]
	}
	if slices.Equal(got, want) {
		return ""
	}
	var missing []uint64
	for _, seq := range want {
		if !slices.Contains(got, seq) {
			missing = append(missing, seq)
		}
	}
	return fmt.Sprintf("got %d of %d events; missing %d: %s; got %s", len(got), len(want), len(missing), seqRanges(missing), seqRanges(got))
}
