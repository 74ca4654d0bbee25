package sse

import (
	"bytes"
	"testing"
)

func TestDecodeReadsWhatAppendEventWrote(t *testing.T) {
	cases := []struct {
		in   Event
		want string
	}{
		{Event{ID: "7-abcd", Name: "update", Data: []byte("one")}, "one"},
		{Event{ID: "8", Data: []byte("a\r\nb\rc\nd")}, "a\nb\nc\nd"},
		{Event{ID: "9", Name: "x", Data: nil}, ""},
		{Event{ID: "10", Data: []byte("data: inner: colon")}, "data: inner: colon"},
		{Event{ID: "11", Data: []byte("bad \xff utf8")}, "bad \uFFFD utf8"},
	}
	for _, c := range cases {
		got := Decode(AppendEvent(nil, c.in))
		if got.ID != c.in.ID || got.Name != c.in.Name || !bytes.Equal(got.Data, []byte(c.want)) {
			t.Errorf("Decode(AppendEvent(%+v)) = %+v, want data %q", c.in, got, c.want)
		}
	}
}
