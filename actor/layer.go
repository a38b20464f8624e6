package actor

import (
	"bytes"
	"sort"
)

// layer is a set of writes not (yet) in the store below it: the write set of
// a running turn, or an actor's overlay of committed-in-memory writes that
// the group committer has not made durable yet. Reads resolve top-down
// through layers, then the store.
type layer struct {
	entries map[string]layerEntry
	// clearedData: every user key (prefixData) below this layer is deleted
	// (deleteAll), except entries written in this layer afterwards.
	clearedData bool
	// clearedAll: the whole actor below this layer is deleted.
	clearedAll bool
	// seq of the clear, for overlays (0 in a turn's write set).
	clearSeq uint64
}

type layerEntry struct {
	val []byte
	del bool
	seq uint64
}

func newLayer() *layer { return &layer{entries: make(map[string]layerEntry)} }

func (l *layer) empty() bool { return len(l.entries) == 0 && !l.clearedData && !l.clearedAll }

// lookup resolves key in this layer: hit reports that this layer decides the
// key (found or deleted); when hit is false the next layer down decides.
func (l *layer) lookup(key []byte) (val []byte, found, hit bool) {
	if e, ok := l.entries[string(key)]; ok {
		return e.val, !e.del, true
	}
	if l.hides(key) {
		return nil, false, true
	}
	return nil, false, false
}

func (l *layer) hides(key []byte) bool {
	return l.clearedAll || (l.clearedData && len(key) > 0 && key[0] == prefixData)
}

func (l *layer) put(key, val []byte, seq uint64) {
	if l.entries == nil {
		l.entries = make(map[string]layerEntry, 4)
	}
	l.entries[string(key)] = layerEntry{val: val, seq: seq}
}

func (l *layer) del(key []byte, seq uint64) {
	if l.entries == nil {
		l.entries = make(map[string]layerEntry, 4)
	}
	l.entries[string(key)] = layerEntry{del: true, seq: seq}
}

// clearData deletes every user key: entries of this layer with the data
// prefix go, and everything below is hidden.
func (l *layer) clearData(seq uint64) {
	for k := range l.entries {
		if len(k) > 0 && k[0] == prefixData {
			delete(l.entries, k)
		}
	}
	l.clearedData, l.clearSeq = true, seq
}

func (l *layer) clearAll(seq uint64) {
	clear(l.entries)
	l.clearedAll, l.clearSeq = true, seq
}

// ops returns the store operations equivalent to this layer, for a commit.
func (l *layer) ops() []Op {
	ops := make([]Op, 0, len(l.entries)+1)
	if len(l.entries) == 1 && !l.clearedAll && !l.clearedData {
		for k, e := range l.entries {
			if e.del {
				return append(ops, Op{Kind: OpDelete, Key: []byte(k)})
			}
			return append(ops, Op{Kind: OpPut, Key: []byte(k), Value: e.val})
		}
	}
	if l.clearedAll {
		ops = append(ops, Op{Kind: OpDeleteActor})
	} else if l.clearedData {
		ops = append(ops, Op{Kind: OpDeletePrefix, Key: []byte{prefixData}})
	}
	keys := make([]string, 0, len(l.entries))
	for k := range l.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := l.entries[k]
		if e.del {
			if !l.clearedAll {
				ops = append(ops, Op{Kind: OpDelete, Key: []byte(k)})
			}
			continue
		}
		ops = append(ops, Op{Kind: OpPut, Key: []byte(k), Value: e.val})
	}
	return ops
}

// mergeFrom applies a turn's write set w onto this overlay at seq.
func (l *layer) mergeFrom(w *layer, seq uint64) {
	if w.clearedAll {
		l.clearAll(seq)
	} else if w.clearedData {
		l.clearData(seq)
	}
	if len(w.entries) > 0 && l.entries == nil {
		l.entries = make(map[string]layerEntry, len(w.entries))
	}
	for k, e := range w.entries {
		e.seq = seq
		l.entries[k] = e
	}
}

// prune drops what the store now holds durably (seq <= durable).
func (l *layer) prune(durable uint64) {
	for k, e := range l.entries {
		if e.seq <= durable {
			delete(l.entries, k)
		}
	}
	if (l.clearedAll || l.clearedData) && l.clearSeq <= durable {
		l.clearedAll, l.clearedData, l.clearSeq = false, false, 0
	}
}

// layeredRead reads through layers (top first) and then the store.
type layeredRead struct {
	layers []*layer
	base   func(key []byte) ([]byte, bool, error)
	scan   func(start, end []byte, reverse bool, fn func(k, v []byte) bool) error
}

func (r *layeredRead) get(key []byte) ([]byte, bool, error) {
	for _, l := range r.layers {
		if v, found, hit := l.lookup(key); hit {
			return v, found, nil
		}
	}
	return r.base(key)
}

// resolveLayers resolves key through the layers only.
func (r *layeredRead) resolveLayers(key []byte) (val []byte, found, hit bool) {
	for _, l := range r.layers {
		if v, f, h := l.lookup(key); h {
			return v, f, true
		}
	}
	return nil, false, false
}

// list calls fn for live keys in [start, end) in order, merging the layers
// with the store, until fn returns false. Values passed to fn are copies.
func (r *layeredRead) list(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	inRange := func(k string) bool {
		return k >= string(start) && (end == nil || k < string(end))
	}
	seen := make(map[string]struct{})
	var lkeys []string
	for _, l := range r.layers {
		for k := range l.entries {
			if _, dup := seen[k]; !dup && inRange(k) {
				seen[k] = struct{}{}
				lkeys = append(lkeys, k)
			}
		}
	}
	sort.Strings(lkeys)
	if reverse {
		for i, j := 0, len(lkeys)-1; i < j; i, j = i+1, j-1 {
			lkeys[i], lkeys[j] = lkeys[j], lkeys[i]
		}
	}
	before := func(a, b string) bool {
		if reverse {
			return a > b
		}
		return a < b
	}
	i := 0
	stopped := false
	emitLayer := func(k string) bool {
		if v, found, _ := r.resolveLayers([]byte(k)); found {
			return fn([]byte(k), append([]byte{}, v...))
		}
		return true
	}
	err := r.scan(start, end, reverse, func(k, v []byte) bool {
		ks := string(k)
		for i < len(lkeys) && before(lkeys[i], ks) {
			if !emitLayer(lkeys[i]) {
				stopped = true
				return false
			}
			i++
		}
		if i < len(lkeys) && lkeys[i] == ks {
			i++
			if !emitLayer(ks) {
				stopped = true
				return false
			}
			return true
		}
		if _, _, hit := r.resolveLayers(k); hit {
			return true // deleted or hidden above the store
		}
		if !fn(append([]byte{}, k...), append([]byte{}, v...)) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	for ; i < len(lkeys); i++ {
		if !emitLayer(lkeys[i]) {
			return nil
		}
	}
	return nil
}

func hasDataPrefix(k []byte) bool { return bytes.HasPrefix(k, []byte{prefixData}) }
