package actor

import (
	"bytes"
	"encoding/binary"
	"sort"
	"sync"
)

// MemStore is the Store of `memory` durability: everything in RAM, Commit
// applies at once. It also serves tests that want a store with no disk.
type MemStore struct {
	mu     sync.RWMutex
	actors map[string]*memActor // partKey + encoded actor -> data
	alarms map[int]map[string]struct{}
}

type memActor struct {
	mu     sync.RWMutex
	part   int
	id     []byte
	data   map[string][]byte
	sorted []string // nil when stale
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{actors: make(map[string]*memActor), alarms: make(map[int]map[string]struct{})}
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
	a.mu.RLock()
	v, ok := a.data[string(key)]
	a.mu.RUnlock()
	// Values are never mutated in place (a put stores a new slice), so the
	// caller may keep v without a copy.
	return v, ok, nil
}

func (a *memActor) keys() []string {
	if a.sorted == nil {
		a.sorted = make([]string, 0, len(a.data))
		for k := range a.data {
			a.sorted = append(a.sorted, k)
		}
		sort.Strings(a.sorted)
	}
	return a.sorted
}

// Scan implements Store.
func (s *MemStore) Scan(partition int, actor, start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	a := s.actor(partition, actor)
	if a == nil {
		return nil
	}
	a.mu.Lock() // keys() may rebuild the sorted cache
	keys := a.keys()
	lo := sort.SearchStrings(keys, string(start))
	hi := len(keys)
	if end != nil {
		hi = sort.SearchStrings(keys, string(end))
	}
	type kv struct {
		k string
		v []byte
	}
	var sel []kv
	if lo < hi {
		sel = make([]kv, 0, hi-lo)
		for _, k := range keys[lo:hi] {
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
func (s *MemStore) apply(w *Write) {
	{
		s.applyAlarmIndex(w.Partition, w.AlarmIndex)
		a := s.actor(w.Partition, w.Actor)
		var key string
		if a == nil {
			key = memKey(w.Partition, w.Actor)
			s.mu.Lock()
			if a = s.actors[key]; a == nil {
				a = &memActor{part: w.Partition, id: append([]byte{}, w.Actor...), data: make(map[string][]byte)}
				s.actors[key] = a
			}
			s.mu.Unlock()
		}
		a.mu.Lock()
		for _, op := range w.Ops {
			switch op.Kind {
			case OpPut:
				if _, ok := a.data[string(op.Key)]; !ok {
					a.sorted = nil
				}
				a.data[string(op.Key)] = op.Value
			case OpDelete:
				if _, ok := a.data[string(op.Key)]; ok {
					delete(a.data, string(op.Key))
					a.sorted = nil
				}
			case OpDeletePrefix:
				for k := range a.data {
					if bytes.HasPrefix([]byte(k), op.Key) {
						delete(a.data, k)
						a.sorted = nil
					}
				}
			case OpDeleteActor:
				clear(a.data)
				a.sorted = nil
			}
		}
		empty := len(a.data) == 0
		a.mu.Unlock()
		if empty {
			key = memKey(w.Partition, w.Actor)
			s.mu.Lock()
			if cur := s.actors[key]; cur == a {
				a.mu.RLock()
				if len(a.data) == 0 {
					delete(s.actors, key)
				}
				a.mu.RUnlock()
			}
			s.mu.Unlock()
		}
	}
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
