package usage

import "bytes"

// Event is the parsed form of one raw SSE event, per the SSE specification's
// field rules: "name: value" with one optional space after the colon, lines
// starting with ':' are comments, the last "event" field wins, and "data"
// fields are joined with "\n". Fields id and retry are ignored.
type Event struct {
	Name []byte // empty means the default type "message"
	Data []byte
}

var bom = []byte("\xef\xbb\xbf")

// ParseEvent parses raw as yielded by Splitter. Name and Data alias raw
// unless the event has several data lines, the only case that allocates.
func ParseEvent(raw []byte) Event {
	var ev Event
	raw = bytes.TrimPrefix(raw, bom) // the spec strips a BOM at stream start
	// Most streams end lines in "\n" alone: one search for '\r' over the
	// event spares a second search over every line.
	anyCR := bytes.IndexByte(raw, '\r') >= 0
	dataLines := 0
	for len(raw) > 0 {
		line, rest := cutLine(raw, anyCR)
		raw = rest
		if len(line) == 0 {
			break // the blank line ending the event
		}
		if line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if k := bytes.IndexByte(line, ':'); k >= 0 {
			name, value = line[:k], line[k+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "event":
			ev.Name = value
		case "data":
			dataLines++
			if dataLines == 1 {
				ev.Data = value
			} else {
				if dataLines == 2 {
					ev.Data = append([]byte(nil), ev.Data...)
				}
				ev.Data = append(append(ev.Data, '\n'), value...)
			}
		}
	}
	return ev
}

// cutLine splits off the first line of b, without its terminator ("\r\n",
// "\n" or "\r"); anyCR is false when b has no '\r'. Data lines are long;
// IndexByte keeps this vectorised.
func cutLine(b []byte, anyCR bool) (line, rest []byte) {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		end = len(b)
	}
	if anyCR {
		if cr := bytes.IndexByte(b[:end], '\r'); cr >= 0 {
			if cr+1 < len(b) && b[cr+1] == '\n' {
				return b[:cr], b[cr+2:]
			}
			return b[:cr], b[cr+1:]
		}
	}
	if end == len(b) {
		return b, nil
	}
	return b[:end], b[end+1:]
}
