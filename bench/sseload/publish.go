package main

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// payloadSize is the size of every event's data, as in the rows.
const payloadSize = 64

// publisher sends events round-robin over its channels at a fixed rate,
// with core NATS publishes to the stream's subjects (the stream stores
// and republishes them, as for any backend publishing with `nats pub`).
type publisher struct {
	nc       *nats.Conn
	channels []string
	counts   []int64 // events published per channel
	total    int64
}

func newPublisher(nc *nats.Conn, channels []string) *publisher {
	return &publisher{nc: nc, channels: channels, counts: make([]int64, len(channels))}
}

// run publishes at rate events/s for d, catching up every millisecond, so
// the rate holds however coarse the sleeps are.
func (p *publisher) run(ctx context.Context, rate float64, d time.Duration) error {
	subjects := make([]string, len(p.channels))
	for i, c := range p.channels {
		subjects[i] = "events." + c
	}
	buf := make([]byte, 0, payloadSize)
	start := time.Now()
	for {
		el := time.Since(start)
		if el >= d || ctx.Err() != nil {
			break
		}
		due := int64(el.Seconds() * rate)
		for ; p.total < due; p.total++ {
			i := int(p.total % int64(len(subjects)))
			p.counts[i]++
			buf = appendPayload(buf[:0], time.Now().UnixNano(), p.counts[i])
			if err := p.nc.Publish(subjects[i], buf); err != nil {
				return err
			}
		}
		time.Sleep(time.Millisecond)
	}
	return p.nc.FlushTimeout(10 * time.Second)
}

// appendPayload writes "<publish time, Unix ns> <n, the event's number on
// its channel> xxx…", padded to payloadSize bytes.
func appendPayload(dst []byte, ts, n int64) []byte {
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, ' ')
	for len(dst) < payloadSize {
		dst = append(dst, 'x')
	}
	return dst
}

// parsePayload reads what appendPayload wrote.
func parsePayload(b []byte) (ts int64, n uint64, ok bool) {
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		ts = ts*10 + int64(b[i]-'0')
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		return 0, 0, false
	}
	j := i + 1
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		n = n*10 + uint64(b[j]-'0')
	}
	return ts, n, j > i+1
}
