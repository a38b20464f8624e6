package actor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DataFileName is the bbolt file inside the data directory.
const DataFileName = "holdfast.db"

var (
	bucketPartitions = []byte("partitions")
	bucketMeta       = []byte("meta")
	bucketHighest    = []byte("highest") // partKey -> 8B highest epoch seen
	bucketStaging    = []byte("staging") // handoff ID -> staging bucket
	keyFormat        = []byte("format")
	// formatVersion names the layout; a file of another version is refused,
	// except holdfast-2, which OpenBoltStore converts.
	// holdfast-2: partitions are grouped by on_owner_loss (reset
	// namespaces' actors live in [P, 2P)), stamps, highest epochs, staging.
	// holdfast-3: a partition's bucket holds rows, no nested buckets (see
	// bolt_partition.go).
	formatVersion   = []byte("holdfast-3")
	formatVersionV2 = []byte("holdfast-2")
)

// Rows of a partition bucket. An encoded actor ID is prefix-free (its
// fields are length-prefixed: see ID.Encode), so the actor and the key of
// an actor row are unambiguous, and the rows of one actor are exactly the
// keys starting with rowActor + the encoded ID, in key order.
const (
	rowActor = 'a' // 'a' + encoded actor ID + key -> value
	rowAlarm = 'i' // 'i' + alarm index key (8B unix nanos + encoded actor ID) -> empty
)

// appendActorRow appends the row key of actor's key to b.
func appendActorRow(b, actor, key []byte) []byte {
	b = append(b, rowActor)
	b = append(b, actor...)
	return append(b, key...)
}

// splitActorRow splits an actor row key (without checking its first byte)
// into the encoded actor ID and the key; ok is false for a malformed row.
func splitActorRow(row []byte) (actor, key []byte, ok bool) {
	n := encodedIDLen(row[1:])
	if n <= 0 {
		return nil, nil, false
	}
	return row[1 : 1+n], row[1+n:], true
}

// DataDirError explains why a data directory cannot be used.
type DataDirError struct {
	Path   string
	Reason string
	Err    error
}

func (e *DataDirError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("data dir %s: %s: %v", e.Path, e.Reason, e.Err)
	}
	return fmt.Sprintf("data dir %s: %s", e.Path, e.Reason)
}

func (e *DataDirError) Unwrap() error { return e.Err }

// BoltStore is the Store of `local` durability: one bbolt file per node.
type BoltStore struct {
	db        *bolt.DB
	closeOnce sync.Once
	closeErr  error
}

// OpenBoltStore opens (creating if needed) the data directory and its bbolt
// file. It refuses, within about a second and naming the path and reason, a
// path that is not a directory, a directory it cannot write (a read-only
// filesystem included: tests run as root, so permission bits prove nothing),
// and a file locked by another process.
func OpenBoltStore(dir string) (*BoltStore, error) {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return nil, &DataDirError{Path: dir, Reason: "not a directory"}
		}
	} else if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, &DataDirError{Path: dir, Reason: "cannot create", Err: err}
		}
	} else {
		return nil, &DataDirError{Path: dir, Reason: "cannot stat", Err: err}
	}
	// A probe write tells a read-only filesystem from a writable one
	// whatever the permission bits say.
	probe := filepath.Join(dir, ".holdfast-probe")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write([]byte("probe"))
		if serr := f.Sync(); err == nil {
			err = serr
		}
		f.Close()
		os.Remove(probe)
	}
	if err != nil {
		reason := "not writable"
		if errors.Is(err, syscall.EROFS) {
			reason = "on a read-only filesystem"
		}
		return nil, &DataDirError{Path: dir, Reason: reason, Err: err}
	}
	path := filepath.Join(dir, DataFileName)
	// Pages: a group commit writes every page it changed, then fsyncs
	// twice (data, meta); the flat layout of a partition bucket (rows, no
	// nested buckets) keeps that to about one page per partition touched.
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		InitialMmapSize: 256 << 20,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &DataDirError{Path: path, Reason: "in use by another process (file lock held)", Err: err}
		}
		return nil, &DataDirError{Path: path, Reason: "cannot open database", Err: err}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyFormat); {
		case v == nil, bytes.Equal(v, formatVersion):
		case bytes.Equal(v, formatVersionV2):
			if err := convertFromV2(tx); err != nil {
				return fmt.Errorf("converting the data from format %q to %q: %w", v, formatVersion, err)
			}
		default:
			return fmt.Errorf("unsupported data format %q (this build reads %q and converts %q)", v, formatVersion, formatVersionV2)
		}
		if err := meta.Put(keyFormat, formatVersion); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketPartitions, bucketHighest, bucketStaging} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, &DataDirError{Path: path, Reason: "cannot initialise", Err: err}
	}
	return &BoltStore{db: db}, nil
}

func partKey(p int) []byte {
	return binary.BigEndian.AppendUint16(nil, uint16(p))
}

// partitionBucket returns partition's bucket, or nil.
func partitionBucket(tx *bolt.Tx, partition int) *bolt.Bucket {
	var pk [2]byte
	binary.BigEndian.PutUint16(pk[:], uint16(partition))
	return tx.Bucket(bucketPartitions).Bucket(pk[:])
}

// Get implements Store.
func (s *BoltStore) Get(partition int, actor, key []byte) (val []byte, ok bool, err error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	pb := partitionBucket(tx, partition)
	if pb == nil {
		return nil, false, nil
	}
	var buf [128]byte
	if v := pb.Get(appendActorRow(buf[:0], actor, key)); v != nil {
		return append([]byte{}, v...), true, nil
	}
	return nil, false, nil
}

// Scan implements Store.
func (s *BoltStore) Scan(partition int, actor, start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		pb := partitionBucket(tx, partition)
		if pb == nil {
			return nil
		}
		prefix := appendActorRow(nil, actor, nil)
		lo := appendActorRow(nil, actor, start)
		var hi []byte // exclusive
		if end != nil {
			hi = appendActorRow(nil, actor, end)
		} else {
			hi = prefixEnd(prefix)
		}
		c := pb.Cursor()
		if !reverse {
			for k, v := c.Seek(lo); k != nil; k, v = c.Next() {
				if hi != nil && bytes.Compare(k, hi) >= 0 {
					return nil
				}
				if !fn(k[len(prefix):], v) {
					return nil
				}
			}
			return nil
		}
		var k, v []byte
		if hi == nil {
			k, v = c.Last()
		} else if k, _ = c.Seek(hi); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			if bytes.Compare(k, lo) < 0 {
				return nil
			}
			if !fn(k[len(prefix):], v) {
				return nil
			}
		}
		return nil
	})
}

// Commit implements Store: one bbolt read-write transaction, one commit.
// The writes are applied grouped by partition (each partition bucket is
// looked up once), in sequence order within a partition, so one actor's
// writes apply in the order its turns made them.
func (s *BoltStore) Commit(writes []*Write) error {
	byPart := writes
	if !slices.IsSortedFunc(writes, cmpWritePartition) {
		byPart = slices.Clone(writes)
		slices.SortStableFunc(byPart, cmpWritePartition)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPartitions)
		var pb *bolt.Bucket
		var buf []byte // row keys: bbolt copies the keys it keeps
		for i, w := range byPart {
			if i == 0 || w.Partition != byPart[i-1].Partition {
				var err error
				if pb, err = root.CreateBucketIfNotExists(partKey(w.Partition)); err != nil {
					return err
				}
			}
			var err error
			if buf, err = applyAlarmIndex(pb, w.AlarmIndex, buf); err != nil {
				return err
			}
			if buf, err = applyActorOps(pb, w.Actor, w.Ops, buf); err != nil {
				return err
			}
		}
		return nil
	})
}

func cmpWritePartition(a, b *Write) int { return a.Partition - b.Partition }

func applyAlarmIndex(pb *bolt.Bucket, ops []Op, buf []byte) ([]byte, error) {
	for _, op := range ops {
		buf = append(append(buf[:0], rowAlarm), op.Key...)
		var err error
		switch op.Kind {
		case OpPut:
			err = pb.Put(buf, nil)
		case OpDelete:
			err = pb.Delete(buf)
		default:
			err = fmt.Errorf("alarm index: unsupported op %d", op.Kind)
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// applyActorOps applies one actor's ops to its rows in the partition
// bucket pb. An actor with no keys left has no rows: listings show live
// actors.
func applyActorOps(pb *bolt.Bucket, actor []byte, ops []Op, buf []byte) ([]byte, error) {
	for _, op := range ops {
		var err error
		switch op.Kind {
		case OpPut:
			buf = appendActorRow(buf[:0], actor, op.Key)
			err = pb.Put(buf, op.Value)
		case OpDelete:
			buf = appendActorRow(buf[:0], actor, op.Key)
			err = pb.Delete(buf)
		case OpDeletePrefix:
			buf = appendActorRow(buf[:0], actor, op.Key)
			err = deleteRows(pb, buf)
		case OpDeleteActor:
			buf = appendActorRow(buf[:0], actor, nil)
			err = deleteRows(pb, buf)
		default:
			err = fmt.Errorf("unsupported op %d", op.Kind)
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// deleteRows deletes every key of b that starts with prefix.
func deleteRows(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// ScanAlarms implements Store.
func (s *BoltStore) ScanAlarms(fn func(partition int, at int64, actor []byte) bool) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPartitions)
		return root.ForEachBucket(func(pk []byte) error {
			if len(pk) != 2 {
				return nil
			}
			p := int(binary.BigEndian.Uint16(pk))
			return scanAlarmRows(root.Bucket(pk), func(at int64, actor []byte) bool { return fn(p, at, actor) })
		})
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}

// scanAlarmRows calls fn for each alarm index row of pb, in time order; it
// returns errStopScan when fn stops it.
func scanAlarmRows(pb *bolt.Bucket, fn func(at int64, actor []byte) bool) error {
	c := pb.Cursor()
	prefix := []byte{rowAlarm}
	for k, _ := c.Seek(prefix); k != nil && k[0] == rowAlarm; k, _ = c.Next() {
		if len(k) < 9 {
			continue
		}
		if !fn(int64(binary.BigEndian.Uint64(k[1:])), append([]byte{}, k[9:]...)) {
			return errStopScan
		}
	}
	return nil
}

var errStopScan = errors.New("stop scan")

// ScanActors implements Store.
func (s *BoltStore) ScanActors(partition int, prefix []byte, fn func(partition int, actor []byte) bool) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPartitions)
		visit := func(pk []byte) error {
			pb := root.Bucket(pk)
			if pb == nil {
				return nil
			}
			p := int(binary.BigEndian.Uint16(pk))
			want := appendActorRow(nil, prefix, nil)
			c := pb.Cursor()
			k, _ := c.Seek(want)
			for k != nil && bytes.HasPrefix(k, want) {
				actor, _, ok := splitActorRow(k)
				if !ok {
					return fmt.Errorf("partition %d: malformed actor row %q", p, k)
				}
				if !fn(p, append([]byte{}, actor...)) {
					return errStopScan
				}
				// On to the first row past this actor's.
				next := prefixEnd(appendActorRow(nil, actor, nil))
				if next == nil {
					return nil
				}
				k, _ = c.Seek(next)
			}
			return nil
		}
		if partition >= 0 {
			return visit(partKey(partition))
		}
		return root.ForEachBucket(visit)
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}

// Close implements Store.
func (s *BoltStore) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

// Path returns the bbolt file's path.
func (s *BoltStore) Path() string { return s.db.Path() }
