package actor

import (
	"bytes"
	"slices"
	"sort"
)

// layer is a set of writes not (yet) in the store below it: the write set of
// a running turn, or an actor's overlay of committed-in-memory writes that
// the group committer has not made durable yet. Reads resolve top-down
// through layers, then the store.
//
// Entries live in a small slice (linear search) while there are at most
// smallLayer of them, and in a map beyond: most turns write one to three
// keys, and a map costs an allocation of a few hundred bytes plus one per
// key string. Keys are retained, not copied: callers pass keys they never
// modify afterwards (fresh buffers or the package's constant keys).
type layer struct {
	small   []layerKV             // the entries while entries is nil
	entries map[string]layerEntry // the entries once there were more than smallLayer
	// clearedData: every user key (prefixData) below this layer is deleted
	// (deleteAll), except entries written in this layer afterwards.
	clearedData bool
	// clearedAll: the whole actor below this layer is deleted.
	clearedAll bool
	// seq of the clear, for overlays (0 in a turn's write set).
	clearSeq uint64
	// order lists an overlay's keys in merge order, which is seq order, so
	// prune drops durable entries from the front instead of walking every
	// entry each turn (a hot actor's overlay can hold many).
	order []seqKey
}

type seqKey struct {
	seq uint64
	key []byte
}

// smallLayer is how many entries a layer keeps in its slice before it
// switches to a map.
const smallLayer = 8

type layerKV struct {
	key []byte
	layerEntry
}

type layerEntry struct {
	val []byte
	del bool
	seq uint64
}

func newLayer() *layer { return &layer{} }

func (l *layer) count() int {
	if l.entries != nil {
		return len(l.entries)
	}
	return len(l.small)
}

func (l *layer) empty() bool { return l.count() == 0 && !l.clearedData && !l.clearedAll }

// find returns the entry of key in this layer, if any.
func (l *layer) find(key []byte) (layerEntry, bool) {
	if l.entries != nil {
		e, ok := l.entries[string(key)]
		return e, ok
	}
	for i := range l.small {
		if string(l.small[i].key) == string(key) {
			return l.small[i].layerEntry, true
		}
	}
	return layerEntry{}, false
}

// set records e for key, replacing an entry of the same key.
func (l *layer) set(key []byte, e layerEntry) {
	if l.entries == nil {
		for i := range l.small {
			if string(l.small[i].key) == string(key) {
				l.small[i].layerEntry = e
				return
			}
		}
		if len(l.small) < smallLayer {
			if l.small == nil {
				l.small = make([]layerKV, 0, 2)
			}
			l.small = append(l.small, layerKV{key: key, layerEntry: e})
			return
		}
		l.entries = make(map[string]layerEntry, 2*smallLayer)
		for _, kv := range l.small {
			l.entries[string(kv.key)] = kv.layerEntry
		}
		l.small = nil
	}
	l.entries[string(key)] = e
}

// each calls fn for every entry, in no particular order. fn must not
// change the layer.
func (l *layer) each(fn func(k []byte, e layerEntry)) {
	if l.entries != nil {
		for k, e := range l.entries {
			fn([]byte(k), e)
		}
		return
	}
	for _, kv := range l.small {
		fn(kv.key, kv.layerEntry)
	}
}

// remove deletes key's entry, if any.
func (l *layer) remove(key []byte) {
	if l.entries != nil {
		delete(l.entries, string(key))
		return
	}
	for i := range l.small {
		if string(l.small[i].key) == string(key) {
			last := len(l.small) - 1
			l.small[i] = l.small[last]
			l.small[last] = layerKV{}
			l.small = l.small[:last]
			return
		}
	}
}

// deleteIf removes every entry for which drop returns true.
func (l *layer) deleteIf(drop func(k []byte, e layerEntry) bool) {
	if l.entries != nil {
		for k, e := range l.entries {
			if drop([]byte(k), e) {
				delete(l.entries, k)
			}
		}
		return
	}
	kept := l.small[:0]
	for _, kv := range l.small {
		if !drop(kv.key, kv.layerEntry) {
			kept = append(kept, kv)
		}
	}
	clear(l.small[len(kept):]) // let the dropped values go
	l.small = kept
}

// lookup resolves key in this layer: hit reports that this layer decides the
// key (found or deleted); when hit is false the next layer down decides.
func (l *layer) lookup(key []byte) (val []byte, found, hit bool) {
	val, found, hit, _ = l.lookupSeq(key)
	return val, found, hit
}

// lookupSeq is lookup that also returns the seq of the entry or clear that
// decided the key (for overlays: the write it came from).
func (l *layer) lookupSeq(key []byte) (val []byte, found, hit bool, seq uint64) {
	if e, ok := l.find(key); ok {
		return e.val, !e.del, true, e.seq
	}
	if l.hides(key) {
		return nil, false, true, l.clearSeq
	}
	return nil, false, false, 0
}

func (l *layer) hides(key []byte) bool {
	return l.clearedAll || (l.clearedData && len(key) > 0 && key[0] == prefixData)
}

// put sets key to val. key is retained: the caller must not modify it.
func (l *layer) put(key, val []byte, seq uint64) {
	l.set(key, layerEntry{val: val, seq: seq})
}

// del deletes key. key is retained: the caller must not modify it.
func (l *layer) del(key []byte, seq uint64) {
	l.set(key, layerEntry{del: true, seq: seq})
}

// clearData deletes every user key: entries of this layer with the data
// prefix go, and everything below is hidden.
func (l *layer) clearData(seq uint64) {
	l.deleteIf(func(k []byte, _ layerEntry) bool { return len(k) > 0 && k[0] == prefixData })
	l.clearedData, l.clearSeq = true, seq
}

func (l *layer) clearAll(seq uint64) {
	clear(l.entries)
	clear(l.small)
	l.small = l.small[:0]
	l.clearedAll, l.clearSeq = true, seq
}

// ops returns the store operations equivalent to this layer, for a commit.
// The keys and values are shared with the layer (neither is ever modified).
func (l *layer) ops() []Op {
	return l.appendOps(make([]Op, 0, l.count()+1))
}

// appendOps appends the store operations equivalent to this layer to ops:
// the clear first, if any, then the entries in key order.
func (l *layer) appendOps(ops []Op) []Op {
	n := l.count()
	if n == 1 && !l.clearedAll && !l.clearedData {
		var kv layerKV
		if l.entries == nil {
			kv = l.small[0]
		} else {
			l.each(func(k []byte, e layerEntry) { kv = layerKV{key: k, layerEntry: e} })
		}
		if kv.del {
			return append(ops, Op{Kind: OpDelete, Key: kv.key})
		}
		return append(ops, Op{Kind: OpPut, Key: kv.key, Value: kv.val})
	}
	if l.clearedAll {
		ops = append(ops, Op{Kind: OpDeleteActor})
	} else if l.clearedData {
		ops = append(ops, Op{Kind: OpDeletePrefix, Key: []byte{prefixData}})
	}
	var buf [4]layerKV // a turn's few writes sort on the stack
	sorted := buf[:0]
	if n > len(buf) {
		sorted = make([]layerKV, 0, n)
	}
	l.each(func(k []byte, e layerEntry) { sorted = append(sorted, layerKV{key: k, layerEntry: e}) })
	// slices.SortFunc, unlike sort.Slice, allocates nothing.
	slices.SortFunc(sorted, func(a, b layerKV) int { return bytes.Compare(a.key, b.key) })
	for _, kv := range sorted {
		if kv.del {
			if !l.clearedAll {
				ops = append(ops, Op{Kind: OpDelete, Key: kv.key})
			}
			continue
		}
		ops = append(ops, Op{Kind: OpPut, Key: kv.key, Value: kv.val})
	}
	return ops
}

// write returns the Write of this layer's ops for one actor. A single put
// or delete (most turns) is allocated together with its Write.
func (l *layer) write(partition int, actor []byte) *Write {
	if l.count() == 1 && !l.clearedAll && !l.clearedData {
		one := &struct {
			w  Write
			op [1]Op
		}{}
		l.each(func(k []byte, e layerEntry) {
			if e.del {
				one.op[0] = Op{Kind: OpDelete, Key: k}
			} else {
				one.op[0] = Op{Kind: OpPut, Key: k, Value: e.val}
			}
		})
		one.w = Write{Partition: partition, Actor: actor, Ops: one.op[:]}
		return &one.w
	}
	return &Write{Partition: partition, Actor: actor, Ops: l.ops()}
}

// mergeFrom applies a turn's write set w onto this overlay at seq.
func (l *layer) mergeFrom(w *layer, seq uint64) {
	if w.clearedAll {
		l.clearAll(seq)
	} else if w.clearedData {
		l.clearData(seq)
	}
	w.each(func(k []byte, e layerEntry) {
		e.seq = seq
		l.set(k, e)
		l.order = append(l.order, seqKey{seq: seq, key: k})
	})
}

// prune drops what the store now holds durably (seq <= durable), in time
// proportional to what it drops.
func (l *layer) prune(durable uint64) {
	i := 0
	for ; i < len(l.order) && l.order[i].seq <= durable; i++ {
		k := l.order[i].key
		if e, ok := l.find(k); ok && e.seq <= durable {
			l.remove(k)
		}
	}
	if i == len(l.order) {
		l.order = nil
	} else {
		// Reslicing from the front costs nothing; the next append that
		// outgrows the array copies only the live rest.
		l.order = l.order[i:]
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
		l.each(func(kb []byte, _ layerEntry) {
			if _, dup := seen[string(kb)]; !dup && inRange(string(kb)) {
				k := string(kb)
				seen[k] = struct{}{}
				lkeys = append(lkeys, k)
			}
		})
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
