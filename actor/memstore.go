package actor

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"sync"
)

// MemStore is the Store of `memory` durability: everything in RAM, Commit
// applies at once. It also serves tests that want a store with no disk.
type MemStore struct {
	mu     sync.RWMutex
	actors map[string]*memActor // partKey + encoded actor -> data
	alarms map[int]map[string]struct{}

	// PartitionStore state (memstore_partition.go), guarded by mu.
	stamps  map[int]uint64 // partitions with a "bucket" -> stamp
	highest map[int]uint64
	staging map[string]*memStaging
}

type memActor struct {
	mu sync.RWMutex
	// gone: removed from its store (guarded by mu). A runtime cell keeps
	// its actor's memActor across turns (memory durability: it saves the
	// store's lookup and its shared lock on every read and write); a gone
	// one is looked up again.
	gone bool
	part int
	id   []byte
	data map[string][]byte

	// The sorted key index of Scan, built by the first Scan and then kept
	// up to date without sorting every key again: new keys go to added, a
	// small sorted run merged into sorted once it outgrows the square root
	// of it (amortised O(√n) string copies per new key, instead of a sort of
	// all n keys at the next Scan: a turn that records a request ID adds
	// two keys, and a ratelimit turn scans). Deleted keys stay in the index
	// until more than a quarter of it is dead; Scan skips keys not in data.
	sorted []string // nil: not built
	added  []string // sorted; keys new to data since the last merge, none in sorted
	dead   int      // deletes since the index was last filtered
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{
		actors: make(map[string]*memActor), alarms: make(map[int]map[string]struct{}),
		stamps: make(map[int]uint64), highest: make(map[int]uint64), staging: make(map[string]*memStaging),
	}
}

func memKey(partition int, actor []byte) string {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(actor)), uint16(partition))
	return string(append(b, actor...))
}

func (s *MemStore) actor(partition int, actor []byte) *memActor {
	var buf [64]byte
	b := binary.BigEndian.AppendUint16(buf[:0], uint16(partition))
	b = append(b, actor...)
	s.mu.RLock()
	a := s.actors[string(b)] // no allocation: the compiler elides the conversion
	s.mu.RUnlock()
	return a
}

// Get implements Store.
func (s *MemStore) Get(partition int, actor, key []byte) ([]byte, bool, error) {
	a := s.actor(partition, actor)
	if a == nil {
		return nil, false, nil
	}
	v, ok, _ := a.get(key) // gone: removed since the lookup, so absent
	return v, ok, nil
}

// get returns the value of key; stale reports that a is gone (the caller
// looks the actor up again). Values are never mutated in place (a put
// stores a new slice), so the caller may keep v without a copy.
func (a *memActor) get(key []byte) (v []byte, ok, stale bool) {
	a.mu.RLock()
	if a.gone {
		a.mu.RUnlock()
		return nil, false, true
	}
	v, ok = a.data[string(key)]
	a.mu.RUnlock()
	return v, ok, false
}

// noteAdded records a key new to data in the index, if it is built. A key
// still in the index (deleted, not yet filtered out) is live again as is.
func (a *memActor) noteAdded(k string) {
	if a.sorted == nil {
		return
	}
	if _, found := slices.BinarySearch(a.sorted, k); found {
		return
	}
	i, found := slices.BinarySearch(a.added, k)
	if found {
		return
	}
	a.added = slices.Insert(a.added, i, k)
	if len(a.added) > 64+int(math.Sqrt(float64(len(a.sorted)))) {
		a.sorted = mergeInto(a.sorted, a.added)
		a.added = a.added[:0]
	}
}

// noteDeleted counts a key deleted from data (the index skips it until it
// is filtered).
func (a *memActor) noteDeleted() {
	if a.sorted != nil {
		a.dead++
	}
}

// invalidate drops the index (after a bulk delete).
func (a *memActor) invalidate() { a.sorted, a.added, a.dead = nil, nil, 0 }

// mergeInto merges the short sorted run y into the sorted run x (no key in
// both), in place from the end: a binary search and one block copy per key
// of y, so O(len(y)·log len(x)) comparisons and one pass of copying.
func mergeInto(x, y []string) []string {
	n := len(x)
	x = slices.Grow(x, len(y))[:n+len(y)]
	hi := n // x[:hi] holds the keys of x not yet moved
	for j := len(y) - 1; j >= 0; j-- {
		p := sort.SearchStrings(x[:hi], y[j])
		copy(x[p+j+1:hi+j+1], x[p:hi])
		x[p+j] = y[j]
		hi = p
	}
	return x
}

// mergeSorted merges two sorted runs with no key in both.
func mergeSorted(x, y []string) []string {
	out := make([]string, 0, len(x)+len(y))
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		if j == len(y) || i < len(x) && x[i] < y[j] {
			out, i = append(out, x[i]), i+1
		} else {
			out, j = append(out, y[j]), j+1
		}
	}
	return out
}

// live appends to out the keys of run in [start, end) (no upper bound when
// !hasEnd) that are in data.
func (a *memActor) live(out, run []string, start, end string, hasEnd bool) []string {
	lo := sort.SearchStrings(run, start)
	hi := len(run)
	if hasEnd {
		hi = max(lo, sort.SearchStrings(run, end))
	}
	for _, k := range run[lo:hi] {
		if _, ok := a.data[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// rangeKeys returns the keys of data in [start, end) (no upper bound when
// !hasEnd), in order, building or filtering the index if needed. Call
// with a.mu held for writing.
func (a *memActor) rangeKeys(start, end string, hasEnd bool) []string {
	if a.sorted == nil {
		a.sorted = make([]string, 0, len(a.data))
		for k := range a.data {
			a.sorted = append(a.sorted, k)
		}
		sort.Strings(a.sorted)
		a.added, a.dead = nil, 0
	}
	if a.dead > 64+(len(a.sorted)+len(a.added))/4 {
		gone := func(k string) bool { _, ok := a.data[k]; return !ok }
		a.sorted = slices.DeleteFunc(a.sorted, gone)
		a.added = slices.DeleteFunc(a.added, gone)
		a.dead = 0
	}
	out := a.live(nil, a.sorted, start, end, hasEnd)
	more := a.live(nil, a.added, start, end, hasEnd)
	if len(more) == 0 {
		return out
	}
	return mergeSorted(out, more)
}

// Scan implements Store.
func (s *MemStore) Scan(partition int, actor, start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	a := s.actor(partition, actor)
	if a == nil {
		return nil
	}
	a.mu.Lock() // rangeKeys may rebuild the index
	keys := a.rangeKeys(string(start), string(end), end != nil)
	type kv struct {
		k string
		v []byte
	}
	var sel []kv
	if len(keys) > 0 {
		sel = make([]kv, 0, len(keys))
		for _, k := range keys {
			sel = append(sel, kv{k, a.data[k]})
		}
	}
	a.mu.Unlock()
	if reverse {
		for i := len(sel) - 1; i >= 0; i-- {
			if !fn([]byte(sel[i].k), sel[i].v) {
				return nil
			}
		}
		return nil
	}
	for _, e := range sel {
		if !fn([]byte(e.k), e.v) {
			return nil
		}
	}
	return nil
}

// Commit implements Store.
func (s *MemStore) Commit(writes []*Write) error {
	for _, w := range writes {
		s.apply(w)
	}
	return nil
}

// apply applies one write at once (memory durability needs no committer).
func (s *MemStore) apply(w *Write) { s.applyVia(nil, w) }

// applyVia is apply through a, the actor's memActor as a caller kept it
// (nil: none), and returns the memActor to keep (nil when the write left
// the actor empty: an empty actor is removed).
func (s *MemStore) applyVia(a *memActor, w *Write) *memActor {
	s.applyAlarmIndex(w.Partition, w.AlarmIndex)
	for {
		if a == nil {
			a = s.actor(w.Partition, w.Actor)
		}
		if a == nil {
			key := memKey(w.Partition, w.Actor)
			s.mu.Lock()
			if a = s.actors[key]; a == nil {
				a = &memActor{part: w.Partition, id: append([]byte{}, w.Actor...), data: make(map[string][]byte)}
				s.actors[key] = a
			}
			s.mu.Unlock()
		}
		applied, empty := a.applyOps(w.Ops)
		if !applied {
			a = nil // gone meanwhile: look it up again
			continue
		}
		if empty {
			s.removeIfEmpty(a)
			return nil
		}
		return a
	}
}

// applyOps applies ops unless a is gone; empty reports that a holds no
// key afterwards.
func (a *memActor) applyOps(ops []Op) (applied, empty bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gone {
		return false, false
	}
	for _, op := range ops {
		switch op.Kind {
		case OpPut:
			if _, ok := a.data[string(op.Key)]; !ok {
				k := string(op.Key)
				a.data[k] = op.Value
				a.noteAdded(k)
			} else {
				a.data[string(op.Key)] = op.Value
			}
		case OpDelete:
			if _, ok := a.data[string(op.Key)]; ok {
				delete(a.data, string(op.Key))
				a.noteDeleted()
			}
		case OpDeletePrefix:
			for k := range a.data {
				if bytes.HasPrefix([]byte(k), op.Key) {
					delete(a.data, k)
					a.invalidate()
				}
			}
		case OpDeleteActor:
			clear(a.data)
			a.invalidate()
		}
	}
	return true, len(a.data) == 0
}

// removeIfEmpty removes a from the store if it is still there and empty.
func (s *MemStore) removeIfEmpty(a *memActor) {
	key := memKey(a.part, a.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.actors[key] != a {
		return
	}
	a.mu.Lock()
	if len(a.data) == 0 {
		delete(s.actors, key)
		a.gone = true
	}
	a.mu.Unlock()
}

func (s *MemStore) applyAlarmIndex(partition int, ops []Op) {
	if len(ops) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.alarms[partition]
	if idx == nil {
		idx = make(map[string]struct{})
		s.alarms[partition] = idx
	}
	for _, op := range ops {
		switch op.Kind {
		case OpPut:
			idx[string(op.Key)] = struct{}{}
		case OpDelete:
			delete(idx, string(op.Key))
		}
	}
}

// ScanAlarms implements Store.
func (s *MemStore) ScanAlarms(fn func(partition int, at int64, actor []byte) bool) error {
	s.mu.RLock()
	type ent struct {
		p int
		k string
	}
	var all []ent
	for p, idx := range s.alarms {
		for k := range idx {
			all = append(all, ent{p, k})
		}
	}
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].p != all[j].p {
			return all[i].p < all[j].p
		}
		return all[i].k < all[j].k
	})
	for _, e := range all {
		if len(e.k) < 8 {
			continue
		}
		if !fn(e.p, int64(binary.BigEndian.Uint64([]byte(e.k))), []byte(e.k[8:])) {
			return nil
		}
	}
	return nil
}

// ScanActors implements Store.
func (s *MemStore) ScanActors(partition int, prefix []byte, fn func(partition int, actor []byte) bool) error {
	s.mu.RLock()
	var sel []*memActor
	for _, a := range s.actors {
		if (partition < 0 || a.part == partition) && bytes.HasPrefix(a.id, prefix) {
			sel = append(sel, a)
		}
	}
	s.mu.RUnlock()
	sort.Slice(sel, func(i, j int) bool {
		if sel[i].part != sel[j].part {
			return sel[i].part < sel[j].part
		}
		return bytes.Compare(sel[i].id, sel[j].id) < 0
	})
	for _, a := range sel {
		if !fn(a.part, a.id) {
			return nil
		}
	}
	return nil
}

// Close implements Store.
func (s *MemStore) Close() error { return nil }
