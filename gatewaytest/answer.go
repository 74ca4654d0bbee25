package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
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
