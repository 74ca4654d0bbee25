// Package testkit holds the helpers that tests of every package share:
// free loopback ports, and waiting for a condition with a deadline rather
// than sleeping.
package testkit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/loopback"
)

// FreePorts returns n distinct loopback ports that were free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := loopback.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// FreePort returns a loopback address, host:port, that was free a moment
// ago.
func FreePort(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePorts(t, 1)[0])
}

// errNotYet is what a condition that does not hold yet reports to Poll.
var errNotYet = errors.New("condition does not hold yet")

// Poll calls check every interval until it returns nil or ctx ends; then
// it returns ctx's error with check's last one.
func Poll(ctx context.Context, every time.Duration, check func() error) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// PollUntil waits up to timeout, polling every 20 ms, for cond.
func PollUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return Poll(ctx, 20*time.Millisecond, holds(cond))
}

// holds turns a condition into a check for Poll.
func holds(cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}
}

// Eventually waits up to timeout, polling every 5 ms, for cond, and fails
// the test at the deadline.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := Poll(ctx, 5*time.Millisecond, holds(cond)); err != nil {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
