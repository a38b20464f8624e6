package actor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	bucketActors     = []byte("actors")
	bucketAlarms     = []byte("alarms")
	bucketMeta       = []byte("meta")
	bucketHighest    = []byte("highest") // partKey -> 8B highest epoch seen
	bucketStaging    = []byte("staging") // handoff ID -> staging bucket
	keyFormat        = []byte("format")
	// formatVersion names the layout; a file of another version is refused.
	// holdfast-2: partitions are grouped by on_owner_loss (reset
	// namespaces' actors live in [P, 2P)), stamps, highest epochs, staging.
	formatVersion = []byte("holdfast-2")
)

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
		if v := meta.Get(keyFormat); v != nil && !bytes.Equal(v, formatVersion) {
			return fmt.Errorf("unsupported data format %q (this build reads %q)", v, formatVersion)
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

func actorBucket(tx *bolt.Tx, partition int, actor []byte) *bolt.Bucket {
	pb := tx.Bucket(bucketPartitions).Bucket(partKey(partition))
	if pb == nil {
		return nil
	}
	ab := pb.Bucket(bucketActors)
	if ab == nil {
		return nil
	}
	return ab.Bucket(actor)
}

// Get implements Store.
func (s *BoltStore) Get(partition int, actor, key []byte) (val []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := actorBucket(tx, partition, actor)
		if b == nil {
			return nil
		}
		if v := b.Get(key); v != nil {
			val, ok = append([]byte{}, v...), true
		}
		return nil
	})
	return val, ok, err
}

// Scan implements Store.
func (s *BoltStore) Scan(partition int, actor, start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := actorBucket(tx, partition, actor)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		if !reverse {
			for k, v := c.Seek(start); k != nil; k, v = c.Next() {
				if end != nil && bytes.Compare(k, end) >= 0 {
					return nil
				}
				if v == nil { // nested bucket: none are made, skip defensively
					continue
				}
				if !fn(k, v) {
					return nil
				}
			}
			return nil
		}
		var k, v []byte
		if end == nil {
			k, v = c.Last()
		} else {
			if k, _ = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			if bytes.Compare(k, start) < 0 {
				return nil
			}
			if v == nil {
				continue
			}
			if !fn(k, v) {
				return nil
			}
		}
		return nil
	})
}

// Commit implements Store: one bbolt read-write transaction, one commit.
func (s *BoltStore) Commit(writes []*Write) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPartitions)
		for _, w := range writes {
			pb, err := root.CreateBucketIfNotExists(partKey(w.Partition))
			if err != nil {
				return err
			}
			if err := applyAlarmIndex(pb, w.AlarmIndex); err != nil {
				return err
			}
			actors, err := pb.CreateBucketIfNotExists(bucketActors)
			if err != nil {
				return err
			}
			if err := applyActorOps(actors, w.Actor, w.Ops); err != nil {
				return err
			}
		}
		return nil
	})
}

func applyAlarmIndex(pb *bolt.Bucket, ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	idx, err := pb.CreateBucketIfNotExists(bucketAlarms)
	if err != nil {
		return err
	}
	for _, op := range ops {
		switch op.Kind {
		case OpPut:
			err = idx.Put(op.Key, nil)
		case OpDelete:
			err = idx.Delete(op.Key)
		default:
			err = fmt.Errorf("alarm index: unsupported op %d", op.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func applyActorOps(actors *bolt.Bucket, actor []byte, ops []Op) error {
	var b *bolt.Bucket
	for _, op := range ops {
		if op.Kind == OpDeleteActor {
			if err := actors.DeleteBucket(actor); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
			b = nil
			continue
		}
		if b == nil {
			var err error
			if b, err = actors.CreateBucketIfNotExists(actor); err != nil {
				return err
			}
		}
		switch op.Kind {
		case OpPut:
			if err := b.Put(op.Key, op.Value); err != nil {
				return err
			}
		case OpDelete:
			if err := b.Delete(op.Key); err != nil {
				return err
			}
		case OpDeletePrefix:
			c := b.Cursor()
			for k, _ := c.Seek(op.Key); k != nil && bytes.HasPrefix(k, op.Key); k, _ = c.Seek(op.Key) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unsupported op %d", op.Kind)
		}
	}
	// An actor with no keys left has no bucket: listings show live actors.
	if b != nil {
		if k, _ := b.Cursor().First(); k == nil {
			return actors.DeleteBucket(actor)
		}
	}
	return nil
}

// ScanAlarms implements Store.
func (s *BoltStore) ScanAlarms(fn func(partition int, at int64, actor []byte) bool) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPartitions).ForEachBucket(func(pk []byte) error {
			idx := tx.Bucket(bucketPartitions).Bucket(pk).Bucket(bucketAlarms)
			if idx == nil || len(pk) != 2 {
				return nil
			}
			p := int(binary.BigEndian.Uint16(pk))
			c := idx.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if len(k) < 8 {
					continue
				}
				if !fn(p, int64(binary.BigEndian.Uint64(k)), append([]byte{}, k[8:]...)) {
					return errStopScan
				}
			}
			return nil
		})
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
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
			ab := pb.Bucket(bucketActors)
			if ab == nil {
				return nil
			}
			p := int(binary.BigEndian.Uint16(pk))
			c := ab.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if !fn(p, append([]byte{}, k...)) {
					return errStopScan
				}
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
