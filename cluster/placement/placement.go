// Package placement computes the desired partition map: which serving member
// should own each ownership partition, by consistent hashing with bounded
// loads (github.com/buraksezer/consistent v1.0.0, xxhash64).
//
// # Contract
//
// Every node must compute the same map from the same inputs, so the answer
// depends only on Params and on the set of member names: the order in which
// members are given does not matter (they are sorted), and nothing random or
// time-dependent enters. Params, Library and HasherName are what a cluster
// records in its directory; a node whose values differ must refuse to join,
// since it would compute another map.
//
// The library panics when it cannot place a partition (no member has room
// under the load bound). New and DesiredOwner run it under recover: New
// returns a *PlacementError, DesiredOwner answers ok=false. With a
// LoadFactor of at least 1 (which Validate demands) the bound always leaves
// room, so this is a guard, not an expected path.
//
// # Thread-safety
//
// A *Placement is immutable once New returns and every method is safe for
// concurrent use. DesiredOwner with a non-empty without computes the map
// among the other members lazily, once per distinct without, and caches it.
package placement

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"

	"github.com/holdfast/holdfast/cluster/ownership"
)

// Library names the hashing library and version. It is recorded in the
// directory with the Params: another version may place partitions otherwise.
const Library = "github.com/buraksezer/consistent@v1.0.0"

// HasherName names the hash function given to the library.
const HasherName = "xxhash64"

// MaxPartitions bounds Params.Partitions: partition numbers must fit the
// uint16 partition key of the storage layer.
const MaxPartitions = 1 << 16

// MaxReplicationFactor bounds Params.ReplicationFactor (virtual nodes per
// member on the ring).
const MaxReplicationFactor = 1024

// ErrInvalidParams is wrapped by Params.Validate errors.
var ErrInvalidParams = errors.New("placement: invalid params")

// Params are the inputs of the hashing besides the member names. All nodes of
// a cluster must use equal Params.
type Params struct {
	// Partitions is the number of ownership partitions, in [1, MaxPartitions].
	Partitions int
	// ReplicationFactor is the number of points each member has on the ring.
	ReplicationFactor int
	// LoadFactor bounds each member's share: no member owns more than
	// ceil(Partitions/members * LoadFactor) partitions. At least 1.
	LoadFactor float64
}

// DefaultParams returns 2048 partitions, replication factor 20 and load
// factor 1.25.
func DefaultParams() Params {
	return Params{
		Partitions:        2048,
		ReplicationFactor: consistent.DefaultReplicationFactor,
		LoadFactor:        consistent.DefaultLoad,
	}
}

// Validate reports whether p can be used. Errors wrap ErrInvalidParams.
func (p Params) Validate() error {
	switch {
	case p.Partitions < 1 || p.Partitions > MaxPartitions:
		return fmt.Errorf("%w: Partitions %d not in [1, %d]", ErrInvalidParams, p.Partitions, MaxPartitions)
	case p.ReplicationFactor < 1 || p.ReplicationFactor > MaxReplicationFactor:
		return fmt.Errorf("%w: ReplicationFactor %d not in [1, %d]", ErrInvalidParams, p.ReplicationFactor, MaxReplicationFactor)
	case math.IsNaN(p.LoadFactor) || math.IsInf(p.LoadFactor, 0) || p.LoadFactor < 1:
		// Below 1 the bound can leave less room than there are partitions
		// and the library cannot place them all.
		return fmt.Errorf("%w: LoadFactor %v must be a finite number >= 1", ErrInvalidParams, p.LoadFactor)
	}
	return nil
}

// PlacementError reports that the library could not place the partitions
// among the members (it panicked).
type PlacementError struct {
	Members int    // number of members placed among
	Reason  string // the library's panic value
}

func (e *PlacementError) Error() string {
	return fmt.Sprintf("placement: cannot place partitions among %d members: %s", e.Members, e.Reason)
}

// Placement is one desired map: it implements ownership.Placement.
type Placement struct {
	params  Params
	members []ownership.NodeID // sorted, unique
	full    *table             // among all members; nil when there are none
	owners  map[ownership.NodeID]int

	// without caches, per left-out member, the table among the others.
	without sync.Map // ownership.NodeID -> *lazyTable
}

var _ ownership.Placement = (*Placement)(nil)

// table is the owner of every partition, indexed by partition number.
type table struct {
	owner []ownership.NodeID
}

type lazyTable struct {
	once sync.Once
	t    *table // nil when it could not be built or there are no members
}

// New computes the placement of p.Partitions partitions among members.
// Duplicate and empty names are ignored; order does not matter. It fails when
// p is invalid or the library cannot place the partitions.
func New(p Params, members []ownership.NodeID) (*Placement, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return build(p, members)
}

// build is New without Validate (tests use it to reach the recover path).
func build(p Params, members []ownership.NodeID) (*Placement, error) {
	ms := make([]ownership.NodeID, 0, len(members))
	for _, m := range members {
		if m != "" {
			ms = append(ms, m)
		}
	}
	slices.Sort(ms)
	ms = slices.Compact(ms)

	pl := &Placement{params: p, members: ms, owners: make(map[ownership.NodeID]int, len(ms))}
	for _, m := range ms {
		pl.owners[m] = 0
	}
	if len(ms) == 0 {
		return pl, nil
	}
	t, err := compute(p, ms)
	if err != nil {
		return nil, err
	}
	pl.full = t
	for _, o := range t.owner {
		pl.owners[o]++
	}
	return pl, nil
}

// member adapts a NodeID to consistent.Member.
type member string

func (m member) String() string { return string(m) }

// hasher is xxhash64.
type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// compute runs the library over the sorted, non-empty member list and copies
// the result, recovering from its panic.
func compute(p Params, sorted []ownership.NodeID) (t *table, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, &PlacementError{Members: len(sorted), Reason: fmt.Sprint(r)}
		}
	}()
	cms := make([]consistent.Member, len(sorted))
	for i, m := range sorted {
		cms[i] = member(m)
	}
	c := consistent.New(cms, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    p.Partitions,
		ReplicationFactor: p.ReplicationFactor,
		Load:              p.LoadFactor,
	})
	t = &table{owner: make([]ownership.NodeID, p.Partitions)}
	for i := range p.Partitions {
		o := c.GetPartitionOwner(i)
		if o == nil {
			return nil, &PlacementError{Members: len(sorted), Reason: fmt.Sprintf("partition %d has no owner", i)}
		}
		t.owner[i] = ownership.NodeID(o.String())
	}
	return t, nil
}

// DesiredOwner returns the member that should own partition p, computing the
// map among the members other than without (among all of them when without
// is empty or not a member). ok is false when p is out of range, when no
// member is left, or when the map cannot be computed. Safe for concurrent
// use; the first call for a given without computes and caches that map.
func (pl *Placement) DesiredOwner(p ownership.Partition, without ownership.NodeID) (ownership.NodeID, bool) {
	if uint64(p) >= uint64(pl.params.Partitions) {
		return "", false
	}
	t := pl.full
	if without != "" {
		if _, found := slices.BinarySearch(pl.members, without); found {
			t = pl.tableWithout(without)
		}
	}
	if t == nil {
		return "", false
	}
	return t.owner[p], true
}

func (pl *Placement) tableWithout(without ownership.NodeID) *table {
	v, _ := pl.without.LoadOrStore(without, &lazyTable{})
	lt := v.(*lazyTable)
	lt.once.Do(func() {
		rest := make([]ownership.NodeID, 0, len(pl.members)-1)
		for _, m := range pl.members {
			if m != without {
				rest = append(rest, m)
			}
		}
		if len(rest) == 0 {
			return
		}
		// With a valid LoadFactor the library never fails on fewer
		// members; if it ever did, the answer is "nobody" (ok=false).
		lt.t, _ = compute(pl.params, rest)
	})
	return lt.t
}

// Members returns the members, sorted and without duplicates (a copy).
func (pl *Placement) Members() []ownership.NodeID { return slices.Clone(pl.members) }

// Owners returns how many partitions each member owns in the full map (a
// copy, with every member, 0 for those owning none).
func (pl *Placement) Owners() map[ownership.NodeID]int {
	out := make(map[ownership.NodeID]int, len(pl.owners))
	for k, v := range pl.owners {
		out[k] = v
	}
	return out
}

// Params returns the parameters the map was computed with.
func (pl *Placement) Params() Params { return pl.params }
