package actor

import "testing"

// TestOverlayPruneKeepsNewerWrites: prune drops exactly the entries whose
// latest write is durable, including a key rewritten after an older seq.
func TestOverlayPruneKeepsNewerWrites(t *testing.T) {
	o := newLayer()
	for seq, kv := range [][2]string{{"a", "1"}, {"b", "1"}, {"a", "2"}, {"c", "1"}} {
		w := newLayer()
		w.put([]byte(kv[0]), []byte(kv[1]), 0)
		o.mergeFrom(w, uint64(seq+1))
	}
	w := newLayer()
	for i := 0; i < 20; i++ { // push the overlay past its small-slice form
		w.put([]byte{'k', byte(i)}, []byte("v"), 0)
	}
	o.mergeFrom(w, 5)

	o.prune(2) // a@1 and b@2 are durable; a was rewritten at 3
	if _, ok := o.find([]byte("b")); ok {
		t.Fatal("durable b not pruned")
	}
	if e, ok := o.find([]byte("a")); !ok || string(e.val) != "2" {
		t.Fatalf("a's newer write pruned: %v %v", e, ok)
	}
	o.prune(4)
	if o.count() != 20 {
		t.Fatalf("count %d, want the 20 writes of seq 5", o.count())
	}
	o.prune(5)
	if !o.empty() || o.order != nil {
		t.Fatalf("overlay not empty after everything is durable: %d entries, %d in order", o.count(), len(o.order))
	}
}

// appendOps lists a turn's writes in key order, whether they fit its
// stack buffer or not.
func TestAppendOpsSorted(t *testing.T) {
	for _, keys := range []string{"cab", "fbdaec", "ba"} {
		l := newLayer()
		for _, k := range keys {
			l.put([]byte{byte(k)}, []byte("v"), 0)
		}
		ops := l.appendOps(nil)
		if len(ops) != len(keys) {
			t.Fatalf("%s: %d ops", keys, len(ops))
		}
		for i := 1; i < len(ops); i++ {
			if string(ops[i-1].Key) >= string(ops[i].Key) {
				t.Fatalf("%s: ops out of order: %q before %q", keys, ops[i-1].Key, ops[i].Key)
			}
		}
	}
}
