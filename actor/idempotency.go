package actor

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Idempotency records: a mutating call's request ID maps to its reply,
// written in the same transaction as the call's writes, kept for
// Config.IdempotencyWindow. A duplicate is answered from the record and
// never applied twice. Records are pruned a few at a time by later
// mutating turns of the same actor, oldest first, through an age index.

const prunePerTurn = 8

func recordKey(reqID string) []byte {
	return append([]byte{prefixRecord}, reqID...)
}

func recordAgeKey(at int64, reqID string) []byte {
	b := binary.BigEndian.AppendUint64([]byte{prefixRecordAge}, uint64(at))
	return append(b, reqID...)
}

// replay answers reqID from its record, if one is within the window.
func (r *Runtime) replay(t *Turn, reqID string) (proto.Message, bool, error) {
	v, ok, err := t.getRaw(recordKey(reqID))
	if err != nil || !ok {
		return nil, false, err
	}
	if len(v) < 8 {
		return nil, false, fmt.Errorf("%w: corrupt idempotency record for request %q", ErrStorage, reqID)
	}
	at := int64(binary.BigEndian.Uint64(v))
	if t.now.UnixNano()-at > int64(r.cfg.IdempotencyWindow) {
		return nil, false, nil // expired: treat as new
	}
	if len(v) == 8 {
		return nil, true, nil
	}
	var a anypb.Any
	if err := proto.Unmarshal(v[8:], &a); err != nil {
		return nil, false, fmt.Errorf("%w: corrupt idempotency record for request %q: %v", ErrStorage, reqID, err)
	}
	msg, err := a.UnmarshalNew()
	if err != nil {
		return nil, false, fmt.Errorf("%w: idempotency record for request %q: %v", ErrStorage, reqID, err)
	}
	return msg, true, nil
}

// record stores reqID -> resp in the turn's write set and prunes expired
// records.
func (r *Runtime) record(t *Turn, reqID string, resp proto.Message) error {
	now := t.now.UnixNano()
	val := binary.BigEndian.AppendUint64(nil, uint64(now))
	if resp != nil {
		a, err := anypb.New(resp)
		if err != nil {
			return fmt.Errorf("%w: recording reply: %v", ErrInternal, err)
		}
		b, err := proto.Marshal(a)
		if err != nil {
			return fmt.Errorf("%w: recording reply: %v", ErrInternal, err)
		}
		val = append(val, b...)
	}
	// An earlier record of the same ID (expired, being replaced) leaves its
	// age key behind; pruning removes it later.
	t.writes.put(recordKey(reqID), val, 0)
	t.writes.put(recordAgeKey(now, reqID), []byte{}, 0)

	cutoff := now - int64(r.cfg.IdempotencyWindow)
	if cutoff <= 0 {
		return nil
	}
	var expired [][]byte
	err := t.reader().list([]byte{prefixRecordAge}, recordAgeKey(cutoff, ""), false, func(k, _ []byte) bool {
		expired = append(expired, k)
		return len(expired) < prunePerTurn
	})
	if err != nil {
		return err
	}
	for _, k := range expired {
		t.writes.del(k, 0)
		id := string(k[9:])
		// Delete the record only if it is the one this age key indexes.
		if v, ok, err := t.getRaw(recordKey(id)); err == nil && ok && len(v) >= 8 &&
			int64(binary.BigEndian.Uint64(v)) == int64(binary.BigEndian.Uint64(k[1:9])) {
			t.writes.del(recordKey(id), 0)
		}
	}
	return nil
}
