package actor

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
)

// ActorInfo describes a stored or activated actor, for the admin API.
type ActorInfo struct {
	ID        ID
	Partition int
	Keys      int64 // user keys
	InMemory  bool
	Alarm     time.Time // zero: none
}

// ListActors returns up to limit actors of namespace whose key starts with
// prefix, in storage order, and whether there were more. It reads the
// store: an actor with no stored state is not listed.
func (r *Runtime) ListActors(ctx context.Context, namespace, prefix string, limit int) ([]ActorInfo, bool, error) {
	ns := r.namespaces[namespace]
	if ns == nil {
		return nil, false, fmt.Errorf("%w %q", ErrUnknownNamespace, namespace)
	}
	if limit <= 0 {
		limit = 1000
	}
	var ids []ID
	var parts []int
	truncated := false
	err := r.storeFor(ns).ScanActors(-1, NamespacePrefix(namespace), func(p int, enc []byte) bool {
		id, err := DecodeID(enc)
		if err != nil || id.Namespace != namespace || len(id.Key) < len(prefix) || id.Key[:len(prefix)] != prefix {
			return true
		}
		if len(ids) == limit {
			truncated = true
			return false
		}
		ids = append(ids, id)
		parts = append(parts, p)
		return ctx.Err() == nil
	})
	if err != nil {
		return nil, false, err
	}
	out := make([]ActorInfo, 0, len(ids))
	store := r.storeFor(ns)
	for i, id := range ids {
		enc := id.Encode()
		info := ActorInfo{ID: id, Partition: parts[i], InMemory: r.cells.lookup(enc) != nil}
		_ = store.Scan(parts[i], enc, []byte{prefixData}, []byte{prefixData + 1}, false, func(k, v []byte) bool {
			info.Keys++
			return true
		})
		if v, ok, _ := store.Get(parts[i], enc, keyAlarm); ok && len(v) == 8 {
			info.Alarm = time.Unix(0, int64(beUint64(v)))
		}
		out = append(out, info)
	}
	return out, truncated, ctx.Err()
}

// ActorDump is one actor's stored state, as its own turn sees it.
type ActorDump struct {
	Info      ActorInfo
	Entries   []KV
	Truncated bool
	Alarm     alarmState
}

// AlarmAt returns the scheduled alarm time (zero: none).
func (d ActorDump) AlarmAt() time.Time {
	if d.Alarm.at == 0 {
		return time.Time{}
	}
	return time.Unix(0, d.Alarm.at)
}

// AlarmLastFired returns when the alarm last fired (zero: never) and how
// many times it fired.
func (d ActorDump) AlarmLastFired() (time.Time, int64) {
	if d.Alarm.lastFired == 0 {
		return time.Time{}, d.Alarm.fired
	}
	return time.Unix(0, d.Alarm.lastFired), d.Alarm.fired
}

// GetActor reads one actor's user keys (up to limit) and alarm in a turn,
// so it sees exactly what the actor sees.
func (r *Runtime) GetActor(ctx context.Context, id ID, limit int) (ActorDump, error) {
	var d ActorDump
	_, err := r.turn(ctx, id, "", nil, func(t *Turn, c *cell) (proto.Message, error) {
		entries, truncated, err := t.List(ListOptions{Limit: limit})
		if err != nil {
			return nil, err
		}
		d = ActorDump{Info: ActorInfo{ID: id, Partition: c.part, Keys: int64(len(entries)), InMemory: true}, Entries: entries, Truncated: truncated, Alarm: t.alarm}
		if t.alarm.at != 0 {
			d.Info.Alarm = time.Unix(0, t.alarm.at)
		}
		return nil, nil
	})
	return d, err
}

// DeleteActor removes an actor: all its keys, records and alarm, in one
// turn; its handler is discarded. Returns how many user keys it had.
//
// It records no idempotency entry (that would leave the actor behind):
// deleting twice has the same effect as deleting once.
func (r *Runtime) DeleteActor(ctx context.Context, id ID) (int, error) {
	n := 0
	_, err := r.turn(ctx, id, "", nil, func(t *Turn, c *cell) (proto.Message, error) {
		var err error
		if n, err = t.DeleteAll(); err != nil {
			return nil, err
		}
		if err := t.DeleteAlarm(); err != nil {
			return nil, err
		}
		t.writes.clearAll(0)
		t.writes.del(keyAlarm, 0) // keeps alarmChanged's index update consistent
		c.handler = nil
		return nil, nil
	})
	return n, err
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}
