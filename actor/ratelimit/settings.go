package ratelimit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrSettingsConflict is wrapped by Settings.Put when the stored settings
// are no longer at the revision the caller read: someone else wrote them
// in between (a deposed owner, or this node's cache lagged). Nothing was
// written; re-reading and retrying is safe.
var ErrSettingsConflict = errors.New("settings changed concurrently")

// KeySettings are one key's settings: its per-key limits and daily budget.
// They are what `ratelimit set` changes; bucket levels and spend are state
// and are not part of them.
type KeySettings struct {
	// Limits are the per-key bucket limits, over the namespace defaults.
	// A map returned by Settings.Get is shared: never modify it (Clone
	// first).
	Limits map[string]Limit
	// DailyBudgetNanos is the per-key daily budget; 0: none (the
	// namespace default applies).
	DailyBudgetNanos int64
}

// Clone returns a deep copy of k whose Limits map the caller owns
// (never nil).
func (k KeySettings) Clone() KeySettings {
	c := KeySettings{Limits: make(map[string]Limit, len(k.Limits)), DailyBudgetNanos: k.DailyBudgetNanos}
	maps.Copy(c.Limits, k.Limits)
	return c
}

// Settings is where a clustered ratelimit namespace keeps its keys'
// settings, outside actor state, so that a fresh actor state (on_owner_loss
// reset after the owner crashed) loses bucket levels and spend only, never
// limits. Settings are per (namespace, key): every shard of a key shares
// them. Implementations must be safe for concurrent use.
type Settings interface {
	// Get returns the key's settings and their revision (0: never
	// written), found false if there are none. It is called on every
	// turn that needs limits, so it must be cheap (a cache read) and never
	// block on the network. After a successful Put on this node it returns
	// what was put (or something newer). The Limits map is shared: callers
	// must not modify it. A revision with found false is the revision of
	// a deletion, to be passed to Put like any other.
	Get(namespace, key string) (KeySettings, uint64, bool)
	// Put writes s durably and replicated, only if the stored revision is
	// still rev (0: never written). A mismatch returns an error wrapping
	// ErrSettingsConflict and writes nothing. It may block on the
	// network, bounded by ctx; any other error leaves the outcome unknown.
	Put(ctx context.Context, namespace, key string, s KeySettings, rev uint64) (newRev uint64, err error)
}

// validBucketName reports whether name may name a bucket: 1-128 bytes, no
// '/' (it is part of a storage key) and no NUL.
func validBucketName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\x00") && len(name) <= 128
}

// Validate reports whether k can be stored: valid bucket names and
// limits, and a budget that is not negative.
func (k KeySettings) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(k.Limits)) {
		if !validBucketName(name) {
			return fmt.Errorf("ratelimit: invalid bucket name %q (1-128 bytes, no '/'): %w", name, ErrInvalidLimit)
		}
		if err := k.Limits[name].Validate(); err != nil {
			err.(*LimitError).Name = name
			return err
		}
	}
	if k.DailyBudgetNanos < 0 {
		return fmt.Errorf("ratelimit: daily budget %d nano-dollars: %w", k.DailyBudgetNanos, ErrInvalidBudget)
	}
	return nil
}

// tagSettingsV1 is the encoding of KeySettings: the tag byte (kind 3,
// version 1), DailyBudgetNanos uvarint, the number of limits uvarint, then
// per limit in strictly increasing name order: name length uvarint, name
// bytes, Capacity uvarint, Refill uvarint. Like every encoding here it is
// minimal, so equal settings encode to equal bytes.
const tagSettingsV1 = 0x31

// AppendBinary appends the encoding of k to b; settings that do not
// Validate are refused, so that everything stored decodes.
func (k KeySettings) AppendBinary(b []byte) ([]byte, error) {
	if err := k.Validate(); err != nil {
		return b, err
	}
	b = append(b, tagSettingsV1)
	b = binary.AppendUvarint(b, uint64(k.DailyBudgetNanos))
	b = binary.AppendUvarint(b, uint64(len(k.Limits)))
	for _, name := range slices.Sorted(maps.Keys(k.Limits)) {
		l := k.Limits[name]
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(l.Capacity))
		b = binary.AppendUvarint(b, uint64(l.Refill))
	}
	return b, nil
}

// MarshalBinary encodes k; see AppendBinary.
func (k KeySettings) MarshalBinary() ([]byte, error) { return k.AppendBinary(nil) }

// UnmarshalBinary decodes data into k. Anything but a well-formed encoding
// of valid settings is an error wrapping ErrCorrupt, and leaves k alone.
func (k *KeySettings) UnmarshalBinary(data []byte) error {
	d := decoder{what: "settings", b: data}
	d.tag(tagSettingsV1)
	v := KeySettings{DailyBudgetNanos: d.int64()}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // each limit takes ≥ 4 bytes
		d.fail("limit count exceeds the data")
	}
	v.Limits = make(map[string]Limit, min(n, 64))
	prev := ""
	for i := uint64(0); d.err == nil && i < n; i++ {
		ln := d.uvarint()
		if d.err == nil && ln > uint64(len(d.b)) {
			d.fail("truncated bucket name")
			break
		}
		name := string(d.b[:ln])
		d.b = d.b[ln:]
		if i > 0 && name <= prev {
			d.fail("bucket names not in strictly increasing order")
			break
		}
		prev = name
		v.Limits[name] = Limit{Capacity: d.int64(), Refill: d.int64()}
	}
	d.end()
	if d.err != nil {
		return d.err
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("ratelimit: decode settings: %w: %w", ErrCorrupt, err)
	}
	*k = v
	return nil
}

// Equal reports whether k and o hold the same settings (a nil and an
// empty Limits map are equal).
func (k KeySettings) Equal(o KeySettings) bool {
	return k.DailyBudgetNanos == o.DailyBudgetNanos && maps.Equal(k.Limits, o.Limits)
}
