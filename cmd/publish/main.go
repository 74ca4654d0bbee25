// Command publish sends one or more events to ssegate through NATS, for
// trying the gateway out and for scripts. It stands in for the nats CLI:
//
//	go run ./cmd/publish -channel demo -event greeting 'hello'
//	echo '{"n": 1}' | go run ./cmd/publish -channel demo -
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/cli"
)

// passwordEnv holds the NATS password for -user, so that it does not show
// in the process list.
const passwordEnv = "SSEGATE_NATS_PASSWORD"

type options struct {
	server, subject, channel, event string
	count                           int
	interval                        time.Duration
	core, version                   bool
	creds, token, user, password    string
	headers                         cli.List
}

func main() {
	cli.Main("publish", func(args []string, stdout, stderr io.Writer) error {
		return run(args, os.Stdin, stdout, stderr)
	})
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, data, err := parse(args, stdin, stderr)
	if err != nil {
		return err
	}
	if o.version {
		return cli.PrintVersion(stdout, "publish")
	}
	msg, err := o.message(data)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(o.server, o.natsOptions()...)
	if errors.Is(err, nats.ErrNoServers) {
		// The usual first-hour mistake: the gateway, whose embedded NATS
		// this talks to, is not running yet.
		return fmt.Errorf("connecting to %s: %w\n"+
			"Is the gateway running? With Caddyfile.example, its embedded NATS listens on 127.0.0.1:4222\n"+
			"once this runs in another terminal (or give -server):\n"+
			"  go run ./cmd/caddy run --config Caddyfile.example", o.server, err)
	}
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", o.server, err)
	}
	defer nc.Close()
	return o.publish(nc, msg, stdout)
}

func parse(args []string, stdin io.Reader, stderr io.Writer) (*options, []byte, error) {
	o := new(options)
	fs, version := cli.FlagSet("publish", stderr)
	fs.StringVar(&o.server, "server", "nats://127.0.0.1:4222", "NATS URL(s), comma-separated; nats://user:password@host:port works too")
	fs.StringVar(&o.subject, "subject", "", "NATS subject to publish to (default events.<channel>)")
	fs.StringVar(&o.channel, "channel", "demo", "channel name, used when -subject is empty")
	fs.StringVar(&o.event, "event", "", "SSE event name (sent as the Sse-Event header)")
	fs.IntVar(&o.count, "count", 1, "how many times to publish")
	fs.DurationVar(&o.interval, "interval", 0, "pause between publishes")
	fs.BoolVar(&o.core, "core", false, "plain core NATS publish without waiting for the stream's acknowledgement")
	fs.StringVar(&o.creds, "creds", "", "NATS credentials file")
	fs.StringVar(&o.token, "token", "", "NATS token")
	fs.StringVar(&o.user, "user", "", "NATS user; the password comes from $"+passwordEnv+" or -password")
	fs.StringVar(&o.password, "password", "", "NATS password for -user (prefer $"+passwordEnv+")")
	fs.Var(&o.headers, "header", "extra NATS header Key=Value (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: publish [flags] <data>   (data '-' reads standard input, less one final newline)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if o.version = *version; o.version {
		return o, nil, nil
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return nil, nil, errors.New("want exactly one data argument")
	}
	if err := o.check(); err != nil {
		return nil, nil, err
	}
	if fs.Arg(0) != "-" {
		return o, []byte(fs.Arg(0)), nil
	}
	b, err := io.ReadAll(stdin)
	if err != nil {
		return nil, nil, err
	}
	// echo and most files end with a newline that is not part of the event;
	// kept, it would become an empty data: line.
	if t, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b, _ = bytes.CutSuffix(t, []byte("\r"))
	}
	return o, b, nil
}

func (o *options) check() error {
	if o.count < 1 || o.count > 1_000_000 {
		return errors.New("-count must be between 1 and 1000000")
	}
	if o.interval < 0 {
		return errors.New("-interval cannot be negative")
	}
	if o.user != "" && o.password == "" {
		o.password = os.Getenv(passwordEnv)
		if o.password == "" {
			return fmt.Errorf("-user %s needs a password: set $%s (or -password)", o.user, passwordEnv)
		}
	}
	if o.password != "" && o.user == "" {
		return errors.New("-password needs -user")
	}
	auths := 0
	for _, set := range []bool{o.creds != "", o.token != "", o.user != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		return errors.New("choose one of -creds, -token and -user")
	}
	return nil
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
