package eventfilter

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ssegate/ssegate/sse"
)

func TestFilterPassesByDeliveredName(t *testing.T) {
	f, err := Parse(url.Values{"event": {"order.paid", "message"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		want bool
	}{
		{"order.paid", true},
		{"", true}, // unnamed is "message"
		{"order.created", false},
		{"order.paid\r\n", true}, // the encoder strips what a browser would not see
	}
	for _, c := range cases {
		frame := sse.AppendEvent(nil, sse.Event{ID: "5-abcd", Name: c.name, Data: []byte("event: order.paid")})
		if got := f.PassesFrame(frame); got != c.want {
			t.Errorf("frame of %q: %v, want %v", c.name, got, c.want)
		}
		if c.name != "order.paid\r\n" && f.Passes(c.name) != c.want {
			t.Errorf("name %q: want %v", c.name, c.want)
		}
	}
	if all := (Filter{}); !all.PassesFrame([]byte("id: 1\ndata: x\n\n")) || all.Active() {
		t.Error("the zero filter must pass everything")
	}
}

func TestParseRefusesBadNames(t *testing.T) {
	for _, v := range [][]string{{""}, {strings.Repeat("x", MaxNameLen+1)}, {"a\nb"}, make([]string, MaxNames+1)} {
		if _, err := Parse(url.Values{"event": v}); err == nil {
			t.Errorf("Parse(%q) accepted", v)
		}
	}
}
