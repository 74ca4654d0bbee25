package gatewaytest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// answerTimeout bounds an exchange that answer waits for.
const answerTimeout = 10 * time.Second

// answer sends req over a fresh HTTP/1.1 client and reads the whole
// answer, within answerTimeout: a stream opened where a refusal was due
// fails the test instead of holding it.
func answer(t testing.TB, g *gateway, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	c := g.h1Client()
	c.Timeout = answerTimeout
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// getAnswer is answer for a GET of url.
func getAnswer(t testing.TB, g *gateway, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return answer(t, g, req)
}

// answerJSON sends req and decodes its JSON answer into out; it returns
// the answer's status.
func answerJSON(t testing.TB, g *gateway, req *http.Request, out any) int {
	t.Helper()
	resp, body := answer(t, g, req)
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s %s: %d %s: %v", req.Method, req.URL.Path, resp.StatusCode, body, err)
	}
	return resp.StatusCode
}

// declaredTooLarge sends a POST to path that declares a body of a
// megabyte and sends three bytes of it, and returns the status of the
// answer, which must come without the rest of the body.
func declaredTooLarge(t testing.TB, g *gateway, path, authorization string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(g.httpURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: gateway\r\nAuthorization: %s\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nabc", path, authorization)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("POST %s declaring a megabyte: no answer without the body: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
