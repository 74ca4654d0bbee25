package presence

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A user's presence on a channel is one KV key naming the gateways that
// hold a connection of theirs (memberKey). Every change is a
// compare-and-set on that key, so of any number of gateways acting at once
// exactly one adds the first gateway, which announces the join, and
// exactly one removes the last, which announces the leave. A second tab,
// on this gateway or another, only adds a name or finds it there.

// casAttempts bounds the retries of one change under contention.
const casAttempts = 16

// purgedMarkerTTL is how long the marker of a user's last leave stays.
const purgedMarkerTTL = time.Minute

var errContended = errors.New("presence: member key changed too often to update")

// join adds gw to m's holders; it reports whether m was absent before.
func join(ctx context.Context, kv jetstream.KeyValue, m member, gw string) (bool, error) {
	return changeHolders(ctx, kv, m, func(ctx context.Context, key string, e jetstream.KeyValueEntry) (bool, error) {
		if e == nil {
			_, err := kv.Create(ctx, key, []byte(gw))
			return err == nil, err
		}
		holders := parseHolders(e.Value())
		if slices.Contains(holders, gw) {
			return false, nil
		}
		_, err := kv.Update(ctx, key, []byte(strings.Join(append(holders, gw), ",")), e.Revision())
		return false, err
	})
}

// leave removes gw from m's holders; it reports whether gw was the last.
func leave(ctx context.Context, kv jetstream.KeyValue, m member, gw string) (bool, error) {
	return changeHolders(ctx, kv, m, func(ctx context.Context, key string, e jetstream.KeyValueEntry) (bool, error) {
		if e == nil {
			return false, nil
		}
		holders := parseHolders(e.Value())
		rest := slices.DeleteFunc(slices.Clone(holders), func(h string) bool { return h == gw })
		if len(rest) == len(holders) {
			return false, nil
		}
		var err error
		if len(rest) == 0 {
			err = kv.Purge(ctx, key, jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(purgedMarkerTTL))
		} else {
			_, err = kv.Update(ctx, key, []byte(strings.Join(rest, ",")), e.Revision())
		}
		return err == nil && len(rest) == 0, err
	})
}

// changeHolders runs one compare-and-set change of m's key: write reads
// the key's entry (nil when there is none), writes against its revision
// and reports the change's outcome. A write that lost to another gateway
// reads again and retries, casAttempts times at the most.
func changeHolders(ctx context.Context, kv jetstream.KeyValue, m member,
	write func(ctx context.Context, key string, e jetstream.KeyValueEntry) (bool, error)) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	key := memberKey(m)
	for range casAttempts {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			e, err = nil, nil
		}
		if err != nil {
			return false, err
		}
		done, err := write(ctx, key, e)
		if !conflict(err) {
			return done, err
		}
	}
	return false, errContended
}

func parseHolders(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), ",")
}

// conflict reports a lost compare-and-set.
func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
