#!/bin/sh
# Runs the rows of issue 9 that fit a 2-core machine with 20,000 files per
# process, one at a time, each comparing raw and ssegate in one run.
# Output goes to $OUT (default ./bench-results), one file per row.
#
#   sh bench/rows.sh            # every row, about 20 minutes
#   sh bench/rows.sh h1-5000    # rows whose name contains h1-5000
#   sh bench/rows.sh sweep      # 5,000 clients at lower rates: where p99 < 100 ms
set -eu
OUT=${OUT:-bench-results}
BIN=${BIN:-$OUT/bin}
mkdir -p "$OUT" "$BIN"
go build -o "$BIN/sseload" ./bench/sseload
# Caddy holding streams with a handler that does nothing: the idle rows'
# floor. It uses the nats-server the first row builds.
mkdir -p "$BIN/floor"
go build -o "$BIN/floor/caddy" ./bench/caddyfloor
ln -sf ../nats-server "$BIN/floor/nats-server"
L="$BIN/sseload -compare -bindir $BIN -ramp 64"
built=
row() {
	name=$1
	shift
	case "$name" in *"${ONLY:-}"*) ;; *) return 0 ;; esac
	# The rate sweep runs only when asked for: sh bench/rows.sh sweep
	case "$name:${ONLY:-}" in sweep*:*sweep*) ;; sweep*) return 0 ;; esac
	echo "== $name: sseload -compare $*" | tee "$OUT/$name.txt"
	# Build once, then reuse the binaries for the following rows.
	$L $built -workdir "$OUT/$name" "$@" 2>&1 | tee -a "$OUT/$name.txt"
	built=-no-build
}
ONLY=${1:-}
# Both servers are CPU-profiled over the middle 10 s of these two rows.
row broadcast-h1-5000x100 -scenario broadcast -proto h1 -n 5000 -rate 100 -duration 20s -drain 60s -cpuprofile "$OUT/broadcast-h1-5000x100"
row broadcast-h1-1000x100 -scenario broadcast -proto h1 -n 1000 -rate 100 -duration 20s
row idle-h1-10000 -servers raw,floor=$BIN/floor,ssegate -scenario idle -proto h1 -n 10000
row idle-h1-15000 -servers raw,floor=$BIN/floor,ssegate -scenario idle -proto h1 -n 15000
row broadcast-h2c-5000x100 -scenario broadcast -proto h2c -n 5000 -conns 25 -rate 100 -duration 20s -drain 60s -cpuprofile "$OUT/broadcast-h2c-5000x100"
row idle-h2c-20000 -servers raw,floor=$BIN/floor,ssegate -scenario idle -proto h2c -n 20000 -conns 100
row idle-h2c-50000 -servers raw,floor=$BIN/floor,ssegate -scenario idle -proto h2c -n 50000 -conns 250
row users-h1-10000x2000 -scenario users -proto h1 -n 10000 -rate 2000 -duration 30s
row churn-h1-500 -scenario churn -proto h1 -rate 500 -duration 60s -hold 1s
for r in 20 40 60 80; do
	row sweep-h1-5000x$r -scenario broadcast -proto h1 -n 5000 -rate $r -duration 20s -drain 60s
done
