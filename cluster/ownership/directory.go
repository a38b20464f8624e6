package ownership

// directory is this node's view of the directory bucket: the latest value
// of each key by revision, merged from the watch and from this node's own
// operations. It is a hint for routing and the basis of decisions, but every
// decision that matters is a compare-and-set against the real bucket.
type directory struct {
	entries map[Partition]entryRec
	leases  map[NodeID]leaseRec
	// watchRev is the highest revision delivered by the ordered watch. The
	// view holds every lease written up to watchRev, so an entry at or below
	// it is never newer than the leases the node knows: claims rely on it.
	watchRev uint64
	synced   bool
}

type entryRec struct {
	entry   Entry
	rev     uint64
	deleted bool
}

type leaseRec struct {
	lease   Lease
	rev     uint64
	deleted bool
}

func newDirectory() directory {
	return directory{entries: map[Partition]entryRec{}, leases: map[NodeID]leaseRec{}}
}

func (d *directory) entry(p Partition) (entryRec, bool) {
	r, ok := d.entries[p]
	return r, ok && !r.deleted
}

// putEntry merges a value by revision; it reports whether it was newer.
func (d *directory) putEntry(p Partition, e *Entry, rev uint64, fromWatch bool) bool {
	if fromWatch && rev > d.watchRev {
		d.watchRev = rev
	}
	if cur, ok := d.entries[p]; ok && cur.rev >= rev {
		return false
	}
	if e == nil {
		d.entries[p] = entryRec{rev: rev, deleted: true}
	} else {
		d.entries[p] = entryRec{entry: *e, rev: rev}
	}
	return true
}

func (d *directory) putLease(id NodeID, l *Lease, rev uint64, fromWatch bool) bool {
	if fromWatch && rev > d.watchRev {
		d.watchRev = rev
	}
	if cur, ok := d.leases[id]; ok && cur.rev >= rev {
		return false
	}
	if l == nil {
		d.leases[id] = leaseRec{rev: rev, deleted: true}
	} else {
		d.leases[id] = leaseRec{lease: *l, rev: rev}
	}
	return true
}

// liveLease tells whether id holds an unrevoked lease in the view.
func (d *directory) liveLease(id NodeID) bool {
	r, ok := d.leases[id]
	return ok && !r.deleted && !r.lease.Revoked
}

func (n *Node) onWatch(ev WatchEvent) {
	switch ev.Key.Kind {
	case EntryKeyKind:
		p := ev.Key.Partition
		if int(p) >= n.cfg.Partitions {
			return
		}
		n.view.putEntry(p, ev.Entry, ev.Rev, true)
		if ev.Entry != nil {
			// Persist the highest epoch seen, so that a directory that later
			// regresses cannot make this node serve an older epoch.
			n.persist(p, ev.Entry.Epoch)
		}
	case LeaseKeyKind:
		newer := n.view.putLease(ev.Key.Node, ev.Lease, ev.Rev, true)
		if newer && ev.Key.Node == n.cfg.NodeID && n.lease.phase == regRegistered && ev.Lease != nil &&
			ev.Lease.Revoked && ev.Lease.Incarnation == n.lease.incarnation && ev.Lease.Nonce == n.nonce(n.lease.incarnation) {
			// Our own lease, revoked: no need to wait for the renewal to
			// mismatch.
			n.lostLease()
		}
	}
}
