package upstream

import "testing"

func newTestClient(queue int, replaying bool, slow *int) *Client {
	h := &Hub{metrics: Metrics{SlowClient: func() { *slow++ }}}
	return &Client{hub: h, queue: make(chan Frame, queue), done: make(chan struct{}), replaying: replaying}
}

func TestOverflowEndsLiveClientAndQueuesNothingAfter(t *testing.T) {
	var slow int
	c := newTestClient(2, false, &slow)
	for seq := uint64(1); seq <= 5; seq++ {
		c.push(Frame{Seq: seq})
	}
	if r, _ := c.Reason(); r != ReasonSlow || slow != 1 {
		t.Fatalf("reason %v, slow count %d", r, slow)
	}
	// Frames 1 and 2 fit; 3 was dropped, so 4 and 5 must not follow, even
	// once the writer has made room.
	<-c.queue
	c.push(Frame{Seq: 6})
	if f := <-c.queue; f.Seq != 2 || len(c.queue) != 0 {
		t.Fatalf("queue holds %d then %d more", f.Seq, len(c.queue))
	}
}

func TestOverflowDuringReplayAsksForAnotherRead(t *testing.T) {
	var slow int
	c := newTestClient(1, true, &slow)
	c.push(Frame{Seq: 1})
	c.push(Frame{Seq: 2})
	if r, _ := c.Reason(); r != ReasonNone || slow != 0 {
		t.Fatalf("a replaying client was ended: %v", r)
	}
	if c.EndReplay() {
		t.Fatal("EndReplay ignored the dropped frame")
	}
	if !c.EndReplay() {
		t.Fatal("EndReplay refused with nothing dropped since")
	}
	<-c.queue
	c.push(Frame{Seq: 3})
	c.push(Frame{Seq: 4})
	if r, _ := c.Reason(); r != ReasonSlow {
		t.Fatalf("live overflow after replay: reason %v", r)
	}
}
