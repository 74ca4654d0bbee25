package health

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/refusal"
	"github.com/ssegate/ssegate/internal/testkit"
)

// slowJS answers Stream only when the test releases it, and counts calls.
type slowJS struct {
	jetstream.JetStream
	calls   atomic.Int32
	release chan struct{}
}

func (j *slowJS) Stream(ctx context.Context, _ string) (jetstream.Stream, error) {
	j.calls.Add(1)
	select {
	case <-j.release:
		return nil, jetstream.ErrStreamNotFound
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestHealthProbeSharesOneCheck: while JetStream is slow, one check is in
// flight; callers share its answer or give up on their own context, and
// the answer counts as fresh from when it came.
func TestHealthProbeSharesOneCheck(t *testing.T) {
	js := &slowJS{release: make(chan struct{})}
	p := New(nil, "S", refusal.Refuser{})
	const callers = 50
	var wg sync.WaitGroup
	answers := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- p.check(context.Background(), js).err
		}()
	}
	testkit.Eventually(t, 5*time.Second, "the check under way", func() bool { return js.calls.Load() == 1 })

	// A caller with a deadline of its own gives up at it.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if res := p.check(ctx, js); !errors.Is(res.err, errAbandoned) {
		t.Fatalf("a caller that gave up got %v", res.err)
	}
	releasedAt := time.Now()
	close(js.release)
	wg.Wait()
	close(answers)
	for err := range answers {
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("a caller got %v, want the shared answer", err)
		}
	}
	if n := js.calls.Load(); n != 1 {
		t.Fatalf("%d checks for %d callers, want 1", n, callers)
	}
	p.mu.Lock()
	at := p.at
	p.mu.Unlock()
	if at.Before(releasedAt) {
		t.Fatalf("the answer is stamped %v, before it came (%v)", at, releasedAt)
	}
	// Within checkTTL of the answer, callers get it without a new check.
	p.check(context.Background(), js)
	if n := js.calls.Load(); n != 1 {
		t.Fatalf("%d checks, want the cached answer", n)
	}
}
