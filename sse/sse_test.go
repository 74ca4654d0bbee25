package sse_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/ssegate/ssegate/sse"
)

// parse reads frames with an independent, spec-conformant parser, so the
// tests check what a client sees rather than the bytes we meant to write.
func parse(t *testing.T, wire []byte) []gosse.Event {
	t.Helper()
	var out []gosse.Event
	for ev, err := range gosse.Read(bytes.NewReader(wire), nil) {
		if err != nil {
			t.Fatalf("parse %q: %v", wire, err)
		}
		out = append(out, ev)
	}
	return out
}

func TestAppendEventRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		ev       sse.Event
		wantData string
		wantID   string
		wantType string
	}{
		{"plain", sse.Event{ID: "7", Data: []byte("hello")}, "hello", "7", ""},
		{"named", sse.Event{ID: "8", Name: "update", Data: []byte("{}")}, "{}", "8", "update"},
		{"empty data", sse.Event{ID: "9"}, "", "9", ""},
		{"LF", sse.Event{Data: []byte("a\nb")}, "a\nb", "", ""},
		{"CR", sse.Event{Data: []byte("a\rb")}, "a\nb", "", ""},
		{"CRLF", sse.Event{Data: []byte("a\r\nb")}, "a\nb", "", ""},
		{"LFCR is two breaks", sse.Event{Data: []byte("a\n\rb")}, "a\n\nb", "", ""},
		{"trailing LF", sse.Event{Data: []byte("a\n")}, "a\n", "", ""},
		{"only breaks", sse.Event{Data: []byte("\r\n\r\n")}, "\n\n", "", ""},
		{"field-like data", sse.Event{Data: []byte("id: 99\nevent: x\n\ndata: y")}, "id: 99\nevent: x\n\ndata: y", "", ""},
		{"leading space kept", sse.Event{Data: []byte(" x")}, " x", "", ""},
		{"leading colon", sse.Event{Data: []byte(":not a comment")}, ":not a comment", "", ""},
		{"utf8", sse.Event{ID: "é1", Name: "ünï", Data: []byte("日本語 ✓")}, "日本語 ✓", "é1", "ünï"},
		{"invalid utf8", sse.Event{Data: []byte("a\xffb")}, "a\uFFFDb", "", ""},
		{"id with breaks and NUL", sse.Event{ID: "1\r\n2\x003", Data: []byte("x")}, "x", "123", ""},
		{"name with breaks", sse.Event{Name: "up\ndate\r", Data: []byte("x")}, "x", "", "update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := sse.AppendEvent(nil, tt.ev)
			evs := parse(t, wire)
			if len(evs) != 1 {
				t.Fatalf("got %d events from %q, want 1", len(evs), wire)
			}
			if evs[0].Data != tt.wantData || evs[0].LastEventID != tt.wantID || evs[0].Type != tt.wantType {
				t.Errorf("got data=%q id=%q type=%q from %q; want %q %q %q",
					evs[0].Data, evs[0].LastEventID, evs[0].Type, wire, tt.wantData, tt.wantID, tt.wantType)
			}
		})
	}
}

func TestAppendCommentIsInvisible(t *testing.T) {
	var wire []byte
	wire = sse.AppendComment(wire, "hb")
	wire = sse.AppendComment(wire, "two\nlines\r\nhere")
	wire = sse.AppendComment(wire, "")
	wire = sse.AppendRetry(wire, 2500*time.Millisecond)
	if got := parse(t, wire); len(got) != 0 {
		t.Fatalf("comments and retry produced events: %+v from %q", got, wire)
	}
	if !strings.Contains(string(wire), "retry: 2500\n") {
		t.Errorf("retry field missing from %q", wire)
	}
}

func TestAppendIDMovesPositionWithoutEvent(t *testing.T) {
	wire := sse.AppendEvent(nil, sse.Event{ID: "5", Data: []byte("x")})
	wire = sse.AppendID(wire, "3")
	wire = sse.AppendEvent(wire, sse.Event{Data: []byte("y")})
	// The standard dispatches nothing for a block without data lines; go-sse
	// yields it anyway, so check the wire for the absence of data and the
	// parser for the carried id.
	if block := sse.AppendID(nil, "3"); strings.Contains(string(block), "data") {
		t.Fatalf("id block %q carries data", block)
	}
	evs := parse(t, wire)
	if last := evs[len(evs)-1]; last.Data != "y" || last.LastEventID != "3" {
		t.Errorf("event after rewind = %+v, want data y with last id 3", last)
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("1", "ev", []byte("a\r\nb\rc\nd"))
	f.Add("\x00", "\n", []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, id, name string, data []byte) {
		wire := sse.AppendEvent(nil, sse.Event{ID: id, Name: name, Data: data})
		evs := parse(t, wire)
		if len(evs) != 1 {
			t.Fatalf("got %d events from %q", len(evs), wire)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(strings.ToValidUTF8(string(data), "\uFFFD"))
		if evs[0].Data != want {
			t.Fatalf("data %q, want %q", evs[0].Data, want)
		}
	})
}

func BenchmarkAppendEvent(b *testing.B) {
	ev := sse.Event{ID: "123456", Name: "update", Data: bytes.Repeat([]byte("payload "), 32)}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = sse.AppendEvent(buf[:0], ev)
	}
}

// BenchmarkAppendEventLive encodes a frame as the live path does for the
// load tool's events: a stream-position id, no name, 64 bytes of data.
func BenchmarkAppendEventLive(b *testing.B) {
	ev := sse.Event{ID: "k3q9x2-1234567", Data: bytes.Repeat([]byte("x"), 64)}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = sse.AppendEvent(buf[:0], ev)
	}
}
