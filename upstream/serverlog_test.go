package upstream

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestServerLogIsRateLimited: a flood of denied publishes makes a bounded
// number of lines, and the count of the ones left out is logged.
func TestServerLogIsRateLimited(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := newServerLog(zap.New(core))
	const flood = 5000
	for i := 0; i < flood; i++ {
		l.Errorf("cid:%d - Publish Violation - Subject %q", i, "ssegate.live.events.x")
	}
	if n := logs.Len(); n < serverLogBurst || n > serverLogBurst+serverLogRate {
		t.Fatalf("%d lines for %d violations; want about %d", n, flood, serverLogBurst)
	}
	logged := logs.Len()
	deadline := time.Now().Add(2 * time.Second)
	for logs.Len() == logged {
		if time.Now().After(deadline) {
			t.Fatal("no line once the limit refilled")
		}
		l.Warnf("later")
		time.Sleep(10 * time.Millisecond)
	}
	last := logs.All()[logs.Len()-1]
	got, ok := last.ContextMap()["suppressed_before"].(int64)
	if !ok || got < int64(flood-logged) {
		t.Errorf("line after the flood: %+v; want suppressed_before >= %d", last.ContextMap(), flood-logged)
	}
	l.Noticef("notices are never limited")
	if logs.FilterMessage("notices are never limited").Len() != 1 {
		t.Error("a notice was dropped")
	}
}
