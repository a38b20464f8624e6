package cluster

// Dropping a partition from memory (actor.Runtime.DropPartition) waits for
// a turn of the partition that is running, and a turn may run for up to
// the turn deadline. The driver loop must not wait that long when it stops
// serving (its lease renewals and the other partitions' moves wait behind
// it), so Stop, StopAll and ReleaseHeld drop in the background, and the
// outputs that put a partition back into service (Serve, Wipe,
// PromoteStaging) first wait for that partition's background drop: a late
// drop would otherwise cancel the alarms and memory state the new serving
// period just loaded. The gate has already stopped the partition before a
// background drop starts, so no new turn of it begins meanwhile.
//
// drops is touched only on the driver loop; the channels are closed by
// the dropping goroutines.

// dropLater drops partition p from memory in the background, after any
// earlier background drop of p.
func (n *Node) dropLater(p int) {
	prev := n.drops[p]
	done := make(chan struct{})
	n.drops[p] = done
	n.goFunc(func() {
		if prev != nil {
			<-prev
		}
		n.rt.DropPartition(p)
		close(done)
	})
}

// dropNow drops partition p from memory before it returns: after its
// background drop, if one is pending, then once more (the partition's
// bucket is about to be replaced or served afresh).
func (n *Node) dropNow(p int) {
	if ch, ok := n.drops[p]; ok {
		<-ch
		delete(n.drops, p)
	}
	n.rt.DropPartition(p)
}
