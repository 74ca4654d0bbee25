package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 21, 22, 30, 0, 123, time.UTC).UnixNano()
	for _, n := range []int64{1, 42, 9999999999} {
		b := appendPayload(nil, ts, n)
		if len(b) != payloadSize {
			t.Fatalf("payload %q is %d bytes, want %d", b, len(b), payloadSize)
		}
		gotTS, gotN, ok := parsePayload(b)
		if !ok || gotTS != ts || gotN != uint64(n) {
			t.Fatalf("parsePayload(%q) = %d %d %v, want %d %d", b, gotTS, gotN, ok, ts, n)
		}
	}
	for _, bad := range []string{"", "123", "abc 1 x", "123 x"} {
		if _, _, ok := parsePayload([]byte(bad)); ok {
			t.Errorf("parsePayload(%q) accepted", bad)
		}
	}
}

func TestHistogramQuantilesWithinBucketWidth(t *testing.T) {
	var h hist
	// 1 µs to 10 s, evenly spread on a log scale.
	const n = 100000
	for i := range n {
		h.add(time.Duration(math.Pow(10, 7*float64(i)/n)) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := math.Pow(10, 7*q) // µs
		got := float64(h.quantile(q)) / float64(time.Microsecond)
		if math.Abs(got-want)/want > 0.04 {
			t.Errorf("p%g = %.1f µs, want %.1f µs within 4%%", q*100, got, want)
		}
	}
	var empty hist
	if empty.quantile(0.99) != 0 || empty.count() != 0 {
		t.Error("an empty histogram reports samples")
	}
}

func TestReadEventsTakesLinesLongerThanItsBuffer(t *testing.T) {
	long := strings.Repeat("y", 10000)
	wire := ": comment\n\nid: 1\ndata: a\n\nid: 2\ndata: " + long + "\n\n"
	var ids, datas []string
	err := readEvents(strings.NewReader(wire), 10, func(id, data []byte) {
		ids, datas = append(ids, string(id)), append(datas, string(data))
	})
	if err == nil || !strings.Contains(err.Error(), "ended") {
		t.Fatalf("err = %v, want the end of the stream", err)
	}
	if len(ids) != 2 || ids[1] != "2" || datas[0] != "a" || datas[1] != long {
		t.Fatalf("got ids %q and %d data, want 2 events with the long one intact", ids, len(datas))
	}
}

func TestChannelsFlagOnlyForUsers(t *testing.T) {
	for _, tc := range []struct {
		args string
		ok   bool
	}{
		{"-scenario users -n 10 -channels 1000", true},
		{"-scenario users -n 10", true},
		{"-scenario users -n 10 -channels -1", false},
		{"-scenario users -n 10 -channels 2000000", false},
		{"-scenario broadcast -n 10 -channels 1000", false},
	} {
		o := options{n: 10, proto: "h1", conns: 1, duration: time.Second, ramp: 1}
		o.cmp = compareOptions{servers: "raw", rate: 100, hold: time.Second}
		f := strings.Fields(tc.args)
		for i := 0; i+1 < len(f); i += 2 {
			switch f[i] {
			case "-scenario":
				o.cmp.scenario = f[i+1]
			case "-channels":
				_, _ = fmt.Sscan(f[i+1], &o.cmp.channels)
			}
		}
		if err := o.cmp.check(&o); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}

func TestPollModeOnlyForSsegateOverHTTP1(t *testing.T) {
	for _, tc := range []struct {
		servers, modes, proto, scenario string
		ok                              bool
	}{
		{"ssegate", "stream,poll", "h1", "idle", true},
		{"ssegate,ssegate=/tmp/x", "poll", "h1", "users", true},
		{"ssegate", "", "h2c", "users", true},
		{"raw,ssegate", "poll", "h1", "idle", false},
		{"ssegate", "poll", "h2c", "idle", false},
		{"ssegate", "poll", "h1", "churn", false},
		{"ssegate", "sse", "h1", "idle", false},
	} {
		o := options{n: 10, proto: tc.proto, conns: 1, duration: time.Second, ramp: 1}
		o.cmp = compareOptions{servers: tc.servers, modes: tc.modes, scenario: tc.scenario, rate: 100, hold: time.Second, pollWait: 25 * time.Second}
		if err := o.cmp.check(&o); (err == nil) != tc.ok {
			t.Errorf("%+v: err = %v, want ok %v", tc, err, tc.ok)
		}
	}
}
