package fakeupstream

import "bufio"

// ReadEvent reads one SSE event from a client's view of a stream, up to
// and including its blank line, so tests can check that each event arrives
// before the fake sends the next.
func ReadEvent(br *bufio.Reader) ([]byte, error) {
	var ev []byte
	for {
		line, err := br.ReadBytes('\n')
		ev = append(ev, line...)
		if err != nil {
			return ev, err
		}
		if string(line) == "\n" || string(line) == "\r\n" {
			return ev, nil
		}
	}
}
