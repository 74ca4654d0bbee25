// Package replay owns the JetStream stream that stores every event, and
// reads a channel's history from it.
//
// An event's id is its position: the stream sequence and the epoch of the
// stream's incarnation (ID, Parse, Epoch). Because the stream is shared by
// every gateway instance, a client can resume on any of them.
//
//   - Ensure creates or checks the stream of a StreamConfig (the global
//     option's `stream` block);
//   - History.Resolve turns a client's Last-Event-ID into where its replay
//     starts, or into the reason for a reset event when it cannot be
//     honoured (malformed, unknown, expired, from another incarnation);
//   - History.Read replays a client's channels after a position, bounded
//     in events, in concurrent readers and in bytes in flight; Backfill
//     reads for the hub's recovery; Head reads the stream's newest
//     position;
//   - Encode writes a stored message as an SSE frame.
package replay
