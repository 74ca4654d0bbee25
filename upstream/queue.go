package upstream

import "sync"

// frameQueue holds a client's frames between the dispatcher and the
// client's writer. It grows only while frames wait, up to its limit, and
// lets go of its memory once drained: most clients are idle most of the
// time, and a buffer sized for a burst on each of them would cost more
// than the rest of an idle connection.
type frameQueue struct {
	ready chan struct{} // gets a token when frames start to wait

	mu    sync.Mutex
	buf   []Frame // a ring; len(buf) is its capacity
	head  int
	n     int
	limit int
}

func newFrameQueue(limit int) frameQueue {
	return frameQueue{ready: make(chan struct{}, 1), limit: max(limit, 1)}
}

// initialQueue is the ring's first size: enough for a small batch.
const initialQueue = 8

// push adds f and reports false, adding nothing, when the queue is full.
func (q *frameQueue) push(f Frame) bool {
	q.mu.Lock()
	if q.n == q.limit {
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = f
	q.n++
	first := q.n == 1
	q.mu.Unlock()
	// Frames that were waiting already have a token out: either it is in
	// ready, or the writer has it and will take until the queue is empty.
	if first {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true
}

func (q *frameQueue) grow() {
	size := min(max(2*len(q.buf), initialQueue), q.limit)
	buf := make([]Frame, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}

// take moves up to max frames, oldest first, onto dst, and reports
// whether more are waiting.
func (q *frameQueue) take(dst []Frame, max int) ([]Frame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for ; q.n > 0 && max > 0; max-- {
		dst = append(dst, q.buf[q.head])
		q.buf[q.head] = Frame{} // the data is shared; do not keep it alive
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > initialQueue {
			q.buf = nil
		}
	}
	return dst, q.n > 0
}

// len reports how many frames wait.
func (q *frameQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
