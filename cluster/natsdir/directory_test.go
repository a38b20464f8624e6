package natsdir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/holdfast/holdfast/cluster/ownership"
)

func openTestDirectory(t *testing.T, js jetstream.JetStream, replicas int) *Directory {
	t.Helper()
	d, err := OpenDirectory(ctxT(t, 20*time.Second), js, DirectoryConfig{Replicas: replicas, OpTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("OpenDirectory: %v", err)
	}
	return d
}

func leaseOp(id ownership.OpID, kind ownership.OpKind, node string, rev uint64, inc uint64) ownership.KVOp {
	op := ownership.KVOp{ID: id, Kind: kind, Key: ownership.LeaseKey(ownership.NodeID(node)), ExpectRev: rev}
	if kind != ownership.OpReadFromLeader {
		op.Lease = &ownership.Lease{NodeID: ownership.NodeID(node), Incarnation: inc, Nonce: fmt.Sprint("nonce", inc)}
	}
	return op
}

func entryOp(id ownership.OpID, kind ownership.OpKind, p ownership.Partition, rev uint64, owner string, epoch uint64) ownership.KVOp {
	op := ownership.KVOp{ID: id, Kind: kind, Key: ownership.EntryKey(p), ExpectRev: rev}
	if kind != ownership.OpReadFromLeader {
		op.Entry = &ownership.Entry{Owner: ownership.NodeID(owner), Epoch: epoch, HandoffID: "h1"}
	}
	return op
}

func mustStatus(t *testing.T, res ownership.KVResult, want ownership.Status) ownership.KVResult {
	t.Helper()
	if res.Status != want {
		t.Fatalf("op#%d: status %s, want %s", res.Op, res.Status, want)
	}
	return res
}

func TestDirectoryOps(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	d := openTestDirectory(t, jsFor(t, s, "dir"), 1)
	ctx := ctxT(t, 20*time.Second)

	info, err := d.js.Stream(ctx, "KV_"+DefaultDirectoryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.AllowDirect || c.MaxMsgsPerSubject != 1 || c.Replicas != 1 {
		t.Fatalf("directory stream config: AllowDirect %v history %d replicas %d", c.AllowDirect, c.MaxMsgsPerSubject, c.Replicas)
	}

	if conf, cur, err := d.Replicas(ctx); err != nil || conf != 1 || cur != 1 {
		t.Fatalf("Replicas on a single server: %d %d %v", conf, cur, err)
	}
	r1 := mustStatus(t, d.Do(ctx, leaseOp(1, ownership.OpCreate, "a", 0, 1)), ownership.StatusOK)
	if r1.Op != 1 || r1.Rev == 0 {
		t.Fatalf("create result %+v", r1)
	}
	mustStatus(t, d.Do(ctx, leaseOp(2, ownership.OpCreate, "a", 0, 2)), ownership.StatusMismatch)
	r3 := mustStatus(t, d.Do(ctx, leaseOp(3, ownership.OpCompareAndSet, "a", r1.Rev, 3)), ownership.StatusOK)
	if r3.Rev <= r1.Rev {
		t.Fatalf("cas rev %d not above %d", r3.Rev, r1.Rev)
	}
	mustStatus(t, d.Do(ctx, leaseOp(4, ownership.OpCompareAndSet, "a", r1.Rev, 4)), ownership.StatusMismatch)
	rd := mustStatus(t, d.Do(ctx, leaseOp(5, ownership.OpReadFromLeader, "a", 0, 0)), ownership.StatusOK)
	if rd.Rev != r3.Rev || rd.Lease == nil || rd.Entry != nil || rd.Lease.Incarnation != 3 || rd.Lease.Nonce != "nonce3" || rd.Lease.NodeID != "a" {
		t.Fatalf("read %+v lease %+v", rd, rd.Lease)
	}
	mustStatus(t, d.Do(ctx, leaseOp(6, ownership.OpReadFromLeader, "nobody", 0, 0)), ownership.StatusNotFound)

	e1 := mustStatus(t, d.Do(ctx, entryOp(7, ownership.OpCreate, 42, 0, "a", 1)), ownership.StatusOK)
	re := mustStatus(t, d.Do(ctx, entryOp(8, ownership.OpReadFromLeader, 42, 0, "", 0)), ownership.StatusOK)
	if re.Rev != e1.Rev || re.Entry == nil || *re.Entry != (ownership.Entry{Owner: "a", Epoch: 1, HandoffID: "h1"}) {
		t.Fatalf("entry read %+v %+v", re, re.Entry)
	}
	// The stored value is the documented JSON.
	raw, err := d.kv.Get(ctx, "part.42")
	if err != nil {
		t.Fatal(err)
	}
	var w map[string]any
	if err := json.Unmarshal(raw.Value(), &w); err != nil || w["owner"] != "a" || w["epoch"] != float64(1) {
		t.Fatalf("stored value %s (%v)", raw.Value(), err)
	}
	// Invalid ops never reach the server.
	bad := ownership.KVOp{ID: 9, Kind: ownership.OpCreate, Key: ownership.LeaseKey("x")}
	mustStatus(t, d.Do(ctx, bad), ownership.StatusFailed)
	done, cancel := context.WithCancel(ctx)
	cancel()
	mustStatus(t, d.Do(done, leaseOp(10, ownership.OpCreate, "b", 0, 1)), ownership.StatusFailed)
	mustStatus(t, d.Do(ctx, leaseOp(11, ownership.OpReadFromLeader, "b", 0, 0)), ownership.StatusNotFound)

	snap, err := d.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap) != 2 || snap[ownership.LeaseKey("a")].(ownership.Lease).Incarnation != 3 || snap[ownership.EntryKey(42)].(ownership.Entry).Owner != "a" {
		t.Fatalf("snapshot %+v", snap)
	}
}

// TestClassify checks the status of real errors from a real server, and of
// errors that are hard to provoke.
func TestClassify(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	js := jsFor(t, s, "classify")
	d := openTestDirectory(t, js, 1)
	ctx := ctxT(t, 20*time.Second)

	errOf := func(_ uint64, err error) error { return err }
	rev, err := d.kv.Create(ctx, "lease.a", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_, errGetMissing := d.kv.Get(ctx, "lease.none")
	_ = d.kv.Delete(ctx, "lease.a")
	_, errGetDeleted := d.kv.Get(ctx, "lease.a")
	_, _ = d.kv.Create(ctx, "lease.a", []byte(`{}`))
	errCreateExists := errOf(d.kv.Create(ctx, "lease.a", []byte(`{}`)))
	errWrongRev := errOf(d.kv.Update(ctx, "lease.a", []byte(`{}`), rev))
	errInvalidKey := errOf(d.kv.Create(ctx, "bad key", nil))

	// A second bucket, for the closed-connection case below.
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: classifyOtherBucket}); err != nil {
		t.Fatal(err)
	}
	// No stream: nobody subscribes to the subject -> no responders.
	if err := js.DeleteStream(ctx, d.stream); err != nil {
		t.Fatal(err)
	}
	errNoResp := errOf(d.kv.Update(ctx, "lease.a", []byte(`{}`), 1))
	_, errGetNoStream := d.kv.Get(ctx, "lease.a")
	// Someone receives the write but never answers -> timeout.
	nc, err := s.Connect("blackhole")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("$KV." + DefaultDirectoryBucket + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	errTimeout := errOf(d.kv.Update(short, "lease.a", []byte(`{}`), 1))
	cancel()
	if m, err := sub.NextMsg(time.Second); err != nil || m == nil {
		t.Fatalf("the timed out write was not received: %v", err)
	}
	// Connection closed.
	nc2, err := s.Connect("closed")
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := jetstream.New(nc2)
	kv2, err := js2.KeyValue(ctx, classifyOtherBucket)
	if err != nil {
		t.Fatal(err)
	}
	nc2.Close()
	errClosed := errOf(kv2.Update(ctx, "lease.a", []byte(`{}`), 1))

	writes := []struct {
		name string
		err  error
		want ownership.Status
	}{
		{"nil", nil, ownership.StatusOK},
		{"real create on present key", errCreateExists, ownership.StatusMismatch},
		{"real cas on old revision", errWrongRev, ownership.StatusMismatch},
		{"real invalid key", errInvalidKey, ownership.StatusFailed},
		{"real no responders", errNoResp, ownership.StatusFailed},
		{"real timeout after delivery", errTimeout, ownership.StatusUnknown},
		{"real connection closed", errClosed, ownership.StatusUnknown},
		{"10164 wrong last sequence (R>1)", fmt.Errorf("nats: %w", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant, Code: 400}), ownership.StatusMismatch},
		{"other API error", fmt.Errorf("nats: %w", &jetstream.APIError{ErrorCode: 10008, Code: 503, Description: "JetStream system temporarily unavailable"}), ownership.StatusUnknown},
		{"nats timeout", nats.ErrTimeout, ownership.StatusUnknown},
		{"deadline", context.DeadlineExceeded, ownership.StatusUnknown},
		{"disconnected after send", nats.ErrDisconnected, ownership.StatusUnknown},
		{"max payload", nats.ErrMaxPayload, ownership.StatusFailed},
		{"raw no responders", nats.ErrNoResponders, ownership.StatusFailed},
	}
	for _, c := range writes {
		if c.err == nil && c.want != ownership.StatusOK {
			t.Errorf("%s: no error produced", c.name)
			continue
		}
		t.Logf("write %-32s %-8s <- %v", c.name, c.want, c.err)
		if got := classifyWrite(c.err); got != c.want {
			t.Errorf("write %s (%v): %s, want %s", c.name, c.err, got, c.want)
		}
	}
	reads := []struct {
		name string
		err  error
		want ownership.Status
	}{
		{"real missing key", errGetMissing, ownership.StatusNotFound},
		{"real deleted key", errGetDeleted, ownership.StatusNotFound},
		{"real no stream", errGetNoStream, ownership.StatusFailed},
		{"timeout", context.DeadlineExceeded, ownership.StatusFailed},
	}
	for _, c := range reads {
		if c.err == nil {
			t.Errorf("%s: no error produced", c.name)
			continue
		}
		t.Logf("read  %-32s %-8s <- %v", c.name, c.want, c.err)
		if got := classifyRead(c.err); got != c.want {
			t.Errorf("read %s (%v): %s, want %s", c.name, c.err, got, c.want)
		}
	}
	if !errors.Is(errNoResp, jetstream.ErrNoStreamResponse) {
		t.Logf("no-responders error is %v", errNoResp)
	}
	// Do on a closed connection: refused before sending.
	d.nc.Close()
	mustStatus(t, d.Do(ctx, leaseOp(1, ownership.OpCreate, "z", 0, 1)), ownership.StatusFailed)
}

const classifyOtherBucket = "classify_other"

func TestRestartKeepsDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := singleConfig(t, dir)
	s := startTestServer(t, cfg)
	nc, err := s.Connect("a")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	d := openTestDirectory(t, js, 1)
	ctx := ctxT(t, 20*time.Second)
	want := map[ownership.Partition]uint64{}
	for p := range ownership.Partition(20) {
		r := mustStatus(t, d.Do(ctx, entryOp(ownership.OpID(p+1), ownership.OpCreate, p, 0, "n1", uint64(p)+1)), ownership.StatusOK)
		want[p] = r.Rev
	}
	nc.Close()
	s.Shutdown()

	s2 := startTestServer(t, cfg)
	d2 := openTestDirectory(t, jsFor(t, s2, "b"), 1)
	for p, rev := range want {
		r := mustStatus(t, d2.Do(ctx, entryOp(1, ownership.OpReadFromLeader, p, 0, "", 0)), ownership.StatusOK)
		if r.Rev != rev || r.Entry.Epoch != uint64(p)+1 {
			t.Fatalf("partition %d after restart: rev %d epoch %d, want rev %d epoch %d", p, r.Rev, r.Entry.Epoch, rev, p+1)
		}
	}
}

func TestCheckPlacement(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	js := jsFor(t, s, "p")
	d := openTestDirectory(t, js, 1)
	ctx := ctxT(t, 20*time.Second)
	rec := PlacementRecord{Partitions: 512, Hasher: "xxhash64", Library: "buraksezer/consistent@v1.0.0", LoadFactor: 1.25}
	if err := d.CheckPlacement(ctx, rec); err != nil {
		t.Fatalf("first check: %v", err)
	}
	if err := d.CheckPlacement(ctx, rec); err != nil {
		t.Fatalf("same record: %v", err)
	}
	other := rec
	other.Partitions, other.LoadFactor = 256, 1.5
	err := d.CheckPlacement(ctx, other)
	var pm *PlacementMismatchError
	if !errors.As(err, &pm) {
		t.Fatalf("different record: %v, want *PlacementMismatchError", err)
	}
	if fmt.Sprint(pm.Fields) != "[partitions load factor]" || pm.Stored != rec || pm.Local != other {
		t.Fatalf("mismatch %+v", pm)
	}
	t.Log(pm.Error())
	// A second directory on the same bucket sees the same record.
	d2 := openTestDirectory(t, jsFor(t, s, "p2"), 1)
	if err := d2.CheckPlacement(ctx, rec); err != nil {
		t.Fatal(err)
	}
}
