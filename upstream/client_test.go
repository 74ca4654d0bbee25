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
	if c.Start() != 13 {
		t.Fatalf("Start %d after the overflow at 13; the next read must pass it", c.Start())
	}
	c.offerLocked(Frame{Seq: 14})
	if !c.EndReplay(13) {
		t.Fatal("EndReplay refused with nothing dropped since")
	}
	if got := seqsOf(c); len(got) != 1 || got[0] != 14 {
		t.Fatalf("released %v, want only [14]", got)
	}
}

// TestEndReplayReleasesHeldFramesPastWhatWasRead: the replay read past
// Start and wrote up to 5; held frames at or below either are dropped, and
// the rest follow in order.
func TestEndReplayReleasesHeldFramesPastWhatWasRead(t *testing.T) {
	c := newTestClient(8, true)
	c.holdCap, c.start = 8, 4
	for _, seq := range []uint64{5, 6, 8} {
		c.offerLocked(Frame{Seq: seq})
	}
	if c.queue.len() != 0 {
		t.Fatal("a replaying client was given a frame")
	}
	if !c.EndReplay(6) {
		t.Fatal("EndReplay refused")
	}
	if got := seqsOf(c); len(got) != 1 || got[0] != 8 {
		t.Fatalf("got %v, want [8]", got)
	}
	// A replay that wrote nothing past Start still counts as having read
	// through it.
	d := newTestClient(8, true)
	d.holdCap, d.start = 8, 9
	d.offerLocked(Frame{Seq: 10})
	if !d.EndReplay(3) {
		t.Fatal("EndReplay refused")
	}
	d.offerLocked(Frame{Seq: 9}) // at or below Start: the read had it
	if got := seqsOf(d); len(got) != 1 || got[0] != 10 {
		t.Fatalf("got %v, want [10]", got)
	}
}

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
