package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// loadRun is one bench/sseload -compare run: its header line and its
// table, one row per server.
type loadRun struct {
	label    string // from a "run:" line before it, if any
	scenario string
	proto    string
	streams  int
	rate     float64
	servers  []string
	cells    map[string]map[string]string // server → column → cell
}

// value is a cell of the run's table as a number in the unit sseload
// prints it in (ms, KiB, µs or none), and whether it was recorded.
func (r *loadRun) value(server, column string) (float64, bool) {
	cell := strings.TrimSpace(r.cells[server][column])
	for _, unit := range []string{" ms", " KiB", " µs"} {
		cell = strings.TrimSuffix(cell, unit)
	}
	v, err := strconv.ParseFloat(cell, 64)
	return v, err == nil
}

// runHeader is the first line sseload -compare prints for a run.
var runHeader = regexp.MustCompile(`^# (\w+), (\w+), (\d+) streams(?: over \d+ connections)?, rate ([0-9.]+)/s`)

// parseLoad reads saved bench/sseload -compare output. Lines that are
// neither a run's header, a "run: <label>" line nor a table row are
// comments.
func parseLoad(r io.Reader) ([]*loadRun, error) {
	var runs []*loadRun
	var cur *loadRun
	var columns []string
	label := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "run:"):
			label = strings.TrimSpace(strings.TrimPrefix(line, "run:"))
		case strings.HasPrefix(line, "# "):
			m := runHeader.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: not an sseload run header: %q", n, line)
			}
			streams, _ := strconv.Atoi(m[3])
			rate, _ := strconv.ParseFloat(m[4], 64)
			cur = &loadRun{label: label, scenario: m[1], proto: m[2], streams: streams, rate: rate, cells: map[string]map[string]string{}}
			runs, label, columns = append(runs, cur), "", nil
		case strings.HasPrefix(line, "|---"):
		case strings.HasPrefix(line, "| server |"):
			columns = tableCells(line)
		case strings.HasPrefix(line, "|"):
			if cur == nil || columns == nil {
				return nil, fmt.Errorf("line %d: a table row outside a run's table", n)
			}
			addRow(cur, columns, tableCells(line))
		}
	}
	return runs, sc.Err()
}

// addRow records one server's row; sseload's ratio rows ("ssegate/raw")
// are left out, since the plots draw both servers.
func addRow(r *loadRun, columns, cells []string) {
	server := cells[0]
	if strings.HasSuffix(server, "/raw") {
		return
	}
	row := map[string]string{}
	for i, c := range columns {
		if i < len(cells) {
			row[c] = cells[i]
		}
	}
	if _, seen := r.cells[server]; !seen {
		r.servers = append(r.servers, server)
	}
	r.cells[server] = row
}

func tableCells(line string) []string {
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// benchRun is one line of `go test -bench` output for a sub-benchmark
// named by a number (BenchmarkPerUserChannels/5000), with its metrics.
type benchRun struct {
	label   string
	n       float64
	metrics map[string]float64
}

var benchLine = regexp.MustCompile(`^Benchmark\w+/(\d+)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBench reads saved go test -bench output, with "run: <label>" lines
// naming the runs that follow.
func parseBench(r io.Reader) ([]benchRun, error) {
	var runs []benchRun
	label := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if l, ok := strings.CutPrefix(line, "run:"); ok {
			label = strings.TrimSpace(l)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		size, _ := strconv.ParseFloat(m[1], 64)
		fields := strings.Fields(m[2])
		if len(fields)%2 != 0 {
			return nil, fmt.Errorf("line %d: metrics are not value-unit pairs: %q", n, m[2])
		}
		br := benchRun{label: label, n: size, metrics: map[string]float64{}}
		for i := 0; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %q is not a number", n, fields[i])
			}
			br.metrics[fields[i+1]] = v
		}
		runs = append(runs, br)
	}
	return runs, sc.Err()
}
