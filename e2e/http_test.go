package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The HTTP side of the e2e tests: requests with their answers, readiness
// probes, and event streams read a line at a time.

type reply struct {
	status int
	body   string
}

func requestGET(ctx context.Context, t *testing.T, c *http.Client, url, tok string) reply {
	t.Helper()
	return request(ctx, t, c, http.MethodGet, url, tok, "")
}

func requestPOST(ctx context.Context, t *testing.T, c *http.Client, url, tok, body string) reply {
	t.Helper()
	return request(ctx, t, c, http.MethodPost, url, tok, body)
}

func request(ctx context.Context, t *testing.T, c *http.Client, method, url, tok, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, string(b)}
}

// get fetches url with c, within 2 s, and returns the answer with its
// body read.
func get(ctx context.Context, c *http.Client, url string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// getStatus says whether GET url answers with the status want.
func getStatus(ctx context.Context, c *http.Client, url string, want int) error {
	resp, body, err := get(ctx, c, url)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s, want %d: %.200s", url, resp.Status, want, body)
	}
	return nil
}

// insecureClient trusts any certificate, for the sites with tls internal,
// whose CA is made at start, and speaks HTTP/2 where it is offered. Its
// connections are closed when the test ends.
func insecureClient(t *testing.T) *http.Client {
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// getPage says whether url serves the demo page over proto.
func getPage(ctx context.Context, c *http.Client, url, proto string) error {
	resp, body, err := get(ctx, c, url)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	case resp.Proto != proto:
		return fmt.Errorf("GET %s: %s, want %s", url, resp.Proto, proto)
	case !bytes.Contains(body, []byte("ssegate demo")):
		return fmt.Errorf("GET %s: not the demo page", url)
	}
	return nil
}

// openEvents opens an event stream with c and checks that it is one; the
// caller closes the body.
func openEvents(ctx context.Context, c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s, content type %q", url, resp.Status, ct)
	}
	return resp, nil
}

// probeEvents says whether url opens an event stream within 2 s.
func probeEvents(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := openEvents(ctx, http.DefaultClient, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return nil
}

// openEventLines opens an event stream with c and returns its lines as
// they come; the channel is closed when the stream ends.
func openEventLines(ctx context.Context, t *testing.T, c *http.Client, url string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	resp, err := openEvents(ctx, c, url)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}

// waitEventLine fails the test unless the stream says want within 10 s.
func waitEventLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	if seen, ok := waitLine(lines, 10*time.Second, equals(want)); !ok {
		t.Fatalf("no %q within 10s, or the stream ended first; it said %q", want, seen)
	}
}

// waitLine reads lines until one satisfies match, the stream ends or
// within passes. It returns the lines it read, and whether one matched.
func waitLine(lines <-chan string, within time.Duration, match func(string) bool) ([]string, bool) {
	var seen []string
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return seen, false
			}
			seen = append(seen, l)
			if match(l) {
				return seen, true
			}
		case <-deadline:
			return seen, false
		}
	}
}

func equals(s string) func(string) bool { return func(l string) bool { return l == s } }

// waitClosed waits until the stream ends, and says whether it did within.
func waitClosed(lines <-chan string, within time.Duration) bool {
	deadline := time.After(within)
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
