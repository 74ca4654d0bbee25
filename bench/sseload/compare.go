package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// compareOptions configure a -compare run: the same load against each
// server in turn, each a fresh process with a fresh nats-server.
type compareOptions struct {
	servers      string
	modes        string
	pollWait     time.Duration
	scenario     string
	rate         float64
	channels     int
	hold         time.Duration
	settle       time.Duration
	drain        time.Duration
	repo         string
	workdir      string
	bindir       string
	noBuild      bool
	cpuProfile   string
	handlerExtra string
}

func (c *compareOptions) check(o *options) error {
	switch c.scenario {
	case "broadcast", "users", "idle", "churn":
	default:
		return fmt.Errorf("-scenario %q: want broadcast, users, idle or churn", c.scenario)
	}
	for _, s := range c.serverList() {
		kind, dir, _ := strings.Cut(s, "=")
		switch {
		case kind == "floor" && (dir == "" || c.scenario != "idle"):
			return fmt.Errorf("-servers: %q: floor=<dir with a caddy built from bench/caddyfloor>, and only with -scenario idle: its streams get no events", s)
		case kind != "raw" && kind != "ssegate" && kind != "floor":
			return fmt.Errorf("-servers: unknown server %q (want raw, ssegate, ssegate=<dir with another caddy binary> or floor=<dir>)", s)
		}
	}
	for _, m := range c.modeList() {
		if m != "stream" && m != "poll" {
			return fmt.Errorf("-modes: unknown mode %q (want stream or poll)", m)
		}
		if m == "poll" && (c.pollWait <= 0 || c.pollWait > time.Hour) {
			return errors.New("-poll-wait must be positive and at most 1h")
		}
		if m == "poll" && (o.proto != "h1" || c.scenario == "churn") {
			return errors.New("-modes poll: polls are HTTP/1.1 request loops (-proto h1), not with -scenario churn")
		}
		for _, s := range c.serverList() {
			if m == "poll" && !strings.HasPrefix(s, "ssegate") {
				return fmt.Errorf("-modes poll: only ssegate long-polls, not %q", s)
			}
		}
	}
	if c.scenario != "idle" && (c.rate <= 0 || c.rate > 1e6) {
		return errors.New("-rate must be positive and at most 1e6")
	}
	if c.channels < 0 || c.channels > 1e6 || (c.channels > 0 && c.scenario != "users") {
		return errors.New("-channels is for -scenario users, at most 1e6")
	}
	if c.scenario == "churn" && o.proto != "h1" {
		return errors.New("churn opens and closes connections: use -proto h1")
	}
	if c.hold <= 0 || c.hold > time.Minute || c.settle < 0 || c.settle > time.Minute || c.drain < 0 || c.drain > 5*time.Minute {
		return errors.New("-hold (0,1m], -settle [0,1m] and -drain [0,5m] are bounded")
	}
	return nil
}

func (c *compareOptions) serverList() []string { return strings.Split(c.servers, ",") }

func (c *compareOptions) modeList() []string { return strings.Split(cmp.Or(c.modes, "stream"), ",") }

// figures is what one server did under one load.
type figures struct {
	server     string
	mode       string
	waiting    int // polls the server counted as waiting, after the settle
	opened     int64
	rssBefore  int64
	rssPerConn float64 // bytes of RSS per idle stream
	idleCPU    time.Duration
	idleWindow time.Duration // the server's CPU over it, with the clients idle
	memBefore  memStats
	memIdle    memStats
	published  int64
	expected   int64
	window     time.Duration
	inWindow   int64 // deliveries while publishing
	delivered  int64 // deliveries in all, after the drain
	drainTime  time.Duration
	dups       int64
	lat        hist
	serverCPU  time.Duration
	windowCPU  time.Duration // the server's CPU while publishing
	stored     int64         // messages in the stream after the drain
	apiCalls   int64         // JetStream API requests from the start of publishing to the end of the drain
	natsCPU    time.Duration
	clientCPU  time.Duration
	errs       map[string]int64
	churn      *churnFigures
}

func (f *figures) loss() int64 { return max(f.expected-(f.delivered-f.dups), 0) }

func runCompare(o options, out io.Writer) error {
	c := o.cmp
	raiseFileLimit(out)
	if c.workdir == "" {
		dir, err := os.MkdirTemp("", "sseload-compare-")
		if err != nil {
			return err
		}
		c.workdir = dir
	}
	if c.bindir == "" {
		c.bindir = filepath.Join(c.workdir, "bin")
	}
	// The servers run in their work directories, so their paths must not
	// be relative.
	var err error
	if c.workdir, err = filepath.Abs(c.workdir); err != nil {
		return err
	}
	if c.bindir, err = filepath.Abs(c.bindir); err != nil {
		return err
	}
	o.cmp = c
	if err := os.MkdirAll(c.bindir, 0o755); err != nil {
		return err
	}
	if err := build(c.repo, c.bindir, c.noBuild, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "# %s, %s, %d streams", c.scenario, o.proto, o.n)
	if o.proto == "h2c" {
		fmt.Fprintf(out, " over %d connections", o.conns)
	}
	fmt.Fprintf(out, ", rate %g/s, duration %v, workdir %s\n", c.rate, o.duration, c.workdir)
	var all []*figures
	for _, name := range c.serverList() {
		for _, mode := range c.modeList() {
			f, err := runOne(o, name, mode)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", name, mode, err)
			}
			all = append(all, f)
			printFigures(out, o, f)
		}
	}
	printTable(out, o, all)
	return nil
}

func runOne(o options, name, mode string) (*figures, error) {
	kind, bindir, other := strings.Cut(name, "=")
	label := kind
	if other {
		label = kind + "@" + filepath.Base(bindir)
		abs, err := filepath.Abs(bindir)
		if err != nil {
			return nil, err
		}
		bindir = abs
	} else {
		bindir = o.cmp.bindir
	}
	if len(o.cmp.modeList()) > 1 {
		label += " " + mode
	}
	t, err := startTarget(kind, label, bindir, o.cmp.workdir, o.cmp.handlerExtra)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	// Let the new process finish starting before its baseline is read.
	time.Sleep(time.Second)
	if o.cmp.scenario == "churn" {
		return runChurn(o, t)
	}
	return runLoad(o, t, mode)
}

// raiseFileLimit lifts the soft limit on open files to the hard limit, for
// this process and the servers it starts.
func raiseFileLimit(out io.Writer) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		fmt.Fprintln(out, "# cannot raise RLIMIT_NOFILE:", err)
	}
}

func clientsFor(ctx context.Context, o options, url string) ([]*http.Client, error) {
	if o.proto == "h1" {
		return []*http.Client{newClient("h1")}, nil
	}
	clients := make([]*http.Client, o.conns)
	for i := range clients {
		clients[i] = newClient("h2c")
		if err := warm(ctx, clients[i], url); err != nil {
			return nil, err
		}
	}
	return clients, nil
}

// runLoad opens the streams, reads the server's RSS before and after, and,
// unless the scenario is idle, publishes at the rate for -duration and
// waits up to -drain for what is still queued.
func runLoad(o options, t *target, mode string) (*figures, error) {
	c := o.cmp
	f := &figures{server: t.name, mode: mode}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+c.drain+c.settle+10*time.Minute)
	defer cancel()
	channels := channelsFor(c, o.n)
	clients, err := clientsFor(ctx, o, t.url(channels[0]))
	if err != nil {
		return nil, err
	}
	open, url := (*streamSet).open, t.url
	if mode == "poll" {
		open, clients = (*streamSet).poll, []*http.Client{pollClient(o.n)}
		url = func(ch string) string { return t.pollURL(ch) + "&wait=" + c.pollWait.String() }
	}
	if f.rssBefore, err = vmRSS(t.srv.pid()); err != nil {
		return nil, err
	}
	if f.memBefore, err = readMemStats(t.pprof); err != nil {
		return nil, err
	}
	set := openStreams(ctx, clients, o.n, o.ramp,
		func(i int) string { return url(channels[i%len(channels)]) },
		func(i int) int { return i % len(channels) }, open)
	f.opened = set.opened.Load()
	time.Sleep(c.settle)
	if err := f.readIdle(c, t); err != nil {
		return nil, err
	}
	if c.scenario == "idle" {
		err = f.readIdleCPU(c, t, o.duration)
	} else {
		err = publishAndDrain(ctx, o, t, set, channels, f)
	}
	if err != nil {
		return nil, err
	}
	cancel()
	set.readers.Wait()
	f.collect(set)
	return f, nil
}

// channelsFor is the one channel every client reads, or for the users
// scenario a channel each (or -channels of them, shared in turn).
func channelsFor(c compareOptions, n int) []string {
	if c.scenario != "users" {
		return []string{"bench"}
	}
	channels := make([]string, cmp.Or(c.channels, n))
	for i := range channels {
		channels[i] = fmt.Sprintf("user%d", i)
	}
	return channels
}

// readIdle reads what the open streams (or waiting polls) cost the
// server's memory once they settled.
func (f *figures) readIdle(c compareOptions, t *target) error {
	rss, err := vmRSS(t.srv.pid())
	if err != nil {
		return err
	}
	if f.opened > 0 {
		f.rssPerConn = float64(rss-f.rssBefore) / float64(f.opened)
	}
	if f.memIdle, err = readMemStats(t.pprof); err != nil {
		return err
	}
	if f.mode == "poll" {
		if f.waiting, err = pollsWaiting(t); err != nil {
			return err
		}
	}
	if c.cpuProfile != "" {
		return heapProfile(t.pprof, c.cpuProfile+"-"+t.name+"-idle.heap")
	}
	return nil
}

// readIdleCPU reads what idle clients cost the server's CPU over d:
// heartbeats for streams, the re-polls after each wait for polls.
func (f *figures) readIdleCPU(c compareOptions, t *target, d time.Duration) error {
	pid := t.srv.pid()
	cpu0, _ := cpuTime(pid)
	var err error
	if c.cpuProfile != "" {
		err = cpuProfile(t.pprof, d, c.cpuProfile+"-"+t.name+"-idle.pprof")
	} else {
		time.Sleep(d)
	}
	cpu1, _ := cpuTime(pid)
	f.idleCPU, f.idleWindow = cpu1-cpu0, d
	return err
}

// collect adds up what the clients saw once they stopped.
func (f *figures) collect(set *streamSet) {
	for _, s := range set.streams {
		if s != nil {
			f.lat.merge(&s.hist)
			f.dups += s.dups
		}
	}
	f.errs = set.errors()
}

func publishAndDrain(ctx context.Context, o options, t *target, set *streamSet, channels []string, f *figures) error {
	c := o.cmp
	pub := newPublisher(t.pub, channels)
	srv0, _ := cpuTime(t.srv.pid())
	nats0, _ := cpuTime(t.nats.pid())
	api0, apiErr := apiRequests(t.monitor)
	self0 := selfCPU()
	profiled := make(chan error, 1)
	if c.cpuProfile != "" {
		// The middle half of the window: no ramp, no tail.
		go func() {
			time.Sleep(o.duration / 4)
			profiled <- cpuProfile(t.pprof, o.duration/2, c.cpuProfile+"-"+t.name+".pprof")
		}()
	} else {
		profiled <- nil
	}
	start := time.Now()
	if err := pub.run(ctx, c.rate, o.duration); err != nil {
		return err
	}
	f.window = time.Since(start)
	f.inWindow = set.delivered()
	srvw, _ := cpuTime(t.srv.pid())
	f.windowCPU = srvw - srv0
	f.published = pub.total
	for _, s := range set.streams {
		if s != nil && s.open {
			f.expected += pub.counts[s.channel]
		}
	}
	end := time.Now()
	for set.delivered() < f.expected && time.Since(end) < c.drain {
		time.Sleep(20 * time.Millisecond)
	}
	f.drainTime = time.Since(end)
	f.delivered = set.delivered()
	srv1, _ := cpuTime(t.srv.pid())
	nats1, _ := cpuTime(t.nats.pid())
	api1, err := apiRequests(t.monitor)
	if err = errors.Join(apiErr, err); err != nil {
		return err
	}
	f.apiCalls = api1 - api0
	f.serverCPU, f.natsCPU, f.clientCPU = srv1-srv0, nats1-nats0, selfCPU()-self0
	// Publishes are not acked: what nats-server could not store is lost
	// before any server sees it, and shows here.
	if f.stored, err = t.storedMsgs(ctx); err != nil {
		return err
	}
	return <-profiled
}
