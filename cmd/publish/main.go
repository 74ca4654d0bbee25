// Command publish sends one or more events to ssegate through NATS, for
// trying the gateway out and for scripts. It stands in for the nats CLI:
//
//	go run ./cmd/publish -channel demo -event greeting 'hello'
//	echo '{"n": 1}' | go run ./cmd/publish -channel demo -
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

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
	nc, err := o.connect()
	if err != nil {
		return err
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
