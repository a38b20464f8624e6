package actor

import (
	"context"
	"errors"
	"fmt"
)

// Gate is the cluster's say on which partitions this node serves. Set it in
// Config.Gate; nil (a single node) serves every partition and costs the hot
// path nothing but a nil check.
//
// The runtime calls Enter before a turn of partition p (a call, an admin
// read or delete, an alarm fire) takes the actor's turn lock, and Valid
// after the turn's writes are durable and before its reply leaves. The
// partition numbers are the grouped ones of Runtime.PartitionOf.
type Gate interface {
	// Enter is called before a turn for partition p takes the actor's turn
	// lock (calls, alarm fires). It returns the epoch the turn runs at and
	// done, which the runtime calls exactly once when the turn's reply is
	// decided (after the output gate). It may block while p is held for a
	// handoff, until ctx ends. Its error is returned to the caller unchanged
	// (the cluster's NotOwnerError, ErrUnavailable...).
	Enter(ctx context.Context, p int) (epoch uint64, done func(), err error)
	// Valid reports, after the turn's writes are durable and before its
	// reply leaves, whether this node may still serve p at epoch. Must be
	// cheap and non-blocking.
	Valid(p int, epoch uint64) bool
}

// groupedPartition is the ownership partition of an encoded actor ID:
// PartitionOf(enc, p) + p*group (group 1 for on_owner_loss reset
// namespaces, 0 otherwise).
func groupedPartition(enc []byte, p, group int) int {
	return PartitionOf(enc, p) + p*group
}

// PartitionOf returns the partition of id: PartitionOf(encoded id, P) in
// the namespace's placement group, plus P when the namespace's
// on_owner_loss is reset. Storage and ownership use the same number, in
// [0, OwnershipPartitions()). An unknown namespace is ErrUnknownNamespace.
// Safe for concurrent use.
func (r *Runtime) PartitionOf(id ID) (int, error) {
	ns := r.namespaces[id.Namespace]
	if ns == nil {
		return 0, fmt.Errorf("%w %q", ErrUnknownNamespace, id.Namespace)
	}
	var encBuf [128]byte // the turn path calls this: no allocation
	return groupedPartition(id.AppendEncode(encBuf[:0]), r.cfg.Partitions, ns.group), nil
}

// lostAfterTurn is the gate's last word on a turn of partition p entered
// at epoch, once its writes are durable (or their outcome is already
// unknown): nil when this node may still answer for p, else the error
// that replaces the turn's answer err. A turn that wrote has an unknown
// outcome (ErrOwnershipLost); one that only read lost ownership.
func (r *Runtime) lostAfterTurn(p int, epoch uint64, id ID, reqID string, outcome int, err error) error {
	if outcome == turnNotRun || errors.Is(err, ErrStorage) || r.cfg.Gate.Valid(p, epoch) {
		return nil
	}
	if outcome == turnWrote {
		var uo *UnknownOutcomeError
		if errors.As(err, &uo) {
			return err
		}
		return &UnknownOutcomeError{RequestID: reqID, Err: ErrOwnershipLost}
	}
	return fmt.Errorf("actor %s: %w", id, ErrOwnershipLost)
}

// OwnershipPartitions returns how many partitions the cluster owns: 2P, P
// per placement group. Safe for concurrent use.
func (r *Runtime) OwnershipPartitions() int { return 2 * r.cfg.Partitions }

// PartitionPolicy returns the on_owner_loss policy of partition p: reset
// for p >= P (the reset placement group), wait below. Safe for concurrent
// use.
func (r *Runtime) PartitionPolicy(p int) OwnerLoss {
	if p >= r.cfg.Partitions {
		return OwnerLossReset
	}
	return OwnerLossWait
}
