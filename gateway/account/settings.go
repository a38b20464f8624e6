package account

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// Settings keeps each user's own limits (what `holdctl limits set` writes)
// outside the user's actor state: in a cluster, the replicated settings
// bucket (cluster.Node.AccountSettings). Settings are not state: an account
// namespace configured with on_owner_loss reset, whose actors restart empty
// after losing their owner, keeps its users' limits.
//
// A user's limits are read from Settings when it has ever written them
// (revision > 0); until then from the actor's own `limits` key, which is
// where a single node keeps them, so that a node's data joins a cluster
// with its limits. The first set through Settings moves them there and
// deletes the key.
type Settings interface {
	// Get returns the user's own limits and their revision (0: never
	// written); found is false if there are none. It is called on every
	// admit and settle, so it must be cheap and never block on the
	// network. The result is shared: callers must not modify it.
	Get(namespace, user string) (l *holdfastv1.AccountLimits, rev uint64, found bool)
	// Put writes l durably and replicated, only if the stored revision is
	// still rev. A mismatch returns an error wrapping
	// ratelimit.ErrSettingsConflict and writes nothing; any other error
	// leaves the outcome unknown. It may block on the network, bounded by
	// ctx. Put never keeps l.
	Put(ctx context.Context, namespace, user string, l *holdfastv1.AccountLimits, rev uint64) (newRev uint64, err error)
}

// settingsPutTimeout bounds a set's write to Settings (also bounded by the
// caller's context and the turn deadline): the turn holds the actor's turn
// lock meanwhile.
const settingsPutTimeout = 5 * time.Second

// ownLimits returns the user's own limits, which the caller must not
// modify (they may be the cache's), and, with Settings, the revision to
// write them at.
func (h *handler) ownLimits(t *actor.Turn) (*holdfastv1.AccountLimits, uint64, error) {
	if h.d.Settings != nil {
		id := t.ID()
		if l, rev, found := h.d.Settings.Get(id.Namespace, id.Key); rev > 0 {
			if !found || l == nil {
				return &holdfastv1.AccountLimits{}, rev, nil
			}
			return l, rev, nil
		}
	}
	l := &holdfastv1.AccountLimits{}
	if err := getProto(t, keyLimits, l); err != nil {
		return nil, 0, err
	}
	return l, 0, nil
}

// saveOwnLimits stores own: with Settings by a compare-and-set at rev
// (the turn lock serializes sets on the owner; the revision fences a
// deposed owner or a lagging cache), then drops the state's copy; without,
// in the actor's state. A failed write fails the turn, which then writes
// nothing.
func (h *handler) saveOwnLimits(t *actor.Turn, own *holdfastv1.AccountLimits, rev uint64) error {
	if h.d.Settings == nil {
		if proto.Equal(own, &holdfastv1.AccountLimits{}) {
			_, err := t.Delete(keyLimits)
			return err
		}
		return putProto(t, keyLimits, own)
	}
	ctx := t.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, min(settingsPutTimeout, t.Limits().TurnDeadline))
	defer cancel()
	id := t.ID()
	if _, err := h.d.Settings.Put(ctx, id.Namespace, id.Key, own, rev); err != nil {
		return fmt.Errorf("account: limits set: settings not written (retry): %w: %w", actor.ErrStorage, err)
	}
	_, err := t.Delete(keyLimits)
	return err
}
