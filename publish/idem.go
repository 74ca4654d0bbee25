package publish

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// digestHeader holds, on an event stored with an Idempotency-Key, the
// digest of what was published: a retry must publish the same event, and
// a reused key is told apart from a retry by it.
const digestHeader = "Ssegate-Digest"

// errKeyReused is a duplicate whose stored event is another than the one
// published now: the Idempotency-Key was reused, and nothing is stored.
var errKeyReused = errors.New("idempotency key reused for another event")

// eventDigest covers the channel, the event name and the data, each with
// its length, so that no two different events share a digest's input.
func eventDigest(channel, name string, data []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(channel), []byte(name), data} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(part))))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkRetry compares a duplicate with the event stored at seq, which
// JetStream's ack names as the one the id stored first. An event that
// limits have removed since cannot be compared; the id was stored once,
// and the answer stays "duplicate".
func checkRetry(ctx context.Context, js jetstream.JetStream, stream string, seq uint64, msg *nats.Msg) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	stored, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if stored.Subject != msg.Subject || stored.Header.Get(digestHeader) != msg.Header.Get(digestHeader) {
		return errKeyReused
	}
	return nil
}
