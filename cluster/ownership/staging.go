package ownership

// This file holds the new owner's side of a handoff: staging buckets.

// staged is one staging bucket, per handoff ID.
type staged struct {
	id       string
	p        Partition
	from     uint64 // the old owner's epoch; served at from+1
	sender   NodeID
	complete bool
	// inc is the incarnation that received it; 0 when received by an earlier
	// process or before the lease was lost. A HandoffDone message may make
	// this node serve only staging received under its current incarnation:
	// an older one needs a compare-and-set (takeOwn), since its lease may
	// have been revoked and the partition claimed since.
	inc uint64
}

func (n *Node) onStagingStarted(in StagingStarted) {
	if _, ok := n.staging[in.HandoffID]; ok {
		return
	}
	if n.draining || n.parts[in.Partition] != nil || n.highest[in.Partition] > in.FromEpoch+1 ||
		int(in.Partition) >= n.cfg.Partitions {
		// Leaving, already serving it, or it is older than an epoch we have
		// seen: this staging could never be served.
		n.emit(DropStaging{HandoffID: in.HandoffID})
		return
	}
	// A newer attempt supersedes every older staging of the partition.
	for _, id := range sortedKeys(n.staging) {
		if n.staging[id].p == in.Partition {
			n.dropStaging(id)
		}
	}
	n.staging[in.HandoffID] = &staged{id: in.HandoffID, p: in.Partition, from: in.FromEpoch, sender: in.From, inc: n.Incarnation()}
}

func (n *Node) onStagingCompleted(hid string) {
	s := n.staging[hid]
	if s == nil || s.complete {
		return
	}
	s.complete = true
	n.emit(AckTransfer{HandoffID: hid, To: s.sender})
}

// onHandoffDone serves the staging at once: the old owner moved the entry
// after our acknowledgement, hence during our current incarnation, and
// nobody can have moved it since without revoking this lease.
func (n *Node) onHandoffDone(in HandoffDone) {
	s := n.staging[in.HandoffID]
	if s == nil || !s.complete || s.inc == 0 || s.inc != n.Incarnation() || s.p != in.Partition ||
		s.from+1 != in.Epoch || n.parts[in.Partition] != nil || n.highest[in.Partition] > in.Epoch {
		return // the watch (takeOwn) decides instead
	}
	n.promote(in.HandoffID, in.Partition, in.Epoch)
	n.serveAt(in.Partition, in.Epoch, 0)
}

func (n *Node) dropStaging(hid string) {
	if _, ok := n.staging[hid]; !ok {
		return
	}
	delete(n.staging, hid)
	n.emit(DropStaging{HandoffID: hid})
}

// cleanupStaging drops staging that the directory shows can never be
// served: the entry moved past its epoch, or to that epoch by another
// handoff. An aborted handoff's staging is never served. One pass over the
// staging buckets per step: during a drain a node may hold hundreds, and a
// pass per partition made every step cost partitions × staging.
func (n *Node) cleanupStaging() {
	if len(n.staging) == 0 {
		return
	}
	for _, id := range sortedKeys(n.staging) {
		s := n.staging[id]
		rec, has := n.view.entry(s.p)
		if !has {
			continue
		}
		if e := rec.entry; e.Epoch > s.from+1 || (e.Epoch == s.from+1 && e.HandoffID != s.id) {
			n.dropStaging(id)
		}
	}
}
