package kvttl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/testkit"
)

// TestEnsureAllowsKeyTTLs: a new bucket is made with per-key TTLs; an
// operator's bucket without them gets them and keeps its other settings.
func TestEnsureAllowsKeyTTLs(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Server(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "theirs", History: 5}); err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []string{"fresh", "theirs"} {
		kv, err := Ensure(ctx, js, bucket, "test")
		if err != nil {
			t.Fatalf("%s: %v", bucket, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.LimitMarkerTTL() <= 0 {
			t.Errorf("%s: per-key TTLs not allowed", bucket)
		}
		if bucket == "theirs" && st.History() != 5 {
			t.Errorf("the operator's history of 5 became %d", st.History())
		}
	}
	// Again: nothing to change, no error.
	if _, err := Ensure(ctx, js, "theirs", "test"); err != nil {
		t.Fatal(err)
	}
}

// TestPutExpires: a key put with a TTL is there, then gone after it.
func TestPutExpires(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Server(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := Ensure(ctx, js, "b", "test")
	if err != nil {
		t.Fatal(err)
	}
	seq, err := Put(ctx, js, "b", "k", []byte("v"), 10*time.Millisecond) // at least 1 s
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v" || e.Revision() != seq {
		t.Fatalf("after the put: %v, %v", e, err)
	}
	testkit.Eventually(t, 5*time.Second, "the key to expire", func() bool {
		_, err := kv.Get(ctx, "k")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}

// TestBucketHealthStates: starting until a connection is given, then
// what the bucket is: ok, missing, or unavailable when NATS does not
// answer.
func TestBucketHealthStates(t *testing.T) {
	nc, js := natstest.Connect(t, natstest.Server(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Ensure(ctx, js, "there", "test"); err != nil {
		t.Fatal(err)
	}
	var starting BucketHealth
	if got := starting.State("there"); got != StateStarting {
		t.Errorf("before Use: %q", got)
	}
	// One BucketHealth a bucket, as each feature has: a state is kept
	// for a second.
	for bucket, want := range map[string]string{"there": StateOK, "gone": StateBucketMissing} {
		var h BucketHealth
		h.Use(js)
		if got := h.State(bucket); got != want {
			t.Errorf("%s: %q, want %q", bucket, got, want)
		}
	}
	var h BucketHealth
	h.Use(js)
	nc.Close()
	if got := h.State("there"); got != StateUnavailable {
		t.Errorf("NATS closed: %q, want %q", got, StateUnavailable)
	}
}

func TestNamesAndPaths(t *testing.T) {
	if got := (Names{}).Prefix(); got != DefaultSubjectPrefix {
		t.Errorf("default prefix %q", got)
	}
	if got := (Names{SubjectPrefix: "acme.rt"}).Prefix(); got != "acme.rt" {
		t.Errorf("set prefix %q", got)
	}
	buckets := map[string]bool{"ssegate_presence": true, "my-bucket": true, "a.b": false, "a b": false, "a*": false}
	for b, ok := range buckets {
		if err := CheckNames("test", b, DefaultSubjectPrefix); (err == nil) != ok {
			t.Errorf("bucket %q: %v", b, err)
		}
	}
	prefixes := map[string]bool{"ssegate": true, "acme.rt": true, "a..b": false, "a.*": false, "a.>": false, "a b": false, "": false}
	for p, ok := range prefixes {
		if err := CheckNames("test", "ok", p); (err == nil) != ok {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	paths := map[string]bool{"/events/presence": true, "": false, "events": false, "/a/../b": false, "/a/": false, "/a*": false, "/a?x": false, "/a b": false}
	for p, ok := range paths {
		if err := CheckPath("test", p); (err == nil) != ok {
			t.Errorf("path %q: %v", p, err)
		}
	}
}
