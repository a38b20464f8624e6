package settings

import (
	"errors"
	"fmt"

	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// ErrConflict is what Put wraps when the stored revision is no longer the
// one given. It is ratelimit.ErrSettingsConflict, so that both kinds'
// callers test for the one sentinel they know.
var ErrConflict = ratelimit.ErrSettingsConflict

// Kind says how one kind of setting is stored in the bucket: the KV key
// prefix that sets it apart from the others, and its value encoding.
type Kind[T any] struct {
	// Prefix starts every KV key of the kind; it ends with '.', and no
	// other kind's prefix starts with it.
	Prefix string
	// Marshal encodes a value; Unmarshal decodes one (an error: the value
	// is corrupt). Clone returns a copy that shares nothing mutable.
	Marshal   func(T) ([]byte, error)
	Unmarshal func([]byte) (T, error)
	Clone     func(T) T
}

func (k Kind[T]) validate() error {
	if len(k.Prefix) < 2 || k.Prefix[len(k.Prefix)-1] != '.' || k.Marshal == nil || k.Unmarshal == nil || k.Clone == nil {
		return fmt.Errorf("settings: incomplete kind %q", k.Prefix)
	}
	return nil
}

// RateLimit is the kind of a ratelimit key's own limits and daily budget
// (what `ratelimit set` writes): "rl.<ns>.<key>", KeySettings.MarshalBinary.
var RateLimit = Kind[ratelimit.KeySettings]{
	Prefix:  keyPrefix,
	Marshal: func(s ratelimit.KeySettings) ([]byte, error) { return s.MarshalBinary() },
	Unmarshal: func(b []byte) (ratelimit.KeySettings, error) {
		var s ratelimit.KeySettings
		err := s.UnmarshalBinary(b)
		return s, err
	},
	Clone: ratelimit.KeySettings.Clone,
}

// Account is the kind of a gateway user's own limits (what `holdctl limits
// set` writes): "acct.<ns>.<user>", the AccountLimits protobuf
// (deterministic encoding).
var Account = Kind[*holdfastv1.AccountLimits]{
	Prefix: accountPrefix,
	Marshal: func(l *holdfastv1.AccountLimits) ([]byte, error) {
		if l == nil {
			return nil, errors.New("nil account limits")
		}
		return proto.MarshalOptions{Deterministic: true}.Marshal(l)
	},
	Unmarshal: func(b []byte) (*holdfastv1.AccountLimits, error) {
		l := new(holdfastv1.AccountLimits)
		if err := proto.Unmarshal(b, l); err != nil {
			return nil, err
		}
		return l, nil
	},
	Clone: func(l *holdfastv1.AccountLimits) *holdfastv1.AccountLimits {
		return proto.CloneOf(l)
	},
}
