package actor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// PartitionStore is what the cluster driver does with whole partitions on
// disk: epoch stamps, the highest epoch seen, wipes, and moving a
// partition's data from one node to another through a staging bucket
// (export in chunks on the old owner, staging writes on the new one,
// completion marker last, promotion). *BoltStore implements it durably;
// *MemStore implements it in memory for tests.
//
// Every method is safe for concurrent use with the runtime's commits and
// reads, and runs in its own short storage transaction; none holds a
// runtime lock. The methods that change a partition's bucket (Wipe,
// Promote) expect that no turn of that partition runs and that its writes
// are durable (Runtime.WaitPartitionDurable): otherwise a commit still
// queued for it could land in the new bucket.
type PartitionStore interface {
	// PartitionDisk reads what the data dir holds: per partition the epoch
	// stamped on its bucket, the persisted highest epoch seen, and the
	// staging buckets.
	PartitionDisk() (PartitionDisk, error)
	// SetHighestEpoch records the highest epoch seen for p; durable before
	// it returns.
	SetHighestEpoch(p int, epoch uint64) error
	// StampPartition records that p's bucket holds p's state at epoch;
	// durable; creates the bucket if absent.
	StampPartition(p int, epoch uint64) error
	// WipePartition deletes p's bucket (actors, alarm index and stamp);
	// with epoch > 0 it leaves an empty bucket stamped epoch. Durable.
	WipePartition(p int, epoch uint64) error
	// ExportPartition returns records of p after cursor (nil: from the
	// start), up to about maxBytes (always at least one record while any
	// is left), read in one short read transaction per call; next is nil
	// when done. Actor keys come first (by actor, then key), then the
	// alarm index. The cursor is opaque.
	ExportPartition(p int, cursor []byte, maxBytes int) (recs []PartitionRecord, next []byte, err error)
	// BeginStaging opens a fresh staging bucket for s.HandoffID (dropping
	// any leftover of the same ID). Durable.
	BeginStaging(s StagingInfo) error
	// WriteStaging adds records to the staging bucket of handoffID. It
	// fails (ErrNotFound) when there is none, and when it is complete.
	WriteStaging(handoffID string, recs []PartitionRecord) error
	// CompleteStaging writes the epoch marker carrying handoffID, last;
	// durable. From then on PartitionDisk reports the staging Complete.
	CompleteStaging(handoffID string) error
	// DropStaging deletes the staging bucket of handoffID (none: no-op).
	DropStaging(handoffID string) error
	// PromoteStaging makes the complete staging bucket of handoffID p's
	// bucket, replacing any, stamped epoch, atomically and durably.
	PromoteStaging(handoffID string, p int, epoch uint64) error
}

// PartitionDisk is what PartitionStore.PartitionDisk finds.
type PartitionDisk struct {
	// Stamped gives, for every partition with a bucket, the epoch stamped
	// on it (0: a bucket never stamped, e.g. written by a single node).
	Stamped map[int]uint64
	// Highest is the persisted highest epoch seen, per partition.
	Highest map[int]uint64
	// Staging lists the staging buckets, by handoff ID.
	Staging []StagingInfo
}

// StagingInfo describes one staging bucket.
type StagingInfo struct {
	HandoffID string
	Partition int
	FromEpoch uint64 // the old owner's epoch
	From      string // the old owner's node ID
	Complete  bool   // the epoch marker carrying HandoffID was written (last)
}

// Kinds of PartitionRecord.
const (
	// RecordActorKey is one key of one actor's bucket: Actor is the
	// encoded actor ID, Key the stored key (with its internal prefix:
	// user data, idempotency records, alarm), Value its value.
	RecordActorKey uint8 = 1
	// RecordAlarm is one entry of the partition's alarm index: Key is the
	// index key (8-byte big-endian unix nanos + encoded actor ID); Actor
	// and Value are empty.
	RecordAlarm uint8 = 2
)

// PartitionRecord is one stored entry of a partition, as moved by a
// handoff: a plain struct whose byte fields map one to one onto protobuf
// bytes fields (Kind onto a uint32). Records carry raw storage bytes, so a
// round trip reproduces the bucket byte for byte.
type PartitionRecord struct {
	Kind  uint8
	Actor []byte
	Key   []byte
	Value []byte
}

// size is the record's share of an export chunk.
func (r *PartitionRecord) size() int { return len(r.Actor) + len(r.Key) + len(r.Value) + 16 }

// Bounds of staging.
const maxHandoffIDBytes = 256

func checkHandoffID(id string) error {
	if id == "" || len(id) > maxHandoffIDBytes {
		return fmt.Errorf("%w: handoff id must be 1 to %d bytes, got %d", ErrInvalidArgument, maxHandoffIDBytes, len(id))
	}
	return nil
}

func checkRecord(r *PartitionRecord) error {
	switch r.Kind {
	case RecordActorKey:
		if len(r.Actor) == 0 || len(r.Key) == 0 {
			return fmt.Errorf("%w: actor record with an empty actor or key", ErrInvalidArgument)
		}
		if encodedIDLen(r.Actor) != len(r.Actor) {
			return fmt.Errorf("%w: actor record whose actor is not an encoded actor ID", ErrInvalidArgument)
		}
	case RecordAlarm:
		if len(r.Key) < 8 {
			return fmt.Errorf("%w: alarm index record with a %d-byte key", ErrInvalidArgument, len(r.Key))
		}
	default:
		return fmt.Errorf("%w: partition record of kind %d", ErrInvalidArgument, r.Kind)
	}
	return nil
}

// exportCursor is the position after the last record exported: records
// are ordered by (kind, actor, key). Encoding: kind, uvarint len(actor),
// actor, key.
type exportCursor struct {
	kind       uint8 // 0: before everything
	actor, key []byte
}

var errBadCursor = errors.New("malformed export cursor")

func decodeCursor(b []byte) (exportCursor, error) {
	if len(b) == 0 {
		return exportCursor{}, nil
	}
	c := exportCursor{kind: b[0]}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)-1-k) || (c.kind != RecordActorKey && c.kind != RecordAlarm) {
		return exportCursor{}, fmt.Errorf("%w: %w", ErrInvalidArgument, errBadCursor)
	}
	c.actor = b[1+k : 1+k+int(n)]
	c.key = b[1+k+int(n):]
	return c, nil
}

func (r *PartitionRecord) cursor() []byte {
	b := append([]byte{r.Kind}, binary.AppendUvarint(nil, uint64(len(r.Actor)))...)
	b = append(b, r.Actor...)
	return append(b, r.Key...)
}

// before reports whether the cursor comes before r (r is still to export).
func (c exportCursor) before(r *PartitionRecord) bool {
	if c.kind != r.Kind {
		return c.kind < r.Kind
	}
	if d := bytes.Compare(c.actor, r.Actor); d != 0 {
		return d < 0
	}
	return bytes.Compare(c.key, r.Key) < 0
}

// encodeStagingInfo encodes the info of a staging bucket (HandoffID is its
// name, Complete its marker).
func encodeStagingInfo(s StagingInfo) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(s.Partition))
	b = binary.BigEndian.AppendUint64(b, s.FromEpoch)
	return append(b, s.From...)
}

func decodeStagingInfo(id string, b []byte) (StagingInfo, bool) {
	if len(b) < 12 {
		return StagingInfo{}, false
	}
	return StagingInfo{
		HandoffID: id,
		Partition: int(binary.BigEndian.Uint32(b)),
		FromEpoch: binary.BigEndian.Uint64(b[4:]),
		From:      string(b[12:]),
	}, true
}
