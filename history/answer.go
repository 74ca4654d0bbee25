package history

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/eventfilter"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/sse"
)

// Event is one event in an answer. Its fields say what an EventSource on
// the channel would have received: the same id, the event name
// ("message" when the publisher gave none, as the browser reports it) and
// the data with its line breaks as LF.
type Event struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	Event   string `json:"event"`
	Data    string `json:"data"`
	// Time is when JetStream stored the event, RFC 3339 in UTC. It is
	// empty for an event the gateway read back after a live loss.
	Time string `json:"time"`
}

// Answer is the body of a history or poll answer.
type Answer struct {
	Events []Event `json:"events"`
	// LastID is the position the client has every matching event up to:
	// the next page's after, or the last_event_id of a stream that
	// continues exactly where the answer stopped.
	LastID string `json:"last_id"`
	// More says that events after LastID were left out of this answer.
	More bool `json:"more"`
	// Reset says that the position asked for could not be honoured; the
	// events are then the oldest kept.
	Reset *Reset `json:"reset,omitempty"`
}

// Reset carries one of the reasons in package replay.
type Reset struct {
	Reason string `json:"reason"`
}

// DefaultEventName is the name of an event published without one.
const DefaultEventName = "message"

// collector builds an answer's events up to a count and a byte cap, and
// knows the position its events reach.
type collector struct {
	events    []Event
	channelOf map[string]string
	limit     int
	maxBytes  int
	bytes     int
	more      bool
	// last is the sequence of the last event taken.
	last uint64
	buf  []byte
	// filter keeps the events asked for. With it active, an answer's
	// position moves only with the events it carries, from floor: a
	// dropped event advances no client's id.
	filter eventfilter.Filter
	floor  uint64
}

func newCollector(channels, subjects []string, limit, maxBytes int, filter eventfilter.Filter) *collector {
	c := &collector{channelOf: make(map[string]string, len(subjects)), limit: limit, maxBytes: maxBytes, filter: filter}
	for i, s := range subjects {
		c.channelOf[s] = channels[i]
	}
	return c
}

// full reports whether the answer can take no further event; the first
// event always fits, however large.
func (c *collector) full(size int) bool {
	return len(c.events) >= c.limit || (len(c.events) > 0 && c.bytes+size > c.maxBytes)
}

// addFrame adds an encoded event of channel, unless the filter drops it.
// It reports false, adding nothing and marking the answer as having more,
// when the answer is full.
func (c *collector) addFrame(channel string, seq uint64, frame []byte, stored time.Time) bool {
	if !c.filter.PassesFrame(frame) {
		return true
	}
	ev := sse.Decode(frame)
	size := len(ev.Data) + len(ev.ID) + len(ev.Name) + len(channel)
	if c.full(size) {
		c.more = true
		return false
	}
	e := Event{ID: ev.ID, Channel: channel, Event: ev.Name, Data: string(ev.Data)}
	if e.Event == "" {
		e.Event = DefaultEventName
	}
	if !stored.IsZero() {
		e.Time = stored.UTC().Format(time.RFC3339Nano)
	}
	c.events = append(c.events, e)
	c.bytes += size
	c.last = seq
	return true
}

// addMsg adds a stored message, encoded as a stream would send it.
func (c *collector) addMsg(m replay.Msg, epoch string) bool {
	c.buf = replay.Encode(c.buf[:0], m, epoch)
	return c.addFrame(c.channelOf[m.Subject], m.Seq, c.buf, m.Time)
}

// reached is the position the answer's LastID stands for.
func (c *collector) reached(reached uint64) uint64 {
	switch {
	case c.more:
		return c.last
	case c.filter.Active():
		return max(c.last, c.floor)
	}
	return max(c.last, reached)
}

// answer is the collected answer. When it is complete (not More), the
// client has everything up to reached, which may lie past its last event.
func (c *collector) answer(epoch string, reached uint64) Answer {
	a := Answer{Events: c.events, More: c.more, LastID: replay.ID{Seq: c.reached(reached), Epoch: epoch}.String()}
	if a.Events == nil {
		a.Events = []Event{}
	}
	return a
}

// writeAnswer writes a in one piece with its length: a poll loop's
// answers are small and many, and a known length spares the chunked
// encoding and a write per chunk.
func (s *Server) writeAnswer(w http.ResponseWriter, a Answer) {
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		// Pool only what a poll's answer takes; a large history page's
		// buffer goes with it.
		if buf.Cap() <= maxPooledAnswer {
			buf.Reset()
			s.bufs.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(a); err != nil {
		s.log.Error("history answer", zap.Error(err))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// maxPooledAnswer is the largest answer buffer kept for the next answer.
const maxPooledAnswer = 64 << 10
