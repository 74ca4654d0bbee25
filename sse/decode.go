package sse

import "bytes"

// Decode reads back one block written by AppendEvent: its id, event name
// and data, the data lines joined by LF as a browser joins them. It is for
// answers that carry events as JSON (history, long-poll), so that they say
// exactly what an EventSource would have received. Comments and unknown
// fields are skipped.
func Decode(block []byte) Event {
	var ev Event
	var data []byte
	seenData := false
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "id":
			ev.ID = string(value)
		case "event":
			ev.Name = string(value)
		case "data":
			if seenData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			seenData = true
		}
	}
	ev.Data = data
	return ev
}
