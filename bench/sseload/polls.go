package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// pollAnswer is what the load tool reads of a poll's answer.
type pollAnswer struct {
	Events []struct {
		ID   string `json:"id"`
		Data string `json:"data"`
	} `json:"events"`
	LastID string `json:"last_id"`
}

// poll starts one client's poll loop: GET <url>&after=<last_id>, url
// holding the channel and the wait,
// again and again, each time from the last answer's last_id, until ctx
// ends. It returns once the first request is on the wire, so that the
// run's settle time measures polls that wait in the server.
func (s *streamSet) poll(ctx context.Context, c *http.Client, base string, t *tracked) {
	sent := make(chan error, 1)
	s.readers.Go(func() {
		after := ""
		first := true
		for ctx.Err() == nil {
			reqCtx := ctx
			if first {
				reqCtx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
					WroteRequest: func(i httptrace.WroteRequestInfo) { sent <- i.Err },
				})
			}
			a, err := pollOnce(reqCtx, c, base, after)
			if first && err != nil {
				// The trace may not have fired: a dial that failed.
				select {
				case sent <- err:
				default:
				}
			}
			first = false
			if err != nil {
				if ctx.Err() == nil {
					t.err = err
					s.countErr(err)
				}
				return
			}
			for _, e := range a.Events {
				t.record([]byte(e.ID), []byte(e.Data))
			}
			after = a.LastID
		}
	})
	if err := <-sent; err != nil {
		return
	}
	t.open = true
	s.opened.Add(1)
}

// pollOnce sends one poll and reads its answer.
func pollOnce(ctx context.Context, c *http.Client, base, after string) (pollAnswer, error) {
	var a pollAnswer
	u := base
	if after != "" {
		u += "&after=" + url.QueryEscape(after)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return a, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return a, fmt.Errorf("poll: %s %s", resp.Status, body)
	}
	// Read to the end, as a browser's res.json() does: a body closed
	// before its end costs the connection, and the next poll a new one.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return a, fmt.Errorf("poll answer: %w", err)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("poll answer: %w", err)
	}
	if a.LastID == "" {
		return a, errors.New("poll answer without last_id")
	}
	return a, nil
}

// pollClient is the HTTP/1.1 client of a poll run: one kept-alive
// connection per client loop, as a browser's fetch keeps it, so that
// the run compares 1,000 connections with 1,000 connections.
func pollClient(n int) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	return &http.Client{Transport: tr}
}

// pollsWaiting reads the gateway's ssegate_polls_waiting gauge from its
// admin endpoint's /metrics: that the polls of an idle run do wait in
// the server, rather than being answered and sent again.
func pollsWaiting(t *target) (int, error) {
	resp, err := httpGet(strings.TrimSuffix(t.pprof, "/debug/pprof")+"/metrics", 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ssegate_polls_waiting "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int(f), err
		}
	}
	return 0, cmp.Or(sc.Err(), errors.New("no ssegate_polls_waiting in /metrics"))
}
