package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/hashicorp/memberlist"
)

// State is a node's role as seen by the others.
type State string

// Node states.
const (
	// StateJoining: up, not yet serving (registering its lease, catching up).
	StateJoining State = "joining"
	// StateServing: eligible for placement.
	StateServing State = "serving"
	// StateDraining: handing its partitions away; not eligible for placement.
	StateDraining State = "draining"
)

// Valid reports whether s is one of the three states.
func (s State) Valid() bool {
	return s == StateJoining || s == StateServing || s == StateDraining
}

// MaxMetaSize is the largest encoded Meta memberlist carries.
const MaxMetaSize = memberlist.MetaMaxSize

// ErrInvalidMeta is wrapped by Meta validation errors.
var ErrInvalidMeta = errors.New("membership: invalid meta")

// nodeIDPattern is what a node ID may look like (a StatefulSet pod name fits).
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidNodeID reports whether id is a valid node ID: 1 to 64 characters
// from [A-Za-z0-9_-].
func ValidNodeID(id string) bool { return nodeIDPattern.MatchString(id) }

// Meta is a node's metadata, gossiped with its membership (JSON-encoded in
// memberlist's node meta, at most MaxMetaSize bytes).
type Meta struct {
	// NodeID is the node's stable name; equal to the memberlist node name.
	NodeID string `json:"id"`
	// Incarnation is the node's holdfast incarnation (its lease
	// incarnation), not memberlist's own counter.
	Incarnation uint64 `json:"inc,omitempty"`
	Region      string `json:"region,omitempty"`
	GRPCAddr    string `json:"grpc,omitempty"`
	HTTPAddr    string `json:"http,omitempty"`
	State       State  `json:"state"`
	// Load is the node's self-reported load (for holdctl and hot-spot
	// decisions); never negative.
	Load int64 `json:"load,omitempty"`
}

// Validate checks the fields and the encoded size. Errors wrap
// ErrInvalidMeta.
func (m Meta) Validate() error {
	_, err := m.encode()
	return err
}

func (m Meta) encode() ([]byte, error) {
	if !ValidNodeID(m.NodeID) {
		return nil, fmt.Errorf("%w: node ID %q must match %s", ErrInvalidMeta, m.NodeID, nodeIDPattern)
	}
	if !m.State.Valid() {
		return nil, fmt.Errorf("%w: state %q", ErrInvalidMeta, m.State)
	}
	if m.Load < 0 {
		return nil, fmt.Errorf("%w: negative load %d", ErrInvalidMeta, m.Load)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMeta, err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: encoded size %d > %d bytes", ErrInvalidMeta, len(b), MaxMetaSize)
	}
	return b, nil
}

// decodeMeta decodes the meta of memberlist node name and checks that it
// belongs to that node. Unknown JSON fields are ignored (newer peers).
func decodeMeta(name string, b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("%w: node %q: %v", ErrInvalidMeta, name, err)
	}
	if m.NodeID != name {
		return Meta{}, fmt.Errorf("%w: node %q carries meta of %q", ErrInvalidMeta, name, m.NodeID)
	}
	if err := m.Validate(); err != nil {
		return Meta{}, fmt.Errorf("node %q: %w", name, err)
	}
	return m, nil
}
