// Package upstream owns the gateway's side of NATS: the connection (to a
// cluster or to an embedded server, Config) and the live fan-out of events
// to the streams on this instance (Hub).
//
// A stream attaches to the Hub for its channels and gets a Client: a
// bounded queue of frames in stream order, with no event missing, and a
// reason when the Hub ends it (slow, shutdown, resync, stream recreated).
// When the Hub sees that live delivery may have lost an event, it holds the
// affected clients and reads the stream (package replay) to mend the gap
// before releasing them.
//
// Replays and recovery reads go over a connection of their own
// (ReplayConn), so that a long read does not delay live delivery.
package upstream
