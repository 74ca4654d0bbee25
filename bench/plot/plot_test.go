package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlotsAreCurrent fails when a committed plot differs from what the
// committed data draws: after changing either, run go run ./bench/plot.
func TestPlotsAreCurrent(t *testing.T) {
	out := t.TempDir()
	if err := generate("data", out); err != nil {
		t.Fatal(err)
	}
	for _, p := range plots {
		want, err := os.ReadFile(filepath.Join(out, p.svg))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", "plots", p.svg))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("bench/plots/%s is not what bench/plot/data/%s draws; run go run ./bench/plot", p.svg, p.data)
		}
		if !bytes.HasPrefix(want, []byte("<svg ")) || bytes.Contains(want, []byte("NaN")) || bytes.Contains(want, []byte("Inf")) {
			t.Errorf("%s is not a clean SVG", p.svg)
		}
	}
}

// sseloadOutput is bench/sseload -compare's output for one run, as
// report.go prints it, ratio row included.
const sseloadOutput = `building...
# broadcast, h2c, 5000 streams over 25 connections, rate 40/s, duration 20s, workdir /tmp/x

| server | delivered/s | p50 | p99 | loss | drain | server CPU per delivery | RSS per idle stream |
|---|---|---|---|---|---|---|---|
| raw | 160000 | 2200.0 ms | 6230.0 ms | 249233 | 1m0s | 8.90 µs | 13.1 KiB |
| ssegate=/tmp/now | 198000 | 137.0 ms | 315.0 ms | 0 | 190ms | 7.30 µs | 23.5 KiB |
| ssegate=/tmp/now/raw | 1.24 | 0.06 | 0.05 | | | 0.82 | 1.79 |
`

func TestParseLoad(t *testing.T) {
	runs, err := parseLoad(strings.NewReader("run: label\n" + sseloadOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	r := runs[0]
	if r.label != "label" || r.scenario != "broadcast" || r.proto != "h2c" || r.streams != 5000 || r.rate != 40 {
		t.Errorf("header: %+v", r)
	}
	if len(r.servers) != 2 || r.servers[1] != "ssegate=/tmp/now" {
		t.Errorf("servers %q, want raw and ssegate=/tmp/now (no ratio row)", r.servers)
	}
	for _, c := range []struct {
		server, column string
		want           float64
	}{{"raw", "delivered/s", 160000}, {"raw", "p99", 6230}, {"ssegate=/tmp/now", "RSS per idle stream", 23.5}, {"ssegate=/tmp/now", "server CPU per delivery", 7.3}} {
		if v, ok := r.value(c.server, c.column); !ok || v != c.want {
			t.Errorf("%s %s = %v %v, want %v", c.server, c.column, v, ok, c.want)
		}
	}
	if _, ok := r.value("raw", "nope"); ok {
		t.Error("a missing column reads as a value")
	}
}

func TestParseLoadRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"bad header":       "# something else\n",
		"row before table": "| raw | 1 |\n",
	} {
		if _, err := parseLoad(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseBench(t *testing.T) {
	in := "run: a\nBenchmarkPerUserChannels/5000-2 1 0.90 subscribe_s 0.42 recover_after_restart_s\nPASS\n" +
		"BenchmarkPerUserChannels/20000 1 1.96 recover_after_restart_s\n"
	runs, err := parseBench(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].n != 5000 || runs[0].label != "a" || runs[0].metrics["recover_after_restart_s"] != 0.42 || runs[1].n != 20000 {
		t.Fatalf("%+v", runs)
	}
	if _, err := parseBench(strings.NewReader("BenchmarkX/1-2 1 0.5\n")); err == nil {
		t.Error("an odd metric list parsed")
	}
}
