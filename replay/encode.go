package replay

import (
	"github.com/ssegate/ssegate/sse"
)

// EventHeader is the NATS header whose value becomes the SSE event name.
const EventHeader = "Sse-Event"

// Encode builds the SSE frame for a stored or republished message. It is
// called once per event, and the result is shared by every client.
func Encode(dst []byte, m Msg, epoch string) []byte {
	var idBuf [32]byte
	return sse.AppendEvent(dst, sse.Event{
		ID:   string(ID{Seq: m.Seq, Epoch: epoch}.Append(idBuf[:0])),
		Name: m.Header.Get(EventHeader),
		Data: m.Data,
	})
}
