// Command plot draws the SVG plots of BENCHMARKS.md from saved load-tool
// output: bench/sseload -compare runs (broadcast rates, idle memory) and
// go test -bench output (recovery after a NATS restart).
//
//	go run ./bench/plot                      # bench/plot/data → bench/plots
//	go run ./bench/plot -data DIR -out DIR
//
// To add a run, append sseload's output as it printed it to the data file
// (a "run: <label>" line before it names it in the plot), and run it again.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	data := flag.String("data", filepath.Join("bench", "plot", "data"), "directory of saved load-tool output")
	out := flag.String("out", filepath.Join("bench", "plots"), "directory the SVG files are written to")
	flag.Parse()
	if err := generate(*data, *out); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

// plots are the figures, each drawn from one data file.
var plots = []struct {
	data, svg string
	draw      func(path string) ([]byte, error)
}{
	{"broadcast-h1.txt", "broadcast-h1.svg", broadcastPlot("Broadcast, HTTP/1.1, 5,000 clients")},
	{"broadcast-h2c.txt", "broadcast-h2c.svg", broadcastPlot("Broadcast, h2c, 5,000 streams on 25 connections")},
	{"idle.txt", "idle-memory.svg", idlePlot},
	{"recovery.txt", "recovery.svg", recoveryPlot},
}

func generate(dataDir, outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	for _, p := range plots {
		img, err := p.draw(filepath.Join(dataDir, p.data))
		if err != nil {
			return fmt.Errorf("%s: %w", p.data, err)
		}
		if err := os.WriteFile(filepath.Join(outDir, p.svg), img, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func loadRuns(path string) ([]*loadRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	runs, err := parseLoad(f)
	if err == nil && len(runs) == 0 {
		err = fmt.Errorf("no sseload runs in %s", path)
	}
	return runs, err
}

// broadcastPlot draws delivered events/s and p99 latency against the
// publish rate, one line per server.
func broadcastPlot(title string) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		runs, err := loadRuns(path)
		if err != nil {
			return nil, err
		}
		var delivered, p99 []series
		var rates, rps, lats []float64
		for i, server := range serversOf(runs) {
			d := series{name: server, color: colorOf(server, i)}
			l := d
			for _, r := range runs {
				v, ok1 := r.value(server, "delivered/s")
				lat, ok2 := r.value(server, "p99")
				if ok1 && ok2 {
					d.points = append(d.points, point{x: r.rate, y: v, lo: v, hi: v})
					l.points = append(l.points, point{x: r.rate, y: lat, lo: lat, hi: lat})
					rates, rps, lats = append(rates, r.rate), append(rps, v), append(lats, lat)
				}
			}
			delivered, p99 = append(delivered, d), append(p99, l)
		}
		if len(rates) == 0 {
			return nil, fmt.Errorf("no run has delivered/s and p99")
		}
		x := logAxis("events published per second (log)", rates, count)
		left := chart{title: title + ": delivered", x: x, series: delivered, w: 480, h: 340, legendLeft: true,
			y: axis{label: "events delivered per second", min: 0, max: slices.Max(rps) * 1.1, format: count}}
		right := chart{title: "p99, publish to receipt", x: x, series: p99, ox: 480, w: 480, h: 340, legendLeft: true,
			y: logAxis("p99 latency (log)", lats, millis)}
		return svg(960, 340, func(b *strings.Builder) { left.render(b); right.render(b) }), nil
	}
}

// idlePlot draws the memory each idle stream holds, by run and server.
func idlePlot(path string) ([]byte, error) {
	runs, err := loadRuns(path)
	if err != nil {
		return nil, err
	}
	c := bars{title: "Memory per idle stream (RSS growth ÷ streams)", unit: "KiB per stream",
		servers: serversOf(runs), values: map[string]map[string]float64{}, w: 640, h: 340}
	for _, r := range runs {
		group := r.label
		if group == "" {
			group = r.proto
		}
		c.groups = append(c.groups, group)
		c.values[group] = map[string]float64{}
		for _, s := range r.servers {
			if v, ok := r.value(s, "RSS per idle stream"); ok {
				c.values[group][s] = v
			}
		}
	}
	return svg(c.w, c.h, c.render), nil
}

// recoveryPlot draws the time from a NATS restart to the last channel
// released, against the number of channels: the median of the runs, with
// a bar from the fastest to the slowest.
func recoveryPlot(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	runs, err := parseBench(f)
	if err != nil {
		return nil, err
	}
	const metric = "recover_after_restart_s"
	var labels []string
	byLabel := map[string]map[float64][]float64{}
	var ns, all []float64
	for _, r := range runs {
		v, ok := r.metrics[metric]
		if !ok {
			continue
		}
		if byLabel[r.label] == nil {
			labels, byLabel[r.label] = append(labels, r.label), map[float64][]float64{}
		}
		byLabel[r.label][r.n] = append(byLabel[r.label][r.n], v)
		ns, all = append(ns, r.n), append(all, v)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no %s in %s", metric, path)
	}
	c := chart{title: "Recovery after a NATS restart, one stream per channel", w: 640, h: 360, legendLeft: true,
		x: logAxis("channels, one client each (log)", ns, count), y: logAxis("seconds to recover (log)", all, seconds)}
	for i, l := range labels {
		s := series{name: l, color: colorOf(l, i+1)}
		for _, n := range sortedKeys(byLabel[l]) {
			v := slices.Sorted(slices.Values(byLabel[l][n]))
			median := (v[(len(v)-1)/2] + v[len(v)/2]) / 2
			s.points = append(s.points, point{x: n, y: median, lo: v[0], hi: v[len(v)-1]})
		}
		c.series = append(c.series, s)
	}
	return svg(c.w, c.h, c.render), nil
}

// serversOf lists the servers of all runs in the order they first appear.
func serversOf(runs []*loadRun) []string {
	var out []string
	for _, r := range runs {
		for _, s := range r.servers {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func sortedKeys(m map[float64][]float64) []float64 {
	var out []float64
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// logAxis spans whole decades around the values.
func logAxis(label string, values []float64, format func(float64) string) axis {
	lo, hi := slices.Min(values), slices.Max(values)
	return axis{label: label, log: true, format: format,
		min: math.Pow(10, math.Floor(math.Log10(lo))), max: math.Pow(10, math.Ceil(math.Log10(hi)-1e-9))}
}

func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func millis(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%g s", v/1000)
	}
	return fmt.Sprintf("%g ms", v)
}

func seconds(v float64) string { return fmt.Sprintf("%g s", v) }
