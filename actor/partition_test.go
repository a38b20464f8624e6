package actor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/kv"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

func TestPartitionGroups(t *testing.T) {
	cfg := actor.DefaultConfig()
	cfg.Logger = quietLogger()
	cfg.Partitions = 8
	store := openBolt(t, t.TempDir())
	rt, err := actor.New(cfg, store, []actor.NamespaceConfig{
		{Name: "kv", Durability: actor.Local, New: kv.New()},
		{Name: "acct", Durability: actor.Local, OnOwnerLoss: actor.OwnerLossWait, New: kv.New()},
		{Name: "rl", Durability: actor.Local, OnOwnerLoss: actor.OwnerLossReset, New: kv.New()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	if rt.OwnershipPartitions() != 16 {
		t.Fatalf("ownership partitions %d", rt.OwnershipPartitions())
	}
	if rt.PartitionPolicy(7) != actor.OwnerLossWait || rt.PartitionPolicy(8) != actor.OwnerLossReset || rt.PartitionPolicy(15) != actor.OwnerLossReset {
		t.Fatal("policy of the groups")
	}
	for i := 0; i < 50; i++ {
		key := fmt.Sprint("k", i)
		for _, ns := range []string{"kv", "acct", "rl"} {
			id := ref(ns, key)
			p, err := rt.PartitionOf(id)
			if err != nil {
				t.Fatal(err)
			}
			want := actor.PartitionOf(id.Encode(), 8)
			if ns == "rl" {
				want += 8
			}
			if p != want {
				t.Fatalf("%v: partition %d, want %d", id, p, want)
			}
		}
	}
	if _, err := rt.PartitionOf(ref("nope", "a")); !errors.Is(err, actor.ErrUnknownNamespace) {
		t.Fatalf("unknown namespace: %v", err)
	}
	// Storage uses the grouped number too.
	put := func(ns, key string) {
		if _, err := rt.Call(context.Background(), ref(ns, key), &holdfastv1.KvPutRequest{Entries: []*holdfastv1.Entry{{Key: "x", Value: []byte("1")}}}); err != nil {
			t.Fatal(err)
		}
	}
	put("rl", "alice")
	put("kv", "alice")
	for _, ns := range []string{"rl", "kv"} {
		infos, _, err := rt.ListActors(context.Background(), ns, "", 10)
		if err != nil || len(infos) != 1 {
			t.Fatalf("list %s: %v %v", ns, infos, err)
		}
		want, _ := rt.PartitionOf(ref(ns, "alice"))
		if infos[0].Partition != want {
			t.Fatalf("%s stored in partition %d, want %d", ns, infos[0].Partition, want)
		}
		d, err := rt.GetActor(context.Background(), ref(ns, "alice"), 10)
		if err != nil || d.Info.Partition != want || len(d.Entries) != 1 {
			t.Fatalf("get actor %s: %+v %v", ns, d.Info, err)
		}
	}
	var found []int
	store.ScanActors(-1, nil, func(p int, _ []byte) bool { found = append(found, p); return true })
	if len(found) != 2 || found[1] < 8 || found[0] >= 8 {
		t.Fatalf("stored partitions %v", found)
	}
}

func TestConfigValidationOfPartitionsAndOwnerLoss(t *testing.T) {
	cfg := actor.DefaultConfig()
	cfg.Partitions = actor.MaxPartitions + 1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "32768") {
		t.Fatalf("partitions over the limit: %v", err)
	}
	cfg.Partitions = actor.MaxPartitions
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quietLogger()
	_, err := actor.New(cfg, nil, []actor.NamespaceConfig{{Name: "x", Durability: actor.Local, OnOwnerLoss: "sometimes", New: kv.New()}})
	if err == nil || !strings.Contains(err.Error(), "on_owner_loss") {
		t.Fatalf("bad on_owner_loss: %v", err)
	}
}

func TestOldFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, actor.DataFileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("meta"))
		return b.Put([]byte("format"), []byte("holdfast-1"))
	})
	db.Close()
	_, err = actor.OpenBoltStore(dir)
	var dde *actor.DataDirError
	if !errors.As(err, &dde) || !strings.Contains(err.Error(), `unsupported data format "holdfast-1"`) {
		t.Fatalf("got %v", err)
	}
}

func TestDropPartitionForgetsMemoryAndAlarms(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, openBolt(t, dir))
	var fired atomic.Int32
	e.h.alarm = func(tn *actor.Turn) error { fired.Add(1); return nil }
	idFn, idMem, idKV := ref("fn", "a"), ref("mem", "a"), ref("kv", "a")
	p := partOf(t, e.rt, idFn)
	// Two more actors of p: one memory, one local.
	for i := 0; partOf(t, e.rt, idMem) != p; i++ {
		idMem = ref("mem", fmt.Sprint("m", i))
	}
	for i := 0; partOf(t, e.rt, idKV) != p; i++ {
		idKV = ref("kv", fmt.Sprint("k", i))
	}
	other := ref("kv", "z")
	for i := 0; partOf(t, e.rt, other) == p; i++ {
		other = ref("kv", fmt.Sprint("z", i))
	}
	if _, err := e.rt.Call(context.Background(), idFn, &holdfastv1.AlarmSetRequest{InMs: 1000}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []actor.ID{idMem, idKV, other} {
		if err := e.put(id.Namespace, id.Key, "k", "v", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.rt.Call(context.Background(), other, &holdfastv1.AlarmSetRequest{InMs: 1000}); err != nil {
		t.Fatal(err)
	}
	if n := e.rt.ActorsInMemory(); n != 4 {
		t.Fatalf("in memory %d", n)
	}
	e.rt.DropPartition(p)
	if n := e.rt.ActorsInMemory(); n != 1 {
		t.Fatalf("in memory after drop %d, want 1 (the other partition's)", n)
	}
	if n := e.rt.AlarmsPending(); n != 1 {
		t.Fatalf("alarms pending after drop %d, want 1 (the other partition's)", n)
	}
	if _, ok := e.get("mem", idMem.Key, "k"); ok {
		t.Fatal("memory data of a dropped partition survived")
	}
	if v, _ := e.get("kv", idKV.Key, "k"); v != "v" {
		t.Fatalf("durable data of a dropped partition is the store's business; got %q", v)
	}
	e.clk.Advance(time.Second)
	waitFor(t, "other partition's alarm", func() bool { return alarmState(t, e, "kv", other.Key).GetFiredCount() == 1 })
	ctx := context.Background()
	if err := e.rt.Shutdown(ctx); err != nil { // waits for every fire goroutine
		t.Fatal(err)
	}
	if fired.Load() != 0 {
		t.Fatal("alarm of a dropped partition fired")
	}
	n := 0
	reopened := openBolt(t, dir)
	defer reopened.Close()
	reopened.ScanAlarms(func(q int, _ int64, _ []byte) bool {
		if q == p {
			n++
		}
		return true
	})
	if n != 1 {
		t.Fatalf("alarm index entries %d, want the dropped partition's 1", n)
	}
}

func TestServePartitionReloadsAlarms(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	var fired atomic.Int32
	e.h.alarm = func(tn *actor.Turn) error { fired.Add(1); return nil }
	id := ref("fn", "a")
	p := partOf(t, e.rt, id)
	if _, err := e.rt.Call(context.Background(), id, &holdfastv1.AlarmSetRequest{InMs: 1000}); err != nil {
		t.Fatal(err)
	}
	e.rt.DropPartition(p)
	if e.rt.AlarmsPending() != 0 {
		t.Fatal("dropped alarm still pending")
	}
	if err := e.rt.ServePartition(p); err != nil {
		t.Fatal(err)
	}
	if e.rt.AlarmsPending() != 1 {
		t.Fatalf("pending %d after ServePartition", e.rt.AlarmsPending())
	}
	e.clk.Advance(time.Second)
	waitFor(t, "reloaded alarm fires", func() bool { return alarmState(t, e, "fn", "a").GetFiredCount() == 1 })
	if fired.Load() != 1 {
		t.Fatalf("fired %d", fired.Load())
	}
	if err := e.rt.ServePartition(e.rt.OwnershipPartitions()); !errors.Is(err, actor.ErrInvalidArgument) {
		t.Fatalf("out of range: %v", err)
	}
}

func TestDropPartitionWaitsForARunningTurn(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	entered, release := make(chan struct{}), make(chan struct{})
	e.fn("block", func(tn *actor.Turn) (proto.Message, error) {
		close(entered)
		<-release
		return nil, tn.Put("k", []byte("v"))
	})
	e.fn("noop", func(tn *actor.Turn) (proto.Message, error) { return nil, nil })
	p := partOf(t, e.rt, ref("fn", "a"))
	blocked := make(chan error, 1)
	go func() { _, err := e.callFn("a", "block"); blocked <- err }()
	<-entered
	queued := make(chan error, 1)
	go func() { _, err := e.callFn("a", "noop"); queued <- err }()
	waitFor(t, "a queued call", func() bool { return e.rt.MailboxDepth(ref("fn", "a")) == 1 })
	dropped := make(chan struct{})
	go func() { e.rt.DropPartition(p); close(dropped) }()
	waitFor(t, "actor removed from the registry", func() bool { return e.rt.MailboxDepth(ref("fn", "a")) == 0 })
	select {
	case <-dropped:
		t.Fatal("DropPartition returned while a turn of p ran")
	default:
	}
	close(release)
	<-dropped
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if err := e.rt.WaitPartitionDurable(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	err := <-queued
	if err != nil && !errors.Is(err, actor.ErrOwnershipLost) {
		t.Fatalf("queued call: %v", err)
	}
	// A new call activates the actor afresh from the store.
	if v, _ := e.get("fn", "a", "k"); v != "v" {
		t.Fatalf("got %q", v)
	}
}

func TestWaitPartitionDurable(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs)
	p := partOf(t, e.rt, ref("kv", "a"))
	gs.Hold()
	putc := make(chan error, 1)
	go func() { putc <- e.put("kv", "a", "k", "v", "") }()
	<-gs.Entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.rt.WaitPartitionDurable(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("with the write held: %v", err)
	}
	gs.Open()
	if err := e.rt.WaitPartitionDurable(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := <-putc; err != nil {
		t.Fatal(err)
	}
}

// storeKind builds the PartitionStores under test; reopen returns the store
// as found after a restart (nil: not durable).
type storeKind struct {
	name   string
	open   func(t *testing.T, dir string) actor.Store
	reopen bool
}

var storeKinds = []storeKind{
	{"bolt", func(t *testing.T, dir string) actor.Store { return openBolt(t, dir) }, true},
	{"mem", func(t *testing.T, dir string) actor.Store { return actor.NewMemStore() }, false},
}

// dump reads partition p with the Store's own scans: every actor key, then
// the alarm index, as records.
func dump(t *testing.T, s actor.Store, p int) []actor.PartitionRecord {
	t.Helper()
	var actors [][]byte
	if err := s.ScanActors(p, nil, func(_ int, a []byte) bool { actors = append(actors, a); return true }); err != nil {
		t.Fatal(err)
	}
	var out []actor.PartitionRecord
	for _, a := range actors {
		if err := s.Scan(p, a, nil, nil, false, func(k, v []byte) bool {
			out = append(out, actor.PartitionRecord{Kind: actor.RecordActorKey, Actor: a, Key: bytes.Clone(k), Value: bytes.Clone(v)})
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ScanAlarms(func(q int, at int64, a []byte) bool {
		if q == p {
			k := append(binaryBE(uint64(at)), a...)
			out = append(out, actor.PartitionRecord{Kind: actor.RecordAlarm, Key: k})
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func binaryBE(v uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func sameRecords(t *testing.T, what string, got, want []actor.PartitionRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || !bytes.Equal(g.Actor, w.Actor) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("%s: record %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func TestPartitionHandoffRoundTrip(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			src := newEnv(t, k.open(t, t.TempDir()), func(c *actor.Config) { c.Partitions = 2 })
			p := partOf(t, src.rt, ref("kv", "a0"))
			var ids []actor.ID
			for i := 0; len(ids) < 40; i++ {
				id := ref("kv", fmt.Sprint("a", i))
				if partOf(t, src.rt, id) != p {
					continue
				}
				ids = append(ids, id)
				for j := 0; j < 5; j++ {
					if err := src.put("kv", id.Key, fmt.Sprint("key", j), strings.Repeat("v", i+j), fmt.Sprint("req-", i, "-", j)); err != nil {
						t.Fatal(err)
					}
				}
				if i%3 == 0 {
					if _, err := src.rt.Call(context.Background(), id, &holdfastv1.AlarmSetRequest{InMs: int64(1000 + i)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := src.rt.WaitPartitionDurable(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			want := dump(t, src.store, p)
			if len(want) < 40*5 {
				t.Fatalf("only %d records", len(want))
			}

			dstStore := k.open(t, t.TempDir())
			dps := dstStore.(actor.PartitionStore)
			// A stale bucket of p on the destination is replaced.
			stale := &actor.Write{Partition: p, Actor: ref("kv", "stale").Encode(), Ops: []actor.Op{{Kind: actor.OpPut, Key: []byte("dx"), Value: []byte("old")}}}
			if err := dstStore.Commit([]*actor.Write{stale}); err != nil {
				t.Fatal(err)
			}
			info := actor.StagingInfo{HandoffID: "h-1", Partition: p, FromEpoch: 4, From: "node-a"}
			if err := dps.BeginStaging(info); err != nil {
				t.Fatal(err)
			}
			sps := src.store.(actor.PartitionStore)
			var cursor []byte
			var exported []actor.PartitionRecord
			chunks := 0
			for {
				recs, next, err := sps.ExportPartition(p, cursor, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) == 0 && next != nil {
					t.Fatal("empty chunk with a next cursor")
				}
				chunks++
				exported = append(exported, recs...)
				if err := dps.WriteStaging("h-1", recs); err != nil {
					t.Fatal(err)
				}
				if next == nil {
					break
				}
				cursor = next
			}
			if chunks < 20 {
				t.Fatalf("only %d chunks: maxBytes not honoured", chunks)
			}
			sameRecords(t, "export", exported, want)
			if err := dps.PromoteStaging("h-1", p, 5); !errors.Is(err, actor.ErrInvalidArgument) {
				t.Fatalf("promoting an incomplete staging: %v", err)
			}
			if err := dps.CompleteStaging("h-1"); err != nil {
				t.Fatal(err)
			}
			if err := dps.WriteStaging("h-1", exported[:1]); err == nil {
				t.Fatal("write to a complete staging accepted")
			}
			d, err := dps.PartitionDisk()
			if err != nil || len(d.Staging) != 1 || !d.Staging[0].Complete || d.Staging[0] != (actor.StagingInfo{HandoffID: "h-1", Partition: p, FromEpoch: 4, From: "node-a", Complete: true}) {
				t.Fatalf("disk %+v %v", d, err)
			}
			if err := dps.PromoteStaging("h-1", p, 5); err != nil {
				t.Fatal(err)
			}
			sameRecords(t, "promoted", dump(t, dstStore, p), want)
			d, _ = dps.PartitionDisk()
			if len(d.Staging) != 0 || d.Stamped[p] != 5 {
				t.Fatalf("after promote %+v", d)
			}

			// A runtime over the destination serves the data; the alarms
			// moved with the partition.
			dst := newEnv(t, dstStore, func(c *actor.Config) { c.Partitions = 2 })
			dst.rt.DropPartition(p)
			if err := dst.rt.ServePartition(p); err != nil {
				t.Fatal(err)
			}
			wantAlarms := 0
			for _, r := range want {
				if r.Kind == actor.RecordAlarm {
					wantAlarms++
				}
			}
			if dst.rt.AlarmsPending() != wantAlarms {
				t.Fatalf("alarms pending %d, want %d", dst.rt.AlarmsPending(), wantAlarms)
			}
			if v, _ := dst.get("kv", ids[3].Key, "key4"); v != strings.Repeat("v", len(v)) || len(v) == 0 {
				t.Fatalf("got %q", v)
			}
			// The committer writes into the promoted bucket.
			if err := dst.put("kv", ids[0].Key, "new", "x", ""); err != nil {
				t.Fatal(err)
			}
			if err := dst.put("kv", ids[0].Key, "key0", "again", "req-0-0"); err != nil { // a duplicate: recorded on the source
				t.Fatal(err)
			}
			if v, _ := dst.get("kv", ids[0].Key, "key0"); v == "again" {
				t.Fatal("idempotency records did not move with the partition")
			}
			dst.clk.Advance(time.Hour)
			waitFor(t, "moved alarms fire", func() bool { return dst.rt.AlarmsPending() == 0 })
			if d, _ := dps.PartitionDisk(); d.Stamped[p] != 5 {
				t.Fatalf("stamp lost after commits: %+v", d)
			}
		})
	}
}

func TestStagingCrashSafetyAndDrop(t *testing.T) {
	dir := t.TempDir()
	s := openBolt(t, dir)
	if err := s.BeginStaging(actor.StagingInfo{HandoffID: "h", Partition: 3, FromEpoch: 9, From: "n1"}); err != nil {
		t.Fatal(err)
	}
	rec := actor.PartitionRecord{Kind: actor.RecordActorKey, Actor: ref("kv", "a").Encode(), Key: []byte("dk"), Value: []byte("v")}
	if err := s.WriteStaging("h", []actor.PartitionRecord{rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteStaging("missing", []actor.PartitionRecord{rec}); !errors.Is(err, actor.ErrNotFound) {
		t.Fatalf("write to a missing staging: %v", err)
	}
	// An actor that is no encoded actor ID could not be told from its key
	// on disk: refused.
	for _, bad := range [][]byte{[]byte("x"), append(ref("kv", "a").Encode(), 0)} {
		r := rec
		r.Actor = bad
		if err := s.WriteStaging("h", []actor.PartitionRecord{r}); !errors.Is(err, actor.ErrInvalidArgument) {
			t.Fatalf("staging record of actor %q: %v", bad, err)
		}
	}
	s.Close() // a crash before the marker
	s = openBolt(t, dir)
	d, err := s.PartitionDisk()
	if err != nil || len(d.Staging) != 1 || d.Staging[0] != (actor.StagingInfo{HandoffID: "h", Partition: 3, FromEpoch: 9, From: "n1"}) {
		t.Fatalf("after reopen %+v %v", d, err)
	}
	if err := s.PromoteStaging("h", 3, 10); err == nil {
		t.Fatal("promoted an incomplete staging")
	}
	// BeginStaging of the same ID starts afresh.
	if err := s.BeginStaging(actor.StagingInfo{HandoffID: "h", Partition: 3, FromEpoch: 11, From: "n2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteStaging("h"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openBolt(t, dir)
	d, _ = s.PartitionDisk()
	if len(d.Staging) != 1 || !d.Staging[0].Complete || d.Staging[0].FromEpoch != 11 {
		t.Fatalf("after complete and reopen %+v", d)
	}
	if err := s.PromoteStaging("h", 3, 12); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := s.ExportPartition(3, nil, 1<<20); len(recs) != 0 {
		t.Fatalf("the restarted staging kept old records: %v", recs)
	}
	if err := s.BeginStaging(actor.StagingInfo{HandoffID: "h2", Partition: 4}); err != nil {
		t.Fatal(err)
	}
	if err := s.DropStaging("h2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DropStaging("h2"); err != nil {
		t.Fatalf("dropping twice: %v", err)
	}
	if d, _ := s.PartitionDisk(); len(d.Staging) != 0 {
		t.Fatalf("staging left %+v", d.Staging)
	}
}

func TestWipeStampHighestSurviveReopen(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			st := k.open(t, dir)
			s := st.(actor.PartitionStore)
			w := &actor.Write{Partition: 2, Actor: ref("kv", "a").Encode(), Ops: []actor.Op{{Kind: actor.OpPut, Key: []byte("dk"), Value: []byte("v")}},
				AlarmIndex: []actor.Op{{Kind: actor.OpPut, Key: append(binaryBE(5), ref("kv", "a").Encode()...)}}}
			if err := st.Commit([]*actor.Write{w, {Partition: 6, Actor: w.Actor, Ops: w.Ops}}); err != nil {
				t.Fatal(err)
			}
			if err := s.StampPartition(2, 3); err != nil {
				t.Fatal(err)
			}
			if err := s.StampPartition(9, 1); err != nil { // creates the bucket
				t.Fatal(err)
			}
			if err := s.SetHighestEpoch(2, 4); err != nil {
				t.Fatal(err)
			}
			if err := s.SetHighestEpoch(40000, 7); err != nil {
				t.Fatal(err)
			}
			d, _ := s.PartitionDisk()
			wantStamped := map[int]uint64{2: 3, 6: 0, 9: 1}
			if fmt.Sprint(d.Stamped) != fmt.Sprint(wantStamped) || fmt.Sprint(d.Highest) != fmt.Sprint(map[int]uint64{2: 4, 40000: 7}) {
				t.Fatalf("disk %+v", d)
			}
			if err := s.WipePartition(2, 8); err != nil {
				t.Fatal(err)
			}
			if err := s.WipePartition(6, 0); err != nil {
				t.Fatal(err)
			}
			if err := s.WipePartition(11, 0); err != nil { // absent: fine
				t.Fatal(err)
			}
			if recs, next, err := s.ExportPartition(2, nil, 1); len(recs) != 0 || next != nil || err != nil {
				t.Fatalf("wiped partition exports %v %v %v", recs, next, err)
			}
			if _, ok, _ := st.Get(2, w.Actor, []byte("dk")); ok {
				t.Fatal("wiped key readable")
			}
			n := 0
			st.ScanAlarms(func(int, int64, []byte) bool { n++; return true })
			if n != 0 {
				t.Fatal("wiped alarm index entry left")
			}
			if k.reopen {
				st.Close()
				st = k.open(t, dir)
				s = st.(actor.PartitionStore)
			}
			d, _ = s.PartitionDisk()
			wantStamped = map[int]uint64{2: 8, 9: 1}
			if fmt.Sprint(d.Stamped) != fmt.Sprint(wantStamped) || fmt.Sprint(d.Highest) != fmt.Sprint(map[int]uint64{2: 4, 40000: 7}) {
				t.Fatalf("after wipe/reopen %+v", d)
			}
			// The committer writes into a wiped, stamped bucket; the stamp stays.
			if err := st.Commit([]*actor.Write{w}); err != nil {
				t.Fatal(err)
			}
			if d, _ := s.PartitionDisk(); d.Stamped[2] != 8 {
				t.Fatalf("stamp after commit %+v", d)
			}
			if _, _, err := s.ExportPartition(2, []byte{9, 9}, 10); !errors.Is(err, actor.ErrInvalidArgument) {
				t.Fatalf("bad cursor: %v", err)
			}
		})
	}
}
