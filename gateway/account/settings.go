package account

import (
	"bytes"
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

// limitsMemo is the user's own and effective limits as last decoded, with
// what they were decoded from: the `limits` key's bytes as a turn read
// them (absent reads as empty, and decodes the same), or the Settings
// entry (its pointer — Settings' results are shared and never modified,
// so the same pointer is the same limits — and found). It is the
// handler's one field that outlives a turn, and no reply depends on it:
// every turn still reads the source (through the Turn, so GateOnReads
// counts a pending write of it, and a set is seen by the very next turn),
// and only an unchanged source skips the decode and the merge over the
// defaults. Eviction, a reset or a rolled-back set therefore needs no
// invalidation: the next read differs, or it does not and the memo is
// right.
type limitsMemo struct {
	ok bool
	// fromSettings: src and found are the source; else raw (the key's
	// bytes, a copy).
	fromSettings bool
	src          *holdfastv1.AccountLimits
	found        bool
	raw          []byte
	own, eff     *holdfastv1.AccountLimits
}

// limits returns the user's own and effective limits for a turn that only
// reads them (admit, settle): ownLimits and effective, memoized (see
// limitsMemo). Both may be shared with later turns: callers must not
// modify them, nor put them in a reply.
func (h *handler) limits(t *actor.Turn) (own, eff *holdfastv1.AccountLimits, err error) {
	m := &h.memo
	if h.d.Settings != nil {
		id := t.ID()
		if l, rev, found := h.d.Settings.Get(id.Namespace, id.Key); rev > 0 {
			if m.ok && m.fromSettings && m.src == l && m.found == found {
				return m.own, m.eff, nil
			}
			own := l
			if !found || l == nil {
				own = &holdfastv1.AccountLimits{}
			}
			*m = limitsMemo{ok: true, fromSettings: true, src: l, found: found, own: own, eff: h.effective(own)}
			return m.own, m.eff, nil
		}
	}
	v, present, err := t.Get(keyLimits)
	if err != nil {
		return nil, nil, err
	}
	if m.ok && !m.fromSettings && bytes.Equal(m.raw, v) {
		return m.own, m.eff, nil
	}
	own = &holdfastv1.AccountLimits{}
	if present {
		if err := proto.Unmarshal(v, own); err != nil {
			return nil, nil, storageErr(keyLimits, err)
		}
	}
	*m = limitsMemo{ok: true, raw: bytes.Clone(v), own: own, eff: h.effective(own)}
	return m.own, m.eff, nil
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
