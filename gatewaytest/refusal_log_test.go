package gatewaytest

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRefusalLogLines: every refusal's log line names its endpoint
// ("stream refused", "publish refused", "console refused", "health
// refused"; "auth refused" for credentials) and carries the
// error code under one key, code; details are written as text in the
// answer and in the log, with no \u003e for a '>'.
func TestRefusalLogLines(t *testing.T) {
	logFile := caddyLogFile(t)
	g := publishGatewayLogging(t, nil, map[string]any{"console_path": "/events/console", "health_path": "/events/health"}, logFile)
	for _, tt := range []struct {
		method, path, query string
		hdr                 map[string]string
		status              int
		msg, code, detail   string
	}{
		{http.MethodGet, "/events", "channel=a.%3E", nil, http.StatusBadRequest, "stream refused", "invalid_channel", `"a.>"`},
		{http.MethodPost, "/events/publish", "channel=a.%3E", bearer(testPublishKey), http.StatusBadRequest, "publish refused", "invalid_channel", `"a.>"`},
		{http.MethodGet, "/events/publish", "channel=demo", nil, http.StatusMethodNotAllowed, "publish refused", "method_not_allowed", "POST"},
		{http.MethodPost, "/events/publish", "channel=demo", nil, http.StatusUnauthorized, "auth refused", "unauthenticated", "Bearer"},
		{http.MethodGet, "/events", "channel=user.alice", nil, http.StatusUnauthorized, "auth refused", "unauthenticated", ""},
		{http.MethodGet, "/events/console/nosuch.js", "", nil, http.StatusNotFound, "console refused", "not_found", "no such console file"},
		{http.MethodPost, "/events/health", "", nil, http.StatusMethodNotAllowed, "health refused", "method_not_allowed", "GET"},
	} {
		req, err := http.NewRequest(tt.method, g.httpURL+tt.path+"?"+tt.query, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct{ Error, Detail string }
		if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != tt.status || body.Error != tt.code {
			t.Errorf("%s %s?%s: %d %s, want %d with error %s", tt.method, tt.path, tt.query, resp.StatusCode, raw, tt.status, tt.code)
		}
		if strings.Contains(string(raw), `\u00`) || !strings.Contains(body.Detail, tt.detail) {
			t.Errorf("%s %s?%s: body %s, want a detail with %s written as text", tt.method, tt.path, tt.query, raw, tt.detail)
		}
		line := waitLogLine(t, logFile, tt.msg, tt.code, tt.path)
		if strings.Contains(line, `\u00`) || strings.Contains(line, `"error":"`+tt.code+`"`) {
			t.Errorf("log line %s: escaped text, or the code under error", line)
		}
	}
}

// waitLogLine returns the first JSON log line with message msg, the code
// under "code" and the path, waiting for the writer to catch up.
func waitLogLine(t *testing.T, file, msg, code, path string) string {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		seen = seen[:0]
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l struct{ Msg, Code, Path string }
			if json.Unmarshal(sc.Bytes(), &l) != nil || !strings.HasSuffix(l.Msg, "refused") {
				continue
			}
			seen = append(seen, sc.Text())
			if l.Msg == msg && l.Code == code && l.Path == path {
				f.Close()
				return sc.Text()
			}
		}
		f.Close()
	}
	t.Fatalf("no %q line with code %s for %s; refusal lines:\n%s", msg, code, path, strings.Join(seen, "\n"))
	return ""
}
