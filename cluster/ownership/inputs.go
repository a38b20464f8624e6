package ownership

// Input is everything the driver feeds to Step.
type Input interface{ isInput() }

// Tick only carries the time (Step's now): leases lapse, renewals fall due,
// countdowns run, failed operations are re-issued. Send one at least every
// RetryInterval.
type Tick struct{}

// Status is the outcome of a KV operation.
type Status uint8

// KV outcomes.
const (
	// StatusOK: applied (writes) or found (reads).
	StatusOK Status = iota + 1
	// StatusMismatch: a compare-and-set found another revision, or a create
	// found the key present. Definitely not applied.
	StatusMismatch
	// StatusNotFound: a read found no key.
	StatusNotFound
	// StatusFailed: definitely not applied (refused before reaching the
	// stream leader, e.g. no responders during a leader election).
	StatusFailed
	// StatusUnknown: no reply in time. The write may or may not have been
	// applied; it may even be applied later.
	StatusUnknown
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusMismatch:
		return "mismatch"
	case StatusNotFound:
		return "not-found"
	case StatusFailed:
		return "failed"
	case StatusUnknown:
		return "unknown"
	}
	return "invalid"
}

// KVResult answers one KVOp. Every KVOp gets exactly one KVResult; results
// of operations a Node has since forgotten are ignored.
type KVResult struct {
	Op     OpID
	Status Status
	// Rev is the revision the write created, or the revision read.
	Rev uint64
	// Lease or Entry is the value read (reads with StatusOK only).
	Lease *Lease
	Entry *Entry
}

// WatchEvent is one change seen by the driver's watch on the whole directory
// bucket. The watch must be a single ordered stream (revisions increasing):
// a node claims only what its watch has shown, and a prefix of the stream
// never shows an entry without the leases written before it. Both values nil
// means the key was deleted.
type WatchEvent struct {
	Key   Key
	Rev   uint64
	Lease *Lease
	Entry *Entry
}

// WatchSynced tells that the watch has delivered the bucket's initial
// contents: from then on a partition absent from the view is absent.
type WatchSynced struct{}

// Reachability is the latest gRPC ping result for every peer (absent means
// unreachable). It replaces the previous one.
type Reachability struct {
	Reachable map[NodeID]bool
}

// SetPlacement replaces the desired map (membership changed).
type SetPlacement struct {
	Placement Placement
}

// DrainedAndDurable tells that, after a Hold, the turns that were running on
// the partition have finished and its last write is durable.
type DrainedAndDurable struct {
	Partition Partition
}

// TransferAcked tells the old owner that the new one wrote the whole staging
// bucket, epoch marker last, and acknowledged it.
type TransferAcked struct {
	HandoffID string
}

// TransferFailed tells the old owner that the transfer stream broke before
// it was acknowledged.
type TransferFailed struct {
	HandoffID string
}

// StagingStarted tells the new owner that a transfer began: the driver has
// opened a fresh staging bucket for HandoffID.
type StagingStarted struct {
	HandoffID string
	Partition Partition
	FromEpoch uint64
	From      NodeID
}

// StagingCompleted tells the new owner that the staging bucket of HandoffID
// is complete: its epoch marker carrying the handoff ID arrived last and is
// durable.
type StagingCompleted struct {
	HandoffID string
}

// HandoffDone is the old owner's message: the entry now names this node at
// Epoch with HandoffID.
type HandoffDone struct {
	HandoffID string
	Partition Partition
	Epoch     uint64
	From      NodeID
}

// HandoffAborted is the old owner's message: HandoffID will never be moved
// to; its staging bucket may go.
type HandoffAborted struct {
	HandoffID string
}

// Drain asks the node to hand every partition it owns to its desired owner
// computed without this node (SIGTERM, holdctl drain).
type Drain struct{}

func (Tick) isInput()              {}
func (KVResult) isInput()          {}
func (WatchEvent) isInput()        {}
func (WatchSynced) isInput()       {}
func (Reachability) isInput()      {}
func (SetPlacement) isInput()      {}
func (DrainedAndDurable) isInput() {}
func (TransferAcked) isInput()     {}
func (TransferFailed) isInput()    {}
func (StagingStarted) isInput()    {}
func (StagingCompleted) isInput()  {}
func (HandoffDone) isInput()       {}
func (HandoffAborted) isInput()    {}
func (Drain) isInput()             {}
