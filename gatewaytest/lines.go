package gatewaytest

import (
	"bufio"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// caddyLogFile is a fresh path for gatewayConfig.logFile, in the test's
// temporary directory.
func caddyLogFile(t testing.TB) string { return filepath.Join(t.TempDir(), "caddy.log") }

// rawLines reads a stream's lines as they arrive, comments included.
func rawLines(body io.Reader) <-chan string {
	out := make(chan string, 1024)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			out <- sc.Text()
		}
	}()
	return out
}

// awaitLine reads lines until one is want; the stream ending first, or
// no such line within the time given, fails the test.
func awaitLine(t testing.TB, lines <-chan string, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}
