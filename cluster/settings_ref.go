package cluster

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/cluster/settings"
)

// settingsRef is the ratelimit kind's view of the replicated settings
// bucket. The runtime is built before NATS is up, so the cache is attached
// when the cluster boots, which is before this node serves any partition:
// no turn of a ratelimit actor runs here before it is set.
type settingsRef struct {
	cache atomic.Pointer[settings.Cache]
}

var errSettingsNotReady = errors.New("cluster settings not loaded yet")

// Get implements ratelimit.Settings.
func (s *settingsRef) Get(namespace, key string) (ratelimit.KeySettings, uint64, bool) {
	c := s.cache.Load()
	if c == nil {
		return ratelimit.KeySettings{}, 0, false
	}
	return c.Get(namespace, key)
}

// Put implements ratelimit.Settings.
func (s *settingsRef) Put(ctx context.Context, namespace, key string, ks ratelimit.KeySettings, rev uint64) (uint64, error) {
	c := s.cache.Load()
	if c == nil {
		return 0, errSettingsNotReady
	}
	return c.Put(ctx, namespace, key, ks, rev)
}

// Settings is what ratelimit namespaces read their per-key limits from in a
// cluster (settings are not state: on_owner_loss reset keeps them).
func (n *Node) Settings() ratelimit.Settings { return &n.settings }
