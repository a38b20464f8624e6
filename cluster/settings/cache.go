package settings

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/cluster/natsdir"
	"github.com/nats-io/nats.go/jetstream"
)

// keyPrefix starts the KV key of every ratelimit setting.
const keyPrefix = "rl."

// accountPrefix starts the KV key of every account's limits.
const accountPrefix = "acct."

// emptyPart encodes an empty namespace or key: '=' is a valid KV key
// character outside the base64url alphabet.
const emptyPart = "="

var b64 = base64.RawURLEncoding

// Key returns the KV key of the settings of (namespace, key):
// "rl.<base64url(namespace)>.<base64url(key)>", "=" for an empty part.
func Key(namespace, key string) string { return keyOf(keyPrefix, namespace, key) }

func keyOf(prefix, namespace, key string) string {
	return prefix + encodePart(namespace) + "." + encodePart(key)
}

func encodePart(s string) string {
	if s == "" {
		return emptyPart
	}
	return b64.EncodeToString([]byte(s))
}

func decodePart(s string) (string, bool) {
	if s == emptyPart {
		return "", true
	}
	b, err := b64.DecodeString(s)
	if err != nil || len(b) == 0 || b64.EncodeToString(b) != s { // canonical only
		return "", false
	}
	return string(b), true
}

// ParseKey is the inverse of Key; ok is false for any other string.
func ParseKey(k string) (namespace, key string, ok bool) { return parseKey(keyPrefix, k) }

func parseKey(prefix, k string) (namespace, key string, ok bool) {
	rest, found := strings.CutPrefix(k, prefix)
	if !found {
		return "", "", false
	}
	ns, key, found := strings.Cut(rest, ".")
	if !found {
		return "", "", false
	}
	if namespace, ok = decodePart(ns); !ok {
		return "", "", false
	}
	if key, ok = decodePart(key); !ok {
		return "", "", false
	}
	return namespace, key, true
}

// Cache is the node's copy of one kind of settings of the settings
// bucket: Cache[ratelimit.KeySettings] implements ratelimit.Settings,
// Cache[*holdfastv1.AccountLimits] the account kind's settings. See the
// package doc for the contract.
type Cache[T any] struct {
	kv   jetstream.KeyValue
	log  *slog.Logger
	kind Kind[T]

	mu sync.RWMutex
	m  map[id]entry[T]

	synced     chan struct{} // closed once the first watch caught up
	syncedOnce sync.Once
	cancel     context.CancelFunc
	done       chan struct{} // closed when the watch goroutine returned
	closeOnce  sync.Once
}

type id struct{ namespace, key string }

// entry is one key's cached settings. v is never modified once stored
// (Get hands it out). found is false for a deletion (a tombstone, kept
// for its revision).
type entry[T any] struct {
	v     T
	rev   uint64
	found bool
}

var _ ratelimit.Settings = (*Cache[ratelimit.KeySettings])(nil)

// Open binds to the settings bucket through js and returns New's cache
// of kind's settings. The bucket must exist: natsdir.OpenSettings creates
// it (with its replicas); call that first.
func Open[T any](ctx context.Context, js jetstream.JetStream, kind Kind[T], logger *slog.Logger) (*Cache[T], error) {
	kv, err := js.KeyValue(ctx, natsdir.SettingsBucket)
	if err != nil {
		return nil, fmt.Errorf("settings: bind bucket %s: %w", natsdir.SettingsBucket, err)
	}
	return New(ctx, kv, kind, logger)
}

// New starts watching kv's settings of kind and returns once the current
// values are loaded, or ctx's error (wrapped) if ctx ends first. The
// watch runs on its own goroutine until Close; ctx bounds only the
// initial load. A nil logger discards.
func New[T any](ctx context.Context, kv jetstream.KeyValue, kind Kind[T], logger *slog.Logger) (*Cache[T], error) {
	if kv == nil {
		return nil, errors.New("settings: nil KeyValue")
	}
	if err := kind.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wctx, cancel := context.WithCancel(context.Background())
	c := &Cache[T]{
		kv:     kv,
		log:    logger,
		kind:   kind,
		m:      map[id]entry[T]{},
		synced: make(chan struct{}),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	c.start(func() { c.watch(wctx) })
	select {
	case <-c.synced:
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("settings: loading the initial values: %w", ctx.Err())
	}
}

// start runs the cache's one goroutine; Close stops it and waits.
func (c *Cache[T]) start(fn func()) {
	go func() {
		defer close(c.done)
		fn()
	}()
}

// Close stops the watch and waits for its goroutine. Idempotent; always
// nil. The cache keeps answering Get (and Put) with what it has.
func (c *Cache[T]) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.done
	})
	return nil
}

// Get implements ratelimit.Settings (and the account kind's settings):
// the cached settings of (namespace, key) and their revision, the zero T
// when there are none. Never blocks on the network; the returned value is
// shared and must not be modified.
func (c *Cache[T]) Get(namespace, key string) (T, uint64, bool) {
	c.mu.RLock()
	e, ok := c.m[id{namespace, key}]
	c.mu.RUnlock()
	if !ok {
		var zero T
		return zero, 0, false
	}
	return e.v, e.rev, e.found
}

// Put implements ratelimit.Settings (and the account kind's settings): a
// compare-and-set of the settings of (namespace, key) on the KV, at
// revision rev (0: never written). See the package doc.
func (c *Cache[T]) Put(ctx context.Context, namespace, key string, s T, rev uint64) (uint64, error) {
	val, err := c.kind.Marshal(s)
	if err != nil {
		return 0, fmt.Errorf("settings: put %s/%q: %w", namespace, key, err)
	}
	k := keyOf(c.kind.Prefix, namespace, key)
	var newRev uint64
	if rev == 0 {
		newRev, err = c.kv.Create(ctx, k, val)
	} else {
		newRev, err = c.kv.Update(ctx, k, val, rev)
	}
	if err != nil {
		if natsdir.IsWrongLastSeq(err) {
			c.refresh(ctx, k)
			return 0, fmt.Errorf("settings: put %s/%q at revision %d: %w: %w", namespace, key, rev, ErrConflict, err)
		}
		return 0, fmt.Errorf("settings: put %s/%q (outcome unknown): %w", namespace, key, err)
	}
	c.store(id{namespace, key}, entry[T]{v: c.kind.Clone(s), rev: newRev, found: true})
	return newRev, nil
}

// refresh re-reads k after a conflict, best effort, so that a retry sees
// the newer revision even if the watch lags.
func (c *Cache[T]) refresh(ctx context.Context, k string) {
	e, err := c.kv.Get(ctx, k)
	if err != nil {
		c.log.Debug("settings: refresh after a conflict failed", "key", k, "err", err)
		return
	}
	c.apply(k, e.Value(), e.Revision(), false)
}

// store installs e for i unless the cache already holds that revision or
// a later one.
func (c *Cache[T]) store(i id, e entry[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[i]; ok && old.rev >= e.rev {
		return
	}
	c.m[i] = e
}

// apply takes one KV entry (from the watch or a refresh) into the cache.
func (c *Cache[T]) apply(k string, val []byte, rev uint64, deleted bool) {
	ns, key, ok := parseKey(c.kind.Prefix, k)
	if !ok {
		c.log.Warn("settings: ignoring a key that is not <prefix><namespace>.<key>", "key", k, "revision", rev)
		return
	}
	i := id{ns, key}
	if deleted {
		c.store(i, entry[T]{rev: rev})
		return
	}
	v, err := c.kind.Unmarshal(val)
	if err != nil {
		c.log.Error("settings: stored value does not decode; keeping the last good settings until the next set",
			"namespace", ns, "key", key, "revision", rev, "err", err)
		c.mu.Lock()
		defer c.mu.Unlock()
		if old := c.m[i]; old.rev < rev {
			old.rev = rev
			c.m[i] = old
		}
		return
	}
	c.store(i, entry[T]{v: v, rev: rev, found: true})
}

func (c *Cache[T]) markSynced() { c.syncedOnce.Do(func() { close(c.synced) }) }

// watch follows the bucket's ratelimit keys until ctx ends, restarting a
// broken watch with backoff.
func (c *Cache[T]) watch(ctx context.Context) {
	const minWait, maxWait = 50 * time.Millisecond, 2 * time.Second
	wait := minWait
	for ctx.Err() == nil {
		w, err := c.kv.Watch(ctx, c.kind.Prefix+">")
		if err != nil {
			c.log.Debug("settings: watch failed, retrying", "err", err, "in", wait)
		} else {
			if c.consume(ctx, w) {
				wait = minWait
			}
			natsdir.StopWatcher(w)
			if ctx.Err() == nil {
				c.log.Debug("settings: watch broken, restarting", "in", wait)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxWait)
	}
}

// consume applies w's entries until ctx ends or w closes, and reports
// whether it received anything.
func (c *Cache[T]) consume(ctx context.Context, w jetstream.KeyWatcher) bool {
	got := false
	for {
		select {
		case <-ctx.Done():
			return got
		case e, ok := <-w.Updates():
			if !ok {
				return got
			}
			got = true
			if e == nil { // caught up with the values as of the watch's start
				c.markSynced()
				continue
			}
			c.apply(e.Key(), e.Value(), e.Revision(), e.Operation() != jetstream.KeyValuePut)
		}
	}
}
