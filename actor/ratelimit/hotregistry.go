package ratelimit

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor"
)

// HotEntry is one actor of this node above its hot threshold, or split, as
// its last turn saw it.
type HotEntry struct {
	ID actor.ID
	// Mode: unsplit, split, merging, static (a parent); shard, retired,
	// uninitialised (a shard).
	Mode       string
	Shards     int
	Generation uint64
	// TurnsPerSecond is this actor's rate; KeyTurnsPerSecond times the
	// shard count for a shard (an estimate for the whole key).
	TurnsPerSecond    float64
	KeyTurnsPerSecond float64
	// GrantsOutstanding: allowances this actor granted that were neither
	// returned nor past expiry + grace when last counted.
	GrantsOutstanding int
	// Updated is when the entry was last reported (the turn's time).
	Updated time.Time
}

// hotEntryTTL: an entry not reported for this long is dropped from List
// (the actor went quiet, was evicted, or its partition moved away).
const hotEntryTTL = 10 * time.Second

// HotRegistry collects a node's hot actors for `holdctl hot`. Handlers
// report from their turns (no I/O, one short lock). Safe for concurrent
// use; the zero value is not usable, use NewHotRegistry.
type HotRegistry struct {
	mu sync.Mutex
	m  map[actor.ID]HotEntry
}

// NewHotRegistry returns an empty registry.
func NewHotRegistry() *HotRegistry { return &HotRegistry{m: map[actor.ID]HotEntry{}} }

// Report records e (replacing the entry of e.ID).
func (r *HotRegistry) Report(e HotEntry) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.m[e.ID] = e
	r.mu.Unlock()
}

// Forget drops id's entry.
func (r *HotRegistry) Forget(id actor.ID) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// List returns the entries reported within the last 10 s before now,
// sorted by namespace, key and shard, dropping older ones.
func (r *HotRegistry) List(now time.Time) []HotEntry {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	out := make([]HotEntry, 0, len(r.m))
	for id, e := range r.m {
		if now.Sub(e.Updated) > hotEntryTTL {
			delete(r.m, id)
			continue
		}
		out = append(out, e)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b HotEntry) int {
		if c := strings.Compare(a.ID.Namespace, b.ID.Namespace); c != 0 {
			return c
		}
		if c := strings.Compare(a.ID.Key, b.ID.Key); c != 0 {
			return c
		}
		return int(a.ID.Shard) - int(b.ID.Shard)
	})
	return out
}
