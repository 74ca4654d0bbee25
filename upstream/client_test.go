package upstream

import "testing"

func newTestClient(queue int, replaying bool) *Client {
	h := &Hub{}
	return &Client{hub: h, queue: make(chan Frame, queue), done: make(chan struct{}), holdCap: 2, replaying: replaying}
}

func TestOverflowEndsLiveClientAndQueuesNothingAfter(t *testing.T) {
	c := newTestClient(2, false)
	for seq := uint64(1); seq <= 5; seq++ {
		c.offerLocked(Frame{Seq: seq})
	}
	if r := c.Reason(); r != ReasonSlow {
		t.Fatalf("reason %v", r)
	}
	// Frames 1 and 2 fit; 3 was dropped, so 4 and 5 must not follow, even
	// once the writer has made room.
	<-c.queue
	c.offerLocked(Frame{Seq: 6})
	if f := <-c.queue; f.Seq != 2 || len(c.queue) != 0 {
		t.Fatalf("queue holds %d then %d more", f.Seq, len(c.queue))
	}
}

func TestOverflowDuringReplayAsksForAnotherRead(t *testing.T) {
	c := newTestClient(8, true)
	for seq := uint64(11); seq <= 13; seq++ {
		c.offerLocked(Frame{Seq: seq}) // the third does not fit the hold
	}
	if r := c.Reason(); r != ReasonNone {
		t.Fatalf("a replaying client was ended: %v", r)
	}
	if c.EndReplay(10) {
		t.Fatal("EndReplay ignored the dropped frame")
	}
	c.offerLocked(Frame{Seq: 14})
	if !c.EndReplay(13) {
		t.Fatal("EndReplay refused with nothing dropped since")
	}
	if f := <-c.queue; f.Seq != 14 || len(c.queue) != 0 {
		t.Fatalf("released %d and %d more, want only 14", f.Seq, len(c.queue))
	}
}

func TestHeldFramesAreReleasedInOrderPastThePosition(t *testing.T) {
	c := newTestClient(8, false)
	c.holdCap = 8
	c.suspect = 1
	c.offerLocked(Frame{Seq: 5})
	c.offerLocked(Frame{Seq: 7})
	if len(c.queue) != 0 {
		t.Fatal("a held client was given a frame")
	}
	// A recovery read queues what was missed, including 5 again.
	c.queueLocked(Frame{Seq: 4})
	c.queueLocked(Frame{Seq: 5})
	c.suspect = 0
	c.releaseLocked()
	var got []uint64
	for len(c.queue) > 0 {
		got = append(got, (<-c.queue).Seq)
	}
	if len(got) != 3 || got[0] != 4 || got[1] != 5 || got[2] != 7 {
		t.Fatalf("got %v, want [4 5 7]", got)
	}
}
