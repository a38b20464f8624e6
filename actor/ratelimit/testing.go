package ratelimit

import (
	"context"
	"fmt"
	"sync"
)

// MemSettings is an in-memory Settings for tests and single-process use:
// one store shared by every runtime given it, with a revision counter like
// a KV bucket's (one sequence across all keys). It is not replicated and
// keeps nothing across restarts. Safe for concurrent use.
type MemSettings struct {
	mu   sync.Mutex
	last uint64
	m    map[memKey]memEntry
}

type memKey struct{ namespace, key string }

type memEntry struct {
	ks  KeySettings // never modified once stored
	rev uint64
}

// NewMemSettings returns an empty MemSettings.
func NewMemSettings() *MemSettings { return &MemSettings{m: map[memKey]memEntry{}} }

// Get implements Settings.
func (s *MemSettings) Get(namespace, key string) (KeySettings, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[memKey{namespace, key}]
	return e.ks, e.rev, ok
}

// Put implements Settings. It stores a copy of ks after a round trip
// through its binary encoding, as a real store would.
func (s *MemSettings) Put(ctx context.Context, namespace, key string, ks KeySettings, rev uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b, err := ks.MarshalBinary()
	if err != nil {
		return 0, err
	}
	var stored KeySettings
	if err := stored.UnmarshalBinary(b); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memKey{namespace, key}
	if have := s.m[k].rev; have != rev {
		return 0, fmt.Errorf("ratelimit: settings of %s/%q: at revision %d, not %d: %w", namespace, key, have, rev, ErrSettingsConflict)
	}
	s.last++
	s.m[k] = memEntry{ks: stored, rev: s.last}
	return s.last, nil
}
