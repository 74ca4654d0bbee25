package ratelog

import "testing"

func TestBurstThenHeldBackCounted(t *testing.T) {
	l := New(1e-9, 3) // a burst of 3, then next to nothing
	for i := range 3 {
		if ok, n := l.Allow(); !ok || n != 0 {
			t.Fatalf("line %d of the burst: %v, %d", i, ok, n)
		}
	}
	for range 5 {
		if ok, _ := l.Allow(); ok {
			t.Fatal("a line past the burst went through")
		}
	}
	if got := l.suppressed.Load(); got != 5 {
		t.Fatalf("%d held back, want 5", got)
	}
}
