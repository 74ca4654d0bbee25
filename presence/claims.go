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
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	key := memberKey(m)
	for range casAttempts {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err = kv.Create(ctx, key, []byte(gw))
			if err == nil {
				return true, nil
			}
			if conflict(err) {
				continue
			}
			return false, err
		}
		if err != nil {
			return false, err
		}
		holders := parseHolders(e.Value())
		if slices.Contains(holders, gw) {
			return false, nil
		}
		_, err = kv.Update(ctx, key, []byte(strings.Join(append(holders, gw), ",")), e.Revision())
		if err == nil {
			return false, nil
		}
		if !conflict(err) {
			return false, err
		}
	}
	return false, errContended
}

// leave removes gw from m's holders; it reports whether gw was the last.
func leave(ctx context.Context, kv jetstream.KeyValue, m member, gw string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	key := memberKey(m)
	for range casAttempts {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		holders := parseHolders(e.Value())
		rest := slices.DeleteFunc(slices.Clone(holders), func(h string) bool { return h == gw })
		if len(rest) == len(holders) {
			return false, nil
		}
		if len(rest) == 0 {
			err = kv.Purge(ctx, key, jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(purgedMarkerTTL))
		} else {
			_, err = kv.Update(ctx, key, []byte(strings.Join(rest, ",")), e.Revision())
		}
		if err == nil {
			return len(rest) == 0, nil
		}
		if !conflict(err) {
			return false, err
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
