package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// cpuPer is the server's CPU per delivery.
func (f *figures) cpuPer() time.Duration {
	if f.delivered == 0 {
		return 0
	}
	return f.serverCPU / time.Duration(f.delivered)
}

func printFigures(out io.Writer, o options, f *figures) {
	fmt.Fprintf(out, "\n== %s\n", f.server)
	if f.churn != nil {
		printChurn(out, f)
		return
	}
	fmt.Fprintf(out, "streams     %d of %d opened; server RSS %.1f MiB before, %s per idle stream\n",
		f.opened, o.n, float64(f.rssBefore)/(1<<20), kib(f.rssPerConn))
	if n := float64(max(f.opened, 1)); f.opened > 0 {
		fmt.Fprintf(out, "per stream  Go heap %s, goroutine stacks %s, %.2f goroutines (Go MemStats after a forced GC)\n",
			kib(float64(f.memIdle.heapAlloc-f.memBefore.heapAlloc)/n), kib(float64(f.memIdle.stackInuse-f.memBefore.stackInuse)/n),
			float64(f.memIdle.goroutines-f.memBefore.goroutines)/n)
	}
	if f.mode == "poll" {
		fmt.Fprintf(out, "waiting     %d polls (ssegate_polls_waiting, after the settle)\n", f.waiting)
	}
	if f.idleWindow > 0 {
		fmt.Fprintf(out, "idle cpu    server %.2f s over %v (%.2f%% of one core)\n",
			f.idleCPU.Seconds(), f.idleWindow, f.idleCorePct())
	}
	if o.cmp.scenario != "idle" {
		fmt.Fprintf(out, "published   %d events in %v (%.0f/s)\n", f.published, f.window.Round(time.Millisecond), perSec(f.published, f.window))
		fmt.Fprintf(out, "delivered   %.0f/s while publishing; %d of %d expected after a %v drain; loss %d, repeated %d\n",
			perSec(f.inWindow, f.window), f.delivered, f.expected, f.drainTime.Round(time.Millisecond), f.loss(), f.dups)
		fmt.Fprintf(out, "latency     p50 %s  p90 %s  p99 %s  max %s (publish to receipt, %d samples)\n",
			ms(f.lat.quantile(0.5)), ms(f.lat.quantile(0.9)), ms(f.lat.quantile(0.99)), ms(f.lat.quantile(1)), f.lat.count())
		fmt.Fprintf(out, "jetstream   %d API requests while publishing and draining (the publisher sends none: it publishes with core NATS)\n", f.apiCalls)
		fmt.Fprintf(out, "cpu         server %.2f s (%.2f µs per delivery), nats-server %.2f s, load tool %.2f s\n",
			f.serverCPU.Seconds(), float64(f.cpuPer())/1e3, f.natsCPU.Seconds(), f.clientCPU.Seconds())
		// What the stream's rate costs a server, whether or not its clients
		// want the events: the figure for a gateway that receives it all.
		fmt.Fprintf(out, "stream      %d of %d published events stored; server %.2f µs per stored event, %.1f%% of one core while publishing\n",
			f.stored, f.published, float64(f.serverCPU)/1e3/float64(max(f.stored, 1)), 100*f.windowCPU.Seconds()/f.window.Seconds())
	}
	printErrors(out, f.errs)
}

func printErrors(out io.Writer, errs map[string]int64) {
	for e, n := range errs {
		fmt.Fprintf(out, "ERRORS      %d streams: %s\n", n, e)
	}
}

func printChurn(out io.Writer, f *figures) {
	cf := f.churn
	fmt.Fprintf(out, "connects    %d in %v (%.0f/s), %d failed; open p50 %s p99 %s\n",
		cf.connects.Load(), f.window.Round(time.Millisecond), perSec(cf.connects.Load(), f.window), cf.failed.Load(),
		ms(cf.openLat.quantile(0.5)), ms(cf.openLat.quantile(0.99)))
	fmt.Fprintf(out, "before      %v\n", cf.base)
	fmt.Fprintf(out, "peak        %v\n", cf.peak)
	fmt.Fprintf(out, "after 5 s   %v\n", cf.after5)
	fmt.Fprintf(out, "after 30 s  %v\n", cf.after30)
}

// printTable prints the servers' figures as a Markdown table, with a row
// of ratios to raw when both ran.
func printTable(out io.Writer, o options, all []*figures) {
	var raw *figures
	for _, f := range all {
		if f.server == "raw" {
			raw = f
		}
	}
	fmt.Fprintln(out)
	switch {
	case o.cmp.scenario == "churn":
		fmt.Fprintln(out, "| server | connects/s | failed | goroutines before → peak → +5 s → +30 s | subscriptions | RSS MiB | live heap MiB before → +30 s |")
		fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
		for _, f := range all {
			cf := f.churn
			fmt.Fprintf(out, "| %s | %.0f | %d | %d → %d → %d → %d | %d → %d → %d → %d | %.1f → %.1f → %.1f → %.1f | %.1f → %.1f |\n",
				f.server, perSec(cf.connects.Load(), f.window), cf.failed.Load(),
				cf.base.goroutines, cf.peak.goroutines, cf.after5.goroutines, cf.after30.goroutines,
				cf.base.subs, cf.peak.subs, cf.after5.subs, cf.after30.subs,
				mib(cf.base.rss), mib(cf.peak.rss), mib(cf.after5.rss), mib(cf.after30.rss),
				mib(cf.base.heap), mib(cf.after30.heap))
		}
	case o.cmp.scenario == "idle":
		fmt.Fprintln(out, "| server | clients | RSS per idle client | Go heap per client | stacks per client | goroutines per client | server CPU while idle |")
		fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
		for _, f := range all {
			n := float64(max(f.opened, 1))
			fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %.2f | %.2f%% of a core over %v |\n", f.server, f.opened, kib(f.rssPerConn),
				kib(float64(f.memIdle.heapAlloc-f.memBefore.heapAlloc)/n), kib(float64(f.memIdle.stackInuse-f.memBefore.stackInuse)/n),
				float64(f.memIdle.goroutines-f.memBefore.goroutines)/n, f.idleCorePct(), f.idleWindow)
		}
		if raw != nil && len(all) > 1 {
			for _, f := range all {
				if f != raw {
					fmt.Fprintf(out, "| %s/raw | | %.2f |\n", f.server, f.rssPerConn/raw.rssPerConn)
				}
			}
		}
	default:
		fmt.Fprintln(out, "| server | delivered/s | p50 | p99 | loss | drain | server CPU per delivery | RSS per idle stream |")
		fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
		for _, f := range all {
			fmt.Fprintf(out, "| %s | %.0f | %s | %s | %d | %v | %.2f µs | %s |\n", f.server,
				perSec(f.inWindow, f.window), ms(f.lat.quantile(0.5)), ms(f.lat.quantile(0.99)),
				f.loss(), f.drainTime.Round(time.Millisecond), float64(f.cpuPer())/1e3, kib(f.rssPerConn))
		}
		if raw != nil && len(all) > 1 {
			for _, f := range all {
				if f == raw {
					continue
				}
				fmt.Fprintf(out, "| %s/raw | %.2f | %.2f | %.2f | | | %.2f | %.2f |\n", f.server,
					perSec(f.inWindow, f.window)/perSec(raw.inWindow, raw.window),
					ratio(f.lat.quantile(0.5), raw.lat.quantile(0.5)), ratio(f.lat.quantile(0.99), raw.lat.quantile(0.99)),
					ratio(f.cpuPer(), raw.cpuPer()), f.rssPerConn/raw.rssPerConn)
			}
		}
	}
}

func (f *figures) idleCorePct() float64 {
	if f.idleWindow <= 0 {
		return 0
	}
	return 100 * f.idleCPU.Seconds() / f.idleWindow.Seconds()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func report(out io.Writer, o options, rs []result, delivered, opened int64, elapsed time.Duration) {
	var first, lat []time.Duration
	failed, outOfOrder := 0, 0
	errs := map[string]int{}
	for _, r := range rs {
		if r.err != nil {
			failed++
			errs[r.err.Error()]++
		}
		if r.events > 0 {
			first = append(first, r.firstEvent)
		}
		lat = append(lat, r.lat...)
		outOfOrder += r.outOfOrder
	}
	fmt.Fprintf(out, "streams     %d requested, %d opened (%s, %d connections)\n", o.n, opened, o.proto, connsFor(o))
	fmt.Fprintf(out, "duration    %v\n", elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "events      %d delivered, %.0f events/s\n", delivered, float64(delivered)/elapsed.Seconds())
	if outOfOrder > 0 {
		fmt.Fprintf(out, "ORDER       %d events arrived with an id at or below the previous one\n", outOfOrder)
	}
	if len(first) > 0 {
		fmt.Fprintf(out, "first event %s (from request start, %d streams)\n", percentiles(first), len(first))
	}
	if len(lat) > 0 {
		fmt.Fprintf(out, "latency     %s (publish to receipt, %d samples)\n", percentiles(lat), len(lat))
	}
	if failed > 0 {
		fmt.Fprintf(out, "errors      %d streams:\n", failed)
		for e, n := range errs {
			fmt.Fprintf(out, "  %5d  %s\n", n, e)
		}
	}
}

func connsFor(o options) int {
	if o.proto == "h1" {
		return o.n
	}
	return o.conns
}

func percentiles(d []time.Duration) string {
	slices.Sort(d)
	at := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	ms := func(x time.Duration) string { return strconv.FormatFloat(float64(x)/1e6, 'f', 2, 64) }
	return fmt.Sprintf("p50 %s ms  p90 %s ms  p99 %s ms  max %s ms", ms(at(0.5)), ms(at(0.9)), ms(at(0.99)), ms(d[len(d)-1]))
}
