package upstream

import (
	"testing"
	"time"
)

// TestQueueSignalsOncePerWait: a token goes out when frames start to wait,
// not for every frame, and again once the writer has emptied the queue.
func TestQueueSignalsOncePerWait(t *testing.T) {
	q := newFrameQueue(16)
	for seq := uint64(1); seq <= 3; seq++ {
		q.push(Frame{Seq: seq})
	}
	<-q.ready
	select {
	case <-q.ready:
		t.Fatal("a second token for frames that were already waiting")
	default:
	}
	if fs, more := q.take(nil, 2); len(fs) != 2 || !more {
		t.Fatalf("took %d frames, more %v; want 2 and more", len(fs), more)
	}
	q.push(Frame{Seq: 4})
	select {
	case <-q.ready:
		t.Fatal("a token while the writer had not emptied the queue")
	default:
	}
	if fs, more := q.take(nil, 8); len(fs) != 2 || more {
		t.Fatalf("took %d frames, more %v; want 2 and no more", len(fs), more)
	}
	q.push(Frame{Seq: 5})
	select {
	case <-q.ready:
	default:
		t.Fatal("no token for a frame pushed to an empty queue")
	}
}

// TestQueueWriterNeverMissesAFrame: a writer that waits for a token and
// then takes until nothing is left gets every frame a concurrent producer
// pushes, in order, with no frame left waiting without a token.
func TestQueueWriterNeverMissesAFrame(t *testing.T) {
	const frames = 20000
	q := newFrameQueue(frames)
	go func() {
		for seq := uint64(1); seq <= frames; seq++ {
			q.push(Frame{Seq: seq})
		}
	}()
	deadline := time.After(20 * time.Second)
	var next uint64 = 1
	var batch []Frame
	for next <= frames {
		select {
		case <-q.ready:
		case <-deadline:
			t.Fatalf("stuck after frame %d with %d waiting", next-1, q.len())
		}
		for more := true; more; {
			batch, more = q.take(batch[:0], 7)
			for _, f := range batch {
				if f.Seq != next {
					t.Fatalf("frame %d, want %d", f.Seq, next)
				}
				next++
			}
		}
	}
}
