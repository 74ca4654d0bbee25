package upstream

import "testing"

func newTestClient(queue int, replaying bool) *Client {
	h := &Hub{}
	return &Client{hub: h, queue: newFrameQueue(queue), done: make(chan struct{}), holdCap: 2, replaying: replaying}
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
	c.Take(nil, 1)
	c.offerLocked(Frame{Seq: 6})
	if got := seqsOf(c); len(got) != 1 || got[0] != 2 {
		t.Fatalf("queue holds %v, want [2]", got)
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
	if got := seqsOf(c); len(got) != 1 || got[0] != 14 {
		t.Fatalf("released %v, want only [14]", got)
	}
}

func TestHeldFramesAreReleasedInOrderPastThePosition(t *testing.T) {
	c := newTestClient(8, false)
	c.holdCap = 8
	c.suspect = 1
	c.offerLocked(Frame{Seq: 5})
	c.offerLocked(Frame{Seq: 7})
	if c.queue.len() != 0 {
		t.Fatal("a held client was given a frame")
	}
	// A recovery read queues what was missed, including 5 again.
	c.queueLocked(Frame{Seq: 4})
	c.queueLocked(Frame{Seq: 5})
	c.suspect = 0
	c.releaseLocked()
	got := seqsOf(c)
	if len(got) != 3 || got[0] != 4 || got[1] != 5 || got[2] != 7 {
		t.Fatalf("got %v, want [4 5 7]", got)
	}
}

// seqsOf takes every waiting frame and lists their sequences.
func seqsOf(c *Client) []uint64 {
	fs, _ := c.Take(nil, 1<<20)
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.Seq
	}
	return out
}

func TestQueueGrowsWhenNeededAndLetsGoWhenDrained(t *testing.T) {
	q := newFrameQueue(100)
	if q.buf != nil {
		t.Fatal("an idle queue holds a buffer")
	}
	for i := range 100 {
		if !q.push(Frame{Seq: uint64(i + 1)}) {
			t.Fatalf("push %d refused below the limit", i+1)
		}
	}
	if q.push(Frame{Seq: 101}) {
		t.Fatal("push past the limit accepted")
	}
	var got []Frame
	for more := true; more; {
		got, more = q.take(got, 7)
	}
	for i, f := range got {
		if f.Seq != uint64(i+1) {
			t.Fatalf("frame %d has sequence %d", i, f.Seq)
		}
	}
	if len(got) != 100 || q.buf != nil {
		t.Fatalf("took %d; buffer kept: %v", len(got), q.buf != nil)
	}
}
