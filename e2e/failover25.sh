#!/usr/bin/env bash
# Runs each cluster failover test of fault_failover_test.go N times in a
# row (25 by default), one test after the other, never in parallel, and
# prints how many runs of each passed. Not for CI: a test takes about
# 30-40 s, so the whole loop takes about an hour.
#
#   e2e/failover25.sh                      # all five, 25 times each
#   N=5 TESTS=TestFaultClusterLeaderSIGKILL e2e/failover25.sh
#
# Each test's output (-v) is kept in OUT, a new directory under /tmp
# unless set, and for each failed run the gateways' and nodes' whole logs.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

n=${N:-25}
out=${OUT:-$(mktemp -d /tmp/failover25.XXXXXX)}
mkdir -p "$out"
tests=${TESTS:-TestFaultClusterLeaderSIGKILL TestFaultClusterLeaderKilledFourTimes TestFaultClusterServingNodeKilled TestFaultClusterTwoKillsUnsettled TestFaultClusterGatewayKilledNodeDown}

export FAILOVER_LOGS="$out"
for t in $tests; do
	log="$out/$t.log"
	go test . -run "^${t}\$" -count="$n" -failfast=false -timeout 90m -v >"$log" 2>&1
	pass=$(grep -c "^--- PASS: ${t} " "$log")
	fail=$(grep -c "^--- FAIL: ${t} " "$log")
	echo "$t: $pass of $n passed, $fail failed; log $log"
done
