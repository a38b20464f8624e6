package actor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Partition layout of the bbolt file (format holdfast-3):
//
//	partitions/<p>/stamp            8B epoch the bucket was last served at
//	partitions/<p>/a<actor><key>    the actor's keys (rowActor)
//	partitions/<p>/i<at><actor>     the alarm index (rowAlarm)
//	highest/<p>                     8B highest epoch seen
//	staging/<handoff id>/info       partition, from epoch, from node
//	staging/<handoff id>/complete   the handoff ID: the epoch marker, last
//	staging/<handoff id>/<p>/       rows as in partitions/<p>
//
// A partition bucket holds no nested bucket: a commit rewrites each page
// it changes (copy on write), and every level of nesting adds one page per
// partition touched. A small partition's bucket is inline in its parent's
// page. (Format holdfast-2 nested actors/<actor>/ and alarms/ buckets in
// partitions/<p>; OpenBoltStore converts it.)
//
// The staging data bucket is named as the partition's bucket, so promotion
// is one bucket move (bbolt's MoveBucket keeps the name) in one
// transaction. bbolt runs one writer at a time, so staging writes and
// promotions interleave with the committer's commits transaction by
// transaction; each is durable (fsynced) when it returns.

var (
	keyStamp    = []byte("stamp")
	keyInfo     = []byte("info")
	keyComplete = []byte("complete")
)

var _ PartitionStore = (*BoltStore)(nil)

func checkPartitionKey(p int) error {
	if p < 0 || p > 0xffff {
		return fmt.Errorf("%w: partition %d out of [0, 65535]", ErrInvalidArgument, p)
	}
	return nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// PartitionDisk implements PartitionStore.
func (s *BoltStore) PartitionDisk() (PartitionDisk, error) {
	d := PartitionDisk{Stamped: map[int]uint64{}, Highest: map[int]uint64{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPartitions)
		if err := root.ForEachBucket(func(pk []byte) error {
			if len(pk) != 2 {
				return nil
			}
			var epoch uint64
			if v := root.Bucket(pk).Get(keyStamp); len(v) == 8 {
				epoch = binary.BigEndian.Uint64(v)
			}
			d.Stamped[int(binary.BigEndian.Uint16(pk))] = epoch
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHighest).ForEach(func(k, v []byte) error {
			if len(k) == 2 && len(v) == 8 {
				d.Highest[int(binary.BigEndian.Uint16(k))] = binary.BigEndian.Uint64(v)
			}
			return nil
		}); err != nil {
			return err
		}
		st := tx.Bucket(bucketStaging)
		return st.ForEachBucket(func(id []byte) error {
			sb := st.Bucket(id)
			info, ok := decodeStagingInfo(string(id), sb.Get(keyInfo))
			if !ok {
				return nil // cannot happen: info is written with the bucket
			}
			info.Complete = bytes.Equal(sb.Get(keyComplete), id)
			d.Staging = append(d.Staging, info)
			return nil
		})
	})
	if err != nil {
		return PartitionDisk{}, fmt.Errorf("reading the partitions on disk: %w", err)
	}
	return d, nil
}

// SetHighestEpoch implements PartitionStore.
func (s *BoltStore) SetHighestEpoch(p int, epoch uint64) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	return s.update("persisting the highest epoch", p, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHighest).Put(partKey(p), u64(epoch))
	})
}

// StampPartition implements PartitionStore.
func (s *BoltStore) StampPartition(p int, epoch uint64) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	return s.update("stamping", p, func(tx *bolt.Tx) error {
		pb, err := tx.Bucket(bucketPartitions).CreateBucketIfNotExists(partKey(p))
		if err != nil {
			return err
		}
		return pb.Put(keyStamp, u64(epoch))
	})
}

// WipePartition implements PartitionStore.
func (s *BoltStore) WipePartition(p int, epoch uint64) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	return s.update("wiping", p, func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPartitions)
		if err := root.DeleteBucket(partKey(p)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if epoch == 0 {
			return nil
		}
		pb, err := root.CreateBucket(partKey(p))
		if err != nil {
			return err
		}
		return pb.Put(keyStamp, u64(epoch))
	})
}

func (s *BoltStore) update(what string, p int, fn func(tx *bolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("partition %d: %s: %w", p, what, err)
	}
	return nil
}

// ExportPartition implements PartitionStore.
func (s *BoltStore) ExportPartition(p int, cursor []byte, maxBytes int) ([]PartitionRecord, []byte, error) {
	if err := checkPartitionKey(p); err != nil {
		return nil, nil, err
	}
	cur, err := decodeCursor(cursor)
	if err != nil {
		return nil, nil, err
	}
	var recs []PartitionRecord
	size := 0
	full := false
	// add appends a record (copying the transaction's bytes) unless the
	// chunk is full; it reports whether to go on.
	add := func(kind uint8, actor, k, v []byte) bool {
		if len(recs) > 0 && size >= maxBytes {
			full = true
			return false
		}
		r := PartitionRecord{Kind: kind, Key: append([]byte{}, k...)}
		if kind == RecordActorKey {
			r.Actor = append([]byte{}, actor...)
			r.Value = append([]byte{}, v...)
		}
		size += r.size()
		recs = append(recs, r)
		return true
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		pb := tx.Bucket(bucketPartitions).Bucket(partKey(p))
		if pb == nil {
			return nil
		}
		c := pb.Cursor()
		if cur.kind <= RecordActorKey {
			k, v := c.Seek([]byte{rowActor})
			if cur.kind == RecordActorKey {
				after := appendActorRow(nil, cur.actor, cur.key)
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && k[0] == rowActor; k, v = c.Next() {
				actor, key, ok := splitActorRow(k)
				if !ok {
					return fmt.Errorf("malformed actor row %q", k)
				}
				if !add(RecordActorKey, actor, key, v) {
					return nil
				}
			}
		}
		k, _ := c.Seek([]byte{rowAlarm})
		if cur.kind == RecordAlarm {
			after := append([]byte{rowAlarm}, cur.key...)
			if k, _ = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && k[0] == rowAlarm; k, _ = c.Next() {
			if !add(RecordAlarm, nil, k[1:], nil) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("partition %d: export: %w", p, err)
	}
	if !full {
		return recs, nil, nil
	}
	return recs, recs[len(recs)-1].cursor(), nil
}

func stagingBucket(tx *bolt.Tx, handoffID string) *bolt.Bucket {
	return tx.Bucket(bucketStaging).Bucket([]byte(handoffID))
}

func errNoStaging(handoffID string) error {
	return fmt.Errorf("staging %q: %w", handoffID, ErrNotFound)
}

// BeginStaging implements PartitionStore.
func (s *BoltStore) BeginStaging(info StagingInfo) error {
	if err := checkHandoffID(info.HandoffID); err != nil {
		return err
	}
	if err := checkPartitionKey(info.Partition); err != nil {
		return err
	}
	return s.stagingUpdate("begin", info.HandoffID, func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketStaging)
		id := []byte(info.HandoffID)
		if err := st.DeleteBucket(id); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		sb, err := st.CreateBucket(id)
		if err != nil {
			return err
		}
		if err := sb.Put(keyInfo, encodeStagingInfo(info)); err != nil {
			return err
		}
		_, err = sb.CreateBucket(partKey(info.Partition))
		return err
	})
}

func (s *BoltStore) stagingUpdate(what, handoffID string, fn func(tx *bolt.Tx) error) error {
	if err := s.db.Update(fn); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidArgument) {
			return err
		}
		return fmt.Errorf("staging %q: %s: %w", handoffID, what, err)
	}
	return nil
}

// openStaging returns the staging bucket, its data bucket and its info;
// ErrNotFound when there is none.
func openStaging(tx *bolt.Tx, handoffID string) (sb, data *bolt.Bucket, info StagingInfo, err error) {
	sb = stagingBucket(tx, handoffID)
	if sb == nil {
		return nil, nil, info, errNoStaging(handoffID)
	}
	info, ok := decodeStagingInfo(handoffID, sb.Get(keyInfo))
	if !ok {
		return nil, nil, info, fmt.Errorf("staging %q: no info record", handoffID)
	}
	info.Complete = bytes.Equal(sb.Get(keyComplete), []byte(handoffID))
	data = sb.Bucket(partKey(info.Partition))
	if data == nil {
		return nil, nil, info, fmt.Errorf("staging %q: no data bucket", handoffID)
	}
	return sb, data, info, nil
}

// WriteStaging implements PartitionStore.
func (s *BoltStore) WriteStaging(handoffID string, recs []PartitionRecord) error {
	for i := range recs {
		if err := checkRecord(&recs[i]); err != nil {
			return err
		}
	}
	return s.stagingUpdate("write", handoffID, func(tx *bolt.Tx) error {
		_, data, info, err := openStaging(tx, handoffID)
		if err != nil {
			return err
		}
		if info.Complete {
			return fmt.Errorf("staging %q is complete: %w", handoffID, ErrInvalidArgument)
		}
		var buf []byte // row keys: bbolt copies the keys it keeps
		for i := range recs {
			r := &recs[i]
			switch r.Kind {
			case RecordActorKey:
				buf = appendActorRow(buf[:0], r.Actor, r.Key)
				err = data.Put(buf, r.Value)
			case RecordAlarm:
				buf = append(append(buf[:0], rowAlarm), r.Key...)
				err = data.Put(buf, nil)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// CompleteStaging implements PartitionStore.
func (s *BoltStore) CompleteStaging(handoffID string) error {
	return s.stagingUpdate("complete", handoffID, func(tx *bolt.Tx) error {
		sb, _, _, err := openStaging(tx, handoffID)
		if err != nil {
			return err
		}
		return sb.Put(keyComplete, []byte(handoffID))
	})
}

// DropStaging implements PartitionStore.
func (s *BoltStore) DropStaging(handoffID string) error {
	if err := checkHandoffID(handoffID); err != nil {
		return err
	}
	return s.stagingUpdate("drop", handoffID, func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketStaging).DeleteBucket([]byte(handoffID))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
}

// PromoteStaging implements PartitionStore.
func (s *BoltStore) PromoteStaging(handoffID string, p int, epoch uint64) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	return s.stagingUpdate("promote", handoffID, func(tx *bolt.Tx) error {
		sb, data, info, err := openStaging(tx, handoffID)
		if err != nil {
			return err
		}
		if !info.Complete {
			return fmt.Errorf("staging %q is not complete: %w", handoffID, ErrInvalidArgument)
		}
		if info.Partition != p {
			return fmt.Errorf("staging %q holds partition %d, not %d: %w", handoffID, info.Partition, p, ErrInvalidArgument)
		}
		_ = data // unmodified in this transaction: MoveBucket copies its header as stored
		root := tx.Bucket(bucketPartitions)
		if err := root.DeleteBucket(partKey(p)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if err := tx.MoveBucket(partKey(p), sb, root); err != nil {
			return err
		}
		if err := root.Bucket(partKey(p)).Put(keyStamp, u64(epoch)); err != nil {
			return err
		}
		return tx.Bucket(bucketStaging).DeleteBucket([]byte(handoffID))
	})
}

// scanPartitionAlarms calls fn for each entry of p's alarm index, in time
// order (see scanPartitionAlarms in partition.go).
func (s *BoltStore) scanPartitionAlarms(p int, fn func(at int64, actor []byte) bool) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		pb := partitionBucket(tx, p)
		if pb == nil {
			return nil
		}
		return scanAlarmRows(pb, fn)
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}

// Format holdfast-2 nested these buckets in a partition bucket.
var (
	v2BucketActors = []byte("actors")
	v2BucketAlarms = []byte("alarms")
)

// convertFromV2 rewrites every partition bucket and staging data bucket of
// a holdfast-2 file into rows, in tx (one transaction: the conversion is
// all or nothing). The keys and values are copied as they are.
func convertFromV2(tx *bolt.Tx) error {
	root := tx.Bucket(bucketPartitions)
	if root == nil {
		return nil
	}
	if err := root.ForEachBucket(func(pk []byte) error {
		return flattenV2(root.Bucket(pk))
	}); err != nil {
		return err
	}
	st := tx.Bucket(bucketStaging)
	if st == nil {
		return nil
	}
	return st.ForEachBucket(func(id []byte) error {
		sb := st.Bucket(id)
		info, ok := decodeStagingInfo(string(id), sb.Get(keyInfo))
		if !ok {
			return nil
		}
		if data := sb.Bucket(partKey(info.Partition)); data != nil {
			return flattenV2(data)
		}
		return nil
	})
}

// flattenV2 turns one holdfast-2 partition bucket (actors/<actor>/ and
// alarms/ nested buckets) into rows of the same bucket.
func flattenV2(pb *bolt.Bucket) error {
	type row struct{ k, v []byte }
	var rows []row // read first, written after: no writes while a cursor walks
	if ab := pb.Bucket(v2BucketActors); ab != nil {
		if err := ab.ForEachBucket(func(actor []byte) error {
			if encodedIDLen(actor) != len(actor) {
				return fmt.Errorf("malformed actor bucket name %q", actor)
			}
			return ab.Bucket(actor).ForEach(func(k, v []byte) error {
				if v != nil { // nested buckets were never made
					rows = append(rows, row{appendActorRow(nil, actor, k), append([]byte{}, v...)})
				}
				return nil
			})
		}); err != nil {
			return err
		}
	}
	if idx := pb.Bucket(v2BucketAlarms); idx != nil {
		if err := idx.ForEach(func(k, _ []byte) error {
			rows = append(rows, row{append([]byte{rowAlarm}, k...), nil})
			return nil
		}); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{v2BucketActors, v2BucketAlarms} {
		if err := pb.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
	}
	for _, r := range rows {
		if err := pb.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}
