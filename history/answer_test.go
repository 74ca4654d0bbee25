package history

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/eventfilter"
	"github.com/ssegate/ssegate/replay"
)

func msg(seq uint64, subject, name, data string) replay.Msg {
	m := replay.Msg{Seq: seq, Subject: subject, Data: []byte(data), Time: time.Date(2026, 12, 3, 10, 0, 0, int(seq), time.FixedZone("x", 3600))}
	if name != "" {
		m.Header = nats.Header{replay.EventHeader: {name}}
	}
	return m
}

// TestAnswerFields: each event says what an EventSource would have got,
// with its channel and storage time in UTC, in the answer's JSON shape.
func TestAnswerFields(t *testing.T) {
	c := newCollector([]string{"a", "b"}, []string{"events.a", "events.b"}, 10, 1<<20, eventfilter.Filter{})
	c.addMsg(msg(3, "events.a", "", "one\r\ntwo"), "ep")
	c.addMsg(msg(5, "events.b", "order.paid", "{}"), "ep")
	a := c.answer("ep", 9)
	if len(a.Events) != 2 || a.More || a.LastID != "9-ep" {
		t.Fatalf("answer %+v", a)
	}
	want := Event{ID: "3-ep", Channel: "a", Event: "message", Data: "one\ntwo", Time: "2026-12-03T09:00:00.000000003Z"}
	if a.Events[0] != want {
		t.Fatalf("event %+v, want %+v", a.Events[0], want)
	}
	if e := a.Events[1]; e.Event != "order.paid" || e.Channel != "b" || e.ID != "5-ep" {
		t.Fatalf("named event %+v", e)
	}
	b, _ := json.Marshal(c.answer("ep", 9))
	for _, key := range []string{`"events":[`, `"last_id":"9-ep"`, `"more":false`, `"id":"3-ep"`, `"channel":"a"`, `"event":"message"`, `"data":"one\ntwo"`, `"time":"2026-12-03T09:00:00.000000003Z"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
	if strings.Contains(string(b), "reset") {
		t.Errorf("%s has a reset", b)
	}
}

// TestAnswerWithoutEvents: an empty answer has "events": [], not null,
// and the position reached.
func TestAnswerWithoutEvents(t *testing.T) {
	b, _ := json.Marshal(newCollector(nil, nil, 10, 1<<20, eventfilter.Filter{}).answer("ep", 7))
	if string(b) != `{"events":[],"last_id":"7-ep","more":false}` {
		t.Fatalf("empty answer %s", b)
	}
}

// TestAnswerStopsAtLimitAndByteCap: an answer takes at most limit events
// and about max_bytes of them; it then says more, and its last_id is its
// last event's, so the next page starts right after it. The first event
// always fits, however large.
func TestAnswerStopsAtLimitAndByteCap(t *testing.T) {
	fill := func(c *collector, n int, size int) int {
		taken := 0
		for i := range n {
			if !c.addMsg(msg(uint64(i+1), "events.a", "", strings.Repeat("x", size)), "ep") {
				break
			}
			taken++
		}
		return taken
	}
	c := newCollector([]string{"a"}, []string{"events.a"}, 3, 1<<20, eventfilter.Filter{})
	if n := fill(c, 10, 10); n != 3 || !c.more || c.answer("ep", 10).LastID != "3-ep" {
		t.Fatalf("limit: took %d, more %v, last %s", n, c.more, c.answer("ep", 10).LastID)
	}
	c = newCollector([]string{"a"}, []string{"events.a"}, 100, 1000, eventfilter.Filter{})
	n := fill(c, 10, 300)
	a := c.answer("ep", 10)
	if n != 3 || !a.More || a.LastID != "3-ep" {
		t.Fatalf("byte cap: took %d, %+v", n, a.LastID)
	}
	c = newCollector([]string{"a"}, []string{"events.a"}, 100, 1000, eventfilter.Filter{})
	if n := fill(c, 2, 5000); n != 1 || !c.more {
		t.Fatalf("a first event larger than the cap: took %d", n)
	}
}

// TestFilteredAnswerMovesOnlyWithItsEvents: with a filter, the position
// stays where it was asked for when every event is dropped, and moves to
// the last kept one otherwise.
func TestFilteredAnswerMovesOnlyWithItsEvents(t *testing.T) {
	f, _ := eventfilter.Parse(map[string][]string{"event": {"keep"}})
	c := newCollector([]string{"a"}, []string{"events.a"}, 10, 1<<20, f)
	c.floor = 4
	c.addMsg(msg(5, "events.a", "drop", "x"), "ep")
	if a := c.answer("ep", 9); len(a.Events) != 0 || a.LastID != "4-ep" {
		t.Fatalf("all dropped: %+v", a)
	}
	c.addMsg(msg(6, "events.a", "keep", "y"), "ep")
	c.addMsg(msg(7, "events.a", "drop", "z"), "ep")
	if a := c.answer("ep", 9); len(a.Events) != 1 || a.LastID != "6-ep" {
		t.Fatalf("one kept: %+v", a)
	}
}

// TestWriteAnswer: JSON with its length, not cached, twice in a row from
// one server (the second answer from the pooled buffer, unchecked here).
func TestWriteAnswer(t *testing.T) {
	s := NewServer(nil)
	for range 2 {
		w := httptest.NewRecorder()
		s.writeAnswer(w, Answer{Events: []Event{{ID: "1-e", Channel: "a", Event: "message", Data: "d"}}, LastID: "1-e"})
		body := w.Body.String()
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" ||
			w.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Fatalf("%d %v %q", w.Code, w.Header(), body)
		}
		var a Answer
		if err := json.Unmarshal([]byte(body), &a); err != nil || a.LastID != "1-e" || len(a.Events) != 1 {
			t.Fatalf("body %q: %v", body, err)
		}
	}
}
