// Command publish sends one or more events to ssegate through NATS, for
// trying the gateway out and for scripts. It stands in for the nats CLI:
//
//	go run ./cmd/publish -channel demo -event greeting 'hello'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ",") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	server := fs.String("server", "nats://127.0.0.1:4222", "NATS URL(s), comma-separated")
	subject := fs.String("subject", "", "NATS subject to publish to (default events.<channel>)")
	channel := fs.String("channel", "demo", "channel name, used when -subject is empty")
	event := fs.String("event", "", "SSE event name (sent as the Sse-Event header)")
	count := fs.Int("count", 1, "how many times to publish")
	interval := fs.Duration("interval", 0, "pause between publishes")
	core := fs.Bool("core", false, "plain core NATS publish without waiting for the stream's acknowledgement")
	creds := fs.String("creds", "", "NATS credentials file")
	token := fs.String("token", "", "NATS token")
	var headers headerFlags
	fs.Var(&headers, "header", "extra NATS header Key=Value (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: publish [flags] <data>   (data '-' reads standard input)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want exactly one data argument")
	}
	data := []byte(fs.Arg(0))
	if fs.Arg(0) == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		data = b
	}
	if *count < 1 || *count > 1_000_000 {
		return errors.New("-count must be between 1 and 1000000")
	}
	subj := *subject
	if subj == "" {
		subj = "events." + *channel
	}

	msg := nats.NewMsg(subj)
	msg.Data = data
	if *event != "" {
		msg.Header.Set("Sse-Event", *event)
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return fmt.Errorf("-header %q: want Key=Value", h)
		}
		msg.Header.Add(k, v)
	}
	opts := []nats.Option{nats.Name("ssegate-publish")}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	if *token != "" {
		opts = append(opts, nats.Token(*token))
	}
	nc, err := nats.Connect(*server, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	for i := 0; i < *count; i++ {
		if i > 0 && *interval > 0 {
			time.Sleep(*interval)
		}
		if *core {
			if err := nc.PublishMsg(msg); err != nil {
				return err
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, err := js.PublishMsg(ctx, msg)
		cancel()
		if err != nil {
			return fmt.Errorf("publishing to %s: %w (is the subject stored by the ssegate stream?)", subj, err)
		}
		fmt.Printf("published to %s: stream %s sequence %d\n", subj, ack.Stream, ack.Sequence)
	}
	if *core {
		return nc.Flush()
	}
	return nil
}
