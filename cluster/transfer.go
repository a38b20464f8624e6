package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/cluster/ownership"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// startTransfer streams a held partition's bucket to the new owner, chunk
// by chunk (each chunk read in its own short read transaction), and feeds
// TransferAcked or TransferFailed.
func (n *Node) startTransfer(o ownership.StartTransfer) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandoffTimeout)
	n.xfer.Lock()
	n.xfer.sending[o.HandoffID] = cancel
	n.xfer.Unlock()
	n.goFunc(func() {
		defer cancel()
		err := n.transfer(ctx, o)
		n.xfer.Lock()
		delete(n.xfer.sending, o.HandoffID)
		n.xfer.Unlock()
		if err != nil {
			n.log.Warn("handoff transfer failed", "handoff", o.HandoffID, "partition", o.Partition, "to", o.Target, "err", err)
			n.feed(ownership.TransferFailed{HandoffID: o.HandoffID})
			return
		}
		n.feed(ownership.TransferAcked{HandoffID: o.HandoffID})
	})
}

func (n *Node) transfer(ctx context.Context, o ownership.StartTransfer) error {
	addr, ok := n.addrOf(string(o.Target))
	if !ok {
		return fmt.Errorf("no address for %s", o.Target)
	}
	client, err := n.pool.Client(addr)
	if err != nil {
		return err
	}
	stream, err := client.Transfer(ctx)
	if err != nil {
		return err
	}
	hdr := &holdfastv1.TransferChunk{Header: &holdfastv1.TransferHeader{
		HandoffId: o.HandoffID, Partition: uint32(o.Partition), FromEpoch: o.Epoch, FromNode: n.cfg.NodeID,
	}}
	if err := stream.Send(hdr); err != nil {
		return err
	}
	var cursor []byte
	for {
		recs, next, err := n.store.ExportPartition(int(o.Partition), cursor, n.cfg.TransferChunkBytes)
		if err != nil {
			return fmt.Errorf("reading partition %d: %w", o.Partition, err)
		}
		chunk := &holdfastv1.TransferChunk{Records: make([]*holdfastv1.PartitionRecord, len(recs))}
		for i, r := range recs {
			chunk.Records[i] = &holdfastv1.PartitionRecord{Kind: uint32(r.Kind), Actor: r.Actor, Key: r.Key, Value: r.Value}
		}
		chunk.Done = next == nil
		if err := stream.Send(chunk); err != nil {
			return err
		}
		if next == nil {
			break
		}
		cursor = next
	}
	ack, err := stream.CloseAndRecv()
	if err != nil {
		return err
	}
	if ack.GetHandoffId() != o.HandoffID {
		return fmt.Errorf("acknowledged %q, expected %q", ack.GetHandoffId(), o.HandoffID)
	}
	return nil
}

// receiveTransfer is the new owner's side: a fresh staging bucket, the
// chunks, the epoch marker last (CompleteStaging), then the acknowledgement
// once the ownership Node asks for it.
func (n *Node) receiveTransfer(stream holdfastv1.PeerService_TransferServer) error {
	select {
	case <-n.started:
	default:
		return &UnavailableError{Partition: -1, Why: "starting"}
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil || h.GetHandoffId() == "" {
		return errors.New("transfer: first chunk carries no header")
	}
	if int(h.GetPartition()) >= len(n.gate.parts) {
		return fmt.Errorf("transfer: partition %d out of range", h.GetPartition())
	}
	id := h.GetHandoffId()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	r := &receiver{cancel: cancel, ack: make(chan bool, 1)}
	if err := n.store.BeginStaging(actor.StagingInfo{HandoffID: id, Partition: int(h.GetPartition()), FromEpoch: h.GetFromEpoch(), From: h.GetFromNode()}); err != nil {
		return fmt.Errorf("staging %s: %w", id, err)
	}
	n.xfer.Lock()
	n.xfer.receiving[id] = r
	n.xfer.Unlock()
	n.feed(ownership.StagingStarted{HandoffID: id, Partition: ownership.Partition(h.GetPartition()), FromEpoch: h.GetFromEpoch(), From: ownership.NodeID(h.GetFromNode())})
	chunk := first
	for {
		if len(chunk.GetRecords()) > 0 {
			recs := make([]actor.PartitionRecord, len(chunk.GetRecords()))
			for i, pr := range chunk.GetRecords() {
				recs[i] = actor.PartitionRecord{Kind: uint8(pr.GetKind()), Actor: pr.GetActor(), Key: pr.GetKey(), Value: pr.GetValue()}
			}
			if err := n.store.WriteStaging(id, recs); err != nil {
				return fmt.Errorf("staging %s: %w", id, err)
			}
		}
		if chunk.GetDone() {
			break
		}
		if chunk, err = stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("transfer ended before its last chunk")
			}
			return err
		}
	}
	if err := n.store.CompleteStaging(id); err != nil {
		return fmt.Errorf("staging %s: %w", id, err)
	}
	// Calls for the partition now wait here for its Serve rather than
	// bounce off this node until HandoffDone arrives.
	n.xfer.Lock()
	n.xfer.arriving[id] = int(h.GetPartition())
	n.xfer.Unlock()
	n.gate.arrive(int(h.GetPartition()))
	// Bounded: if no Serve follows, calls stop waiting.
	n.clock.AfterFunc(n.cfg.HandoffTimeout, func() { n.gate.unarrive(int(h.GetPartition())) })
	n.feed(ownership.StagingCompleted{HandoffID: id})
	select {
	case ok := <-r.ack:
		if !ok {
			return fmt.Errorf("staging %s dropped", id)
		}
		return stream.SendAndClose(&holdfastv1.TransferAck{HandoffId: id})
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) sendHandoffDone(o ownership.SendHandoffDone) {
	addr, ok := n.addrOf(string(o.To))
	if !ok {
		return // the new owner takes over from its watch
	}
	client, err := n.pool.Client(addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.KVTimeout)
	defer cancel()
	_, err = client.HandoffDone(ctx, &holdfastv1.HandoffDoneRequest{HandoffId: o.HandoffID, Partition: uint32(o.Partition), Epoch: o.Epoch, FromNode: n.cfg.NodeID})
	if err != nil {
		n.log.Debug("handoff-done message lost; the new owner's watch takes over", "to", o.To, "err", err)
	}
}

func (n *Node) sendAborted(to, id string) {
	addr, ok := n.addrOf(to)
	if !ok {
		return
	}
	client, err := n.pool.Client(addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.KVTimeout)
	defer cancel()
	client.HandoffAborted(ctx, &holdfastv1.HandoffAbortedRequest{HandoffId: id})
}
