package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The NATS side of the command: the connection, the message, and
// publishing it.

// connect connects to -server with the options' credentials.
func (o *options) connect() (*nats.Conn, error) {
	nc, err := nats.Connect(o.server, o.natsOptions()...)
	if errors.Is(err, nats.ErrNoServers) {
		// The usual first-hour mistake: the gateway, whose embedded NATS
		// this talks to, is not running yet.
		return nil, fmt.Errorf("connecting to %s: %w\n"+
			"Is the gateway running? With Caddyfile.example, its embedded NATS listens on 127.0.0.1:4222\n"+
			"once this runs in another terminal (or give -server):\n"+
			"  go run ./cmd/caddy run --config Caddyfile.example", o.server, err)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", o.server, err)
	}
	return nc, nil
}

func (o *options) message(data []byte) (*nats.Msg, error) {
	subj := o.subject
	if subj == "" {
		subj = "events." + o.channel
	}
	msg := nats.NewMsg(subj)
	msg.Data = data
	if o.event != "" {
		msg.Header.Set("Sse-Event", o.event)
	}
	for _, h := range o.headers.Values {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-header %q: want Key=Value", h)
		}
		msg.Header.Add(k, v)
	}
	return msg, nil
}

func (o *options) natsOptions() []nats.Option {
	opts := []nats.Option{nats.Name("ssegate-publish")}
	switch {
	case o.creds != "":
		opts = append(opts, nats.UserCredentials(o.creds))
	case o.token != "":
		opts = append(opts, nats.Token(o.token))
	case o.user != "":
		opts = append(opts, nats.UserInfo(o.user, o.password))
	}
	return opts
}

// publish sends msg -count times and says what became of it.
func (o *options) publish(nc *nats.Conn, msg *nats.Msg, stdout io.Writer) error {
	if o.core {
		return o.publishCore(nc, msg, stdout)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for i := range o.count {
		if i > 0 && o.interval > 0 {
			time.Sleep(o.interval)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, err := js.PublishMsg(ctx, msg)
		cancel()
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return fmt.Errorf("publishing to %s: %w: no stream stores this subject (is it one of the ssegate stream's subjects, events.> by default?)", msg.Subject, err)
		}
		if err != nil {
			return fmt.Errorf("publishing to %s: %w", msg.Subject, err)
		}
		fmt.Fprintf(stdout, "published to %s: stream %s sequence %d\n", msg.Subject, ack.Stream, ack.Sequence)
	}
	return nil
}

// publishCore sends without acknowledgements, then flushes: the server
// answers a permission violation before the flush's PONG, so an error is
// known before success is claimed.
func (o *options) publishCore(nc *nats.Conn, msg *nats.Msg, stdout io.Writer) error {
	for i := range o.count {
		if i > 0 && o.interval > 0 {
			time.Sleep(o.interval)
		}
		if err := nc.PublishMsg(msg); err != nil {
			return fmt.Errorf("publishing to %s: %w", msg.Subject, err)
		}
	}
	err := nc.FlushTimeout(5 * time.Second)
	if err == nil {
		err = nc.LastError()
	}
	if err != nil {
		return fmt.Errorf("publishing to %s: %w", msg.Subject, err)
	}
	fmt.Fprintf(stdout, "published %d message(s) to %s with core NATS: not acknowledged; stored if a stream captures the subject\n", o.count, msg.Subject)
	return nil
}
