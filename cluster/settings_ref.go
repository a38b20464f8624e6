package cluster

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/cluster/settings"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// settingsRef is a kind's view of the replicated settings bucket. The
// runtime is built before NATS is up, so the cache is attached when the
// cluster boots, which is before this node serves any partition: no turn
// of an actor that reads settings runs here before it is set.
type settingsRef[T any] struct {
	cache atomic.Pointer[settings.Cache[T]]
}

var errSettingsNotReady = errors.New("cluster settings not loaded yet")

// Get implements ratelimit.Settings and account.Settings.
func (s *settingsRef[T]) Get(namespace, key string) (T, uint64, bool) {
	c := s.cache.Load()
	if c == nil {
		var zero T
		return zero, 0, false
	}
	return c.Get(namespace, key)
}

// Put implements ratelimit.Settings and account.Settings.
func (s *settingsRef[T]) Put(ctx context.Context, namespace, key string, v T, rev uint64) (uint64, error) {
	c := s.cache.Load()
	if c == nil {
		return 0, errSettingsNotReady
	}
	return c.Put(ctx, namespace, key, v, rev)
}

func (s *settingsRef[T]) close() {
	if c := s.cache.Load(); c != nil {
		c.Close()
	}
}

// Settings is what ratelimit namespaces read their per-key limits from in a
// cluster (settings are not state: on_owner_loss reset keeps them).
func (n *Node) Settings() ratelimit.Settings { return &n.settings }

// AccountSettings is where the account kind keeps each user's own limits
// in a cluster (account.Settings), for the same reason.
func (n *Node) AccountSettings() AccountLimitsStore { return &n.accountSettings }

// AccountLimitsStore is account.Settings, spelled here so that this
// package does not import the gateway.
type AccountLimitsStore interface {
	Get(namespace, user string) (*holdfastv1.AccountLimits, uint64, bool)
	Put(ctx context.Context, namespace, user string, l *holdfastv1.AccountLimits, rev uint64) (uint64, error)
}
