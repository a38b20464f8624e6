package ownership

import (
	"fmt"
	"hash/fnv"
)

// RendezvousPlacement is a deterministic Placement (highest random weight
// hashing) over a member list, for tests.
type RendezvousPlacement struct {
	Members []NodeID
}

// DesiredOwner implements Placement.
func (r RendezvousPlacement) DesiredOwner(p Partition, without NodeID) (NodeID, bool) {
	var best NodeID
	var bestW uint64
	found := false
	for _, m := range r.Members {
		if m == without {
			continue
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%s", p, m)
		if w := h.Sum64(); !found || w > bestW || (w == bestW && m < best) {
			best, bestW, found = m, w, true
		}
	}
	return best, found
}

// OverridePlacement pins some partitions on chosen nodes and asks Base for
// the others (and for a pinned partition when its node is left out).
type OverridePlacement struct {
	Base  Placement
	Fixed map[Partition]NodeID
}

// DesiredOwner implements Placement.
func (o OverridePlacement) DesiredOwner(p Partition, without NodeID) (NodeID, bool) {
	if id, ok := o.Fixed[p]; ok && id != without {
		return id, true
	}
	return o.Base.DesiredOwner(p, without)
}
