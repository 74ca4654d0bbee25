package replay

import (
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// ID is a position in the stream: the sequence of the last event a client
// received, and the epoch of the stream that sequence belongs to.
//
// On the wire it is "<seq>-<epoch>", for example "1234-k3q9". The epoch is
// four base32 characters derived from the stream's creation time, so that a
// position from a deleted and recreated stream (whose sequences restart at 1)
// is recognised instead of silently meaning something else. A bare "<seq>"
// is accepted too, for clients that stored only the number.
type ID struct {
	Seq   uint64
	Epoch string
}

// maxIDLen bounds what Parse looks at; the longest valid id is 25 bytes.
const maxIDLen = 64

// String formats the id for the SSE id field.
func (id ID) String() string {
	b := strconv.AppendUint(make([]byte, 0, 25), id.Seq, 10)
	if id.Epoch != "" {
		b = append(b, '-')
		b = append(b, id.Epoch...)
	}
	return string(b)
}

// Append appends the formatted id to dst without allocating.
func (id ID) Append(dst []byte) []byte {
	dst = strconv.AppendUint(dst, id.Seq, 10)
	if id.Epoch != "" {
		dst = append(dst, '-')
		dst = append(dst, id.Epoch...)
	}
	return dst
}

// ErrMalformedID is returned by Parse for anything that is not an id.
var ErrMalformedID = errors.New("malformed event id")

// Parse reads an id written by String, or a bare sequence number.
func Parse(s string) (ID, error) {
	if s == "" || len(s) > maxIDLen {
		return ID{}, ErrMalformedID
	}
	seqPart, epoch, hasEpoch := strings.Cut(s, "-")
	if hasEpoch && !validEpoch(epoch) {
		return ID{}, ErrMalformedID
	}
	for i := 0; i < len(seqPart); i++ {
		if seqPart[i] < '0' || seqPart[i] > '9' {
			return ID{}, ErrMalformedID
		}
	}
	seq, err := strconv.ParseUint(seqPart, 10, 64)
	if err != nil {
		return ID{}, ErrMalformedID
	}
	return ID{Seq: seq, Epoch: epoch}, nil
}

const epochAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// Epoch derives the short stream epoch from the stream's creation time.
func Epoch(created time.Time) string {
	h := fnv.New32a()
	var b [8]byte
	n := uint64(created.UnixNano())
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	h.Write(b[:])
	v := h.Sum32()
	out := make([]byte, 4)
	for i := range out {
		out[i] = epochAlphabet[v&31]
		v >>= 5
	}
	return string(out)
}

func validEpoch(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(epochAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}
