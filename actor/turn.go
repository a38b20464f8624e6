package actor

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Turn is one message being handled by one actor. Its storage methods read
// the actor's state (including this turn's own writes) and buffer writes
// that commit atomically when the turn ends. A Turn is used by one goroutine
// and is invalid after the handler returns (the runtime reuses it for a
// later turn): a handler must not keep it.
type Turn struct {
	ctx     context.Context
	id      ID
	now     time.Time
	limits  *Limits
	store   Store
	part    int
	enc     []byte
	overlay *layer    // writes not yet durable (local durability), or nil
	mem     *memActor // the actor's data in the memory store, or nil: read without the store's lookup
	writes  layer
	log     *slog.Logger

	// writesBuf backs writes.small for the usual turn that writes one or
	// two keys, saving an allocation per turn.
	writesBuf [2]layerKV
	// keyBuf holds the storage key of a Get: nothing on the read path
	// keeps it, and a Turn is pooled, so a read allocates no key.
	keyBuf [64]byte

	alarm        alarmState // alarm as of this turn (with its own changes)
	alarmChanged bool
	deferCommit  bool

	// gateOnReads: the handler vouches that its reply depends only on
	// what it reads through this Turn (GateOnReads). readSeq is the
	// newest not-yet-durable overlay entry a read resolved to; readAll
	// means a range read merged the overlay, so every pending write of
	// the actor counts as read.
	gateOnReads bool
	readAll     bool
	readSeq     uint64
}

// DeferCommit lets this turn's writes wait, up to Config.CommitDefer, for
// a commit that another turn needs, instead of starting one of their own:
// for bookkeeping whose reply nobody waits on promptly (the gateway's
// settles), it saves a commit, and its fsyncs, per turn. The reply still
// leaves only once the writes are durable, so nothing acknowledged is ever
// lost; what a crash can lose is a deferred turn whose reply has not left
// yet, for up to CommitDefer longer. A later turn that is not deferred,
// including one that reads these writes, commits them at once. No effect
// on memory durability.
func (t *Turn) DeferCommit() { t.deferCommit = true }

// GateOnReads narrows the output gate of a turn that writes nothing: its
// reply waits only for the pending writes it read (through Get, GetMany,
// List, Alarm or AlarmInfo on this Turn), not for every pending write of
// the actor. A handler may call it only when its replies depend on
// nothing else: no state kept in its own fields from an earlier turn (a
// memo keyed by what this turn read, such as a decoding of the value it
// got, is not such state: the read still happens and decides).
// Then a read that does not touch the actor's pending bookkeeping (the
// gateway's admit with its settles still committing) answers at once,
// and a crash can lose nothing the reply showed. A turn that writes still
// waits for its own writes, and so for everything before them.
func (t *Turn) GateOnReads() { t.gateOnReads = true }

// ID of the actor.
func (t *Turn) ID() ID { return t.id }

// Now is the time the turn started, from the runtime's clock. Handlers use it
// instead of time.Now so they can be tested with a fake clock.
func (t *Turn) Now() time.Time { return t.now }

// Context carries the turn's deadline.
func (t *Turn) Context() context.Context { return t.ctx }

// Logger for the actor's code.
func (t *Turn) Logger() *slog.Logger { return t.log }

func dataKey(k string) []byte {
	b := make([]byte, 1+len(k))
	b[0] = prefixData
	copy(b[1:], k)
	return b
}

func (t *Turn) checkKey(k string) error {
	if len(k) > t.limits.MaxKeyBytes {
		return &LimitError{Limit: "max_key_bytes", Max: int64(t.limits.MaxKeyBytes), Got: int64(len(k)), What: "a key"}
	}
	return nil
}

func (t *Turn) checkCount(n int) error {
	if n > t.limits.MaxKeysPerCall {
		return &LimitError{Limit: "max_keys_per_call", Max: int64(t.limits.MaxKeysPerCall), Got: int64(n), What: "the keys of one call"}
	}
	return nil
}

// Get returns the value of key.
func (t *Turn) Get(key string) ([]byte, bool, error) {
	if err := t.checkKey(key); err != nil {
		return nil, false, err
	}
	if 1+len(key) > len(t.keyBuf) {
		return t.getRaw(dataKey(key))
	}
	k := append(append(t.keyBuf[:0], prefixData), key...)
	return t.getRaw(k)
}

func (t *Turn) getRaw(k []byte) ([]byte, bool, error) {
	if v, found, hit := t.writes.lookup(k); hit {
		return v, found, nil
	}
	if t.overlay != nil {
		if v, found, hit := t.overlayLookup(k); hit {
			return v, found, nil
		}
	}
	if t.mem != nil {
		if v, ok, stale := t.mem.get(k); !stale {
			return v, ok, nil
		}
		t.mem = nil // removed from the store: read through it
	}
	return t.store.Get(t.part, t.enc, k)
}

// reader reads through this turn's writes, the overlay and the store.
func (t *Turn) reader() *layeredRead {
	rd := &layeredRead{layers: []*layer{&t.writes}}
	if t.overlay != nil {
		rd.layers = append(rd.layers, t.overlay)
		t.readAll = true // a range may see, or skip, any pending entry
	}
	rd.base = func(k []byte) ([]byte, bool, error) { return t.store.Get(t.part, t.enc, k) }
	rd.scan = func(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
		return t.store.Scan(t.part, t.enc, start, end, reverse, fn)
	}
	return rd
}

// GetMany returns the values of the keys that exist.
func (t *Turn) GetMany(keys []string) (map[string][]byte, error) {
	if err := t.checkCount(len(keys)); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, ok, err := t.Get(k)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = v
		}
	}
	return out, nil
}

// Put sets key to value (the slice is kept: do not modify it afterwards).
func (t *Turn) Put(key string, value []byte) error {
	if err := t.checkKey(key); err != nil {
		return err
	}
	if len(value) > t.limits.MaxValueBytes {
		// A copy of the key: key itself then does not escape, and a
		// caller's key built on its stack stays there.
		return &LimitError{Limit: "max_value_bytes", Max: int64(t.limits.MaxValueBytes), Got: int64(len(value)), What: fmt.Sprintf("the value of key %q", strings.Clone(truncate(key, 64)))}
	}
	if value == nil {
		value = []byte{}
	}
	t.writes.put(dataKey(key), value, 0)
	return nil
}

// PutMany sets several keys, all or none (limits are checked first).
func (t *Turn) PutMany(entries map[string][]byte) error {
	if err := t.checkCount(len(entries)); err != nil {
		return err
	}
	for k, v := range entries {
		if err := t.checkKey(k); err != nil {
			return err
		}
		if len(v) > t.limits.MaxValueBytes {
			return &LimitError{Limit: "max_value_bytes", Max: int64(t.limits.MaxValueBytes), Got: int64(len(v)), What: fmt.Sprintf("the value of key %q", truncate(k, 64))}
		}
	}
	for k, v := range entries {
		if err := t.Put(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes key and reports whether it existed.
func (t *Turn) Delete(key string) (bool, error) {
	_, ok, err := t.Get(key)
	if err != nil || !ok {
		return false, err
	}
	t.writes.del(dataKey(key), 0)
	return true, nil
}

// DeleteMany removes keys and returns how many existed.
func (t *Turn) DeleteMany(keys []string) (int, error) {
	if err := t.checkCount(len(keys)); err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		ok, err := t.Delete(k)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// ListOptions selects keys for List, as Durable Objects' list(): Start
// inclusive, End exclusive, Prefix, Limit (0: the node's max_list_limit),
// Reverse.
type ListOptions struct {
	Prefix  string
	Start   string
	End     string
	Limit   int
	Reverse bool
}

// KV is one key and its value.
type KV struct {
	Key   string
	Value []byte
}

// List returns keys in order with their values, and whether Limit cut the
// listing short.
func (t *Turn) List(o ListOptions) ([]KV, bool, error) {
	limit := o.Limit
	if limit <= 0 || limit > t.limits.MaxListLimit {
		if limit > t.limits.MaxListLimit {
			return nil, false, &LimitError{Limit: "max_list_limit", Max: int64(t.limits.MaxListLimit), Got: int64(limit), What: "the list limit"}
		}
		limit = t.limits.MaxListLimit
	}
	start := dataKey(o.Start)
	if p := dataKey(o.Prefix); string(p) > string(start) {
		start = p
	}
	end := prefixEnd(dataKey(o.Prefix))
	if o.End != "" {
		if e := dataKey(o.End); end == nil || string(e) < string(end) {
			end = e
		}
	}
	var out []KV
	truncated := false
	err := t.reader().list(start, end, o.Reverse, func(k, v []byte) bool {
		if len(out) == limit {
			truncated = true
			return false
		}
		out = append(out, KV{Key: string(k[1:]), Value: v})
		return true
	})
	return out, truncated, err
}

// DeleteAll removes every key of the actor (its alarm stays, as in DO) and
// returns how many there were.
func (t *Turn) DeleteAll() (int, error) {
	n := 0
	err := t.reader().list([]byte{prefixData}, []byte{prefixData + 1}, false, func(k, v []byte) bool {
		n++
		return true
	})
	if err != nil {
		return 0, err
	}
	t.writes.clearData(0)
	return n, nil
}

// overlayLookup resolves k in the actor's overlay (non-nil), counting the
// pending write that decides it as read (GateOnReads).
func (t *Turn) overlayLookup(k []byte) (val []byte, found, hit bool) {
	val, found, hit, seq := t.overlay.lookupSeq(k)
	if hit {
		t.readSeq = max(t.readSeq, seq)
	}
	return val, found, hit
}

// noteRead counts a read of runtime key k (the alarm's) for GateOnReads:
// the turn's copy of the alarm may come from a write still pending.
func (t *Turn) noteRead(k []byte) {
	if t.overlay != nil {
		t.overlayLookup(k)
	}
}

// Alarm returns the actor's scheduled alarm, if any.
func (t *Turn) Alarm() (time.Time, bool) {
	t.noteRead(keyAlarm)
	if t.alarm.at == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, t.alarm.at), true
}

// SetAlarm schedules the actor's one alarm at at (replacing any other). A
// time in the past fires as soon as the turn commits.
func (t *Turn) SetAlarm(at time.Time) error {
	n := at.UnixNano()
	if n <= 0 {
		n = 1
	}
	t.alarm.at = n
	t.alarmChanged = true
	t.writes.put(keyAlarm, binary.BigEndian.AppendUint64(nil, uint64(n)), 0)
	return nil
}

// DeleteAlarm cancels the actor's alarm.
func (t *Turn) DeleteAlarm() error {
	if t.alarm.at == 0 && !t.alarmChanged {
		return nil
	}
	t.alarm.at = 0
	t.alarmChanged = true
	t.writes.del(keyAlarm, 0)
	return nil
}

// AlarmInfo returns the runtime's record of the alarm: last fired time and
// count.
func (t *Turn) AlarmInfo() (lastFired time.Time, firedCount int64) {
	t.noteRead(keyAlarmMeta)
	if t.alarm.lastFired > 0 {
		lastFired = time.Unix(0, t.alarm.lastFired)
	}
	return lastFired, t.alarm.fired
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Limits returns the node's limits, for kinds that enforce their own.
func (t *Turn) Limits() Limits { return *t.limits }
