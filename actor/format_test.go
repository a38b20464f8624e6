package actor_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	bolt "go.etcd.io/bbolt"
)

// writeV2File writes a data file in format holdfast-2 as that version laid
// it out: partitions/<p>/{stamp, actors/<actor>/<key>, alarms/<index key>},
// highest/<p>, and a staging bucket with its data bucket.
func writeV2File(t *testing.T, dir string, p int, actorA, actorB []byte, alarmKey []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, actor.DataFileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pk := []byte{byte(p >> 8), byte(p)}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket([]byte("meta"))
		meta.Put([]byte("format"), []byte("holdfast-2"))
		root, _ := tx.CreateBucket([]byte("partitions"))
		pb, _ := root.CreateBucket(pk)
		pb.Put([]byte("stamp"), binaryBE(7))
		actors, _ := pb.CreateBucket([]byte("actors"))
		a, _ := actors.CreateBucket(actorA)
		a.Put([]byte("dcolour"), []byte("blue"))
		a.Put([]byte("dsize"), []byte("9"))
		a.Put([]byte("sa"), alarmKey[:8])
		b, _ := actors.CreateBucket(actorB)
		b.Put([]byte("dcolour"), []byte("red"))
		alarms, _ := pb.CreateBucket([]byte("alarms"))
		alarms.Put(alarmKey, nil)
		highest, _ := tx.CreateBucket([]byte("highest"))
		highest.Put(pk, binaryBE(8))
		staging, _ := tx.CreateBucket([]byte("staging"))
		sb, _ := staging.CreateBucket([]byte("h1"))
		info := append([]byte{0, 0, byte(p >> 8), byte(p)}, binaryBE(6)...)
		sb.Put([]byte("info"), append(info, "node-2"...))
		sb.Put([]byte("complete"), []byte("h1"))
		data, _ := sb.CreateBucket(pk)
		sa, _ := data.CreateBucket([]byte("actors"))
		sab, _ := sa.CreateBucket(actorB)
		return sab.Put([]byte("dcolour"), []byte("green"))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A holdfast-2 file is converted when opened: every key, alarm, stamp,
// highest epoch and staging bucket is found as it was.
func TestFormatV2IsConverted(t *testing.T) {
	dir := t.TempDir()
	a, b := ref("kv", "a").Encode(), ref("kv", "b").Encode()
	p := actor.PartitionOf(b, 16) // newEnv's partitions: the runtime below finds b there
	alarmKey := append(binaryBE(1_000_000), a...)
	writeV2File(t, dir, p, a, b, alarmKey)

	s := openBolt(t, dir)
	got := dump(t, s, p)
	want := []actor.PartitionRecord{
		{Kind: actor.RecordActorKey, Actor: a, Key: []byte("dcolour"), Value: []byte("blue")},
		{Kind: actor.RecordActorKey, Actor: a, Key: []byte("dsize"), Value: []byte("9")},
		{Kind: actor.RecordActorKey, Actor: a, Key: []byte("sa"), Value: alarmKey[:8]},
		{Kind: actor.RecordActorKey, Actor: b, Key: []byte("dcolour"), Value: []byte("red")},
		{Kind: actor.RecordAlarm, Key: alarmKey},
	}
	sameRecords(t, "converted partition", got, want)
	recs, next, err := s.ExportPartition(p, nil, 1<<20)
	if err != nil || next != nil {
		t.Fatalf("export: next %q, %v", next, err)
	}
	sameRecords(t, "export of the converted partition", recs, want)

	d, err := s.PartitionDisk()
	if err != nil {
		t.Fatal(err)
	}
	if d.Stamped[p] != 7 || d.Highest[p] != 8 || len(d.Stamped) != 1 {
		t.Fatalf("stamps %v, highest %v", d.Stamped, d.Highest)
	}
	if len(d.Staging) != 1 || d.Staging[0] != (actor.StagingInfo{HandoffID: "h1", Partition: p, FromEpoch: 6, From: "node-2", Complete: true}) {
		t.Fatalf("staging %+v", d.Staging)
	}
	// The staging data was converted too: promoted, it is p's data.
	if err := s.PromoteStaging("h1", p, 9); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, "promoted staging", dump(t, s, p), []actor.PartitionRecord{
		{Kind: actor.RecordActorKey, Actor: b, Key: []byte("dcolour"), Value: []byte("green")},
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, the file is in the current format (no second conversion)
	// and a runtime reads through it.
	s = openBolt(t, dir)
	sameRecords(t, "reopened", dump(t, s, p), []actor.PartitionRecord{
		{Kind: actor.RecordActorKey, Actor: b, Key: []byte("dcolour"), Value: []byte("green")},
	})
	e := newEnv(t, s)
	resp, err := e.rt.Call(context.Background(), ref("kv", "b"), &holdfastv1.KvGetRequest{Keys: []string{"colour"}})
	if err != nil {
		t.Fatal(err)
	}
	if es := resp.(*holdfastv1.KvGetResponse).GetEntries(); len(es) != 1 || !bytes.Equal(es[0].GetValue(), []byte("green")) {
		t.Fatalf("entries %v", es)
	}
}

// A holdfast-2 actor bucket whose name is no encoded actor ID cannot be
// converted: the file is refused, unchanged.
func TestFormatV2WithAMalformedActorIsRefused(t *testing.T) {
	dir := t.TempDir()
	alarmKey := append(binaryBE(1), ref("kv", "a").Encode()...)
	writeV2File(t, dir, 3, []byte("not an id"), ref("kv", "b").Encode(), alarmKey)
	_, err := actor.OpenBoltStore(dir)
	var dde *actor.DataDirError
	if !errors.As(err, &dde) || !strings.Contains(err.Error(), "converting") || !strings.Contains(err.Error(), "malformed actor") {
		t.Fatalf("got %v", err)
	}
	db, err := bolt.Open(filepath.Join(dir, actor.DataFileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("format")); string(v) != "holdfast-2" {
			t.Errorf("format %q after a failed conversion", v)
		}
		return nil
	})
}
