package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
)

// Provider keys come from an environment variable (read once, at New) or
// a file (a Kubernetes Secret mount). A file is checked on every request
// with a stat: a new mtime or size makes the gateway read it again, and
// it is also read again at most every fileRecheck even when the stat
// looks unchanged (file timestamps are coarse: two writes within one tick
// can share an mtime). A request takes the key once, when it starts, and
// uses it for all its attempts: a rotation never changes the key of a
// request in flight. A key never appears in an error, a log line or a
// response header: errors name the variable or the file only.

const (
	// fileRecheck bounds how stale a key file's content can be when its
	// stat did not change.
	fileRecheck = time.Second
	// keyRotationWindow: an upstream 401 within this time after the key
	// file changed is counted as key_rotation_401.
	keyRotationWindow = 5 * time.Minute
)

var errNoKey = errors.New("no provider key")

type keySource struct {
	provider string
	env      string // variable name, for messages
	file     string
	clk      clock.Clock

	mu        sync.Mutex
	key       string
	mtime     time.Time
	size      int64
	readAt    time.Time // when the file was last read
	changedAt time.Time // when the key last changed (zero: never since start)
	loaded    bool
}

func newKeySource(provider string, pc ProviderConfig, clk clock.Clock, lookup func(string) (string, bool)) (*keySource, error) {
	k := &keySource{provider: provider, env: pc.APIKeyEnv, file: pc.APIKeyFile, clk: clk}
	switch {
	case pc.APIKeyEnv != "":
		v, ok := lookup(pc.APIKeyEnv)
		v = string(bytes.TrimSpace([]byte(v)))
		if !ok || v == "" {
			return nil, fmt.Errorf("providers.%s.api_key_env: environment variable %s is not set or empty", provider, pc.APIKeyEnv)
		}
		k.key, k.loaded = v, true
	case pc.APIKeyFile != "":
		if _, err := k.get(); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	return k, nil
}

// get returns the current key, reloading the file when it changed.
func (k *keySource) get() (string, error) {
	if k.file == "" {
		return k.key, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clk.Now()
	st, err := os.Stat(k.file)
	if err != nil {
		if k.loaded {
			return k.key, nil // keep serving with the last key; a mount swap is momentary
		}
		return "", fmt.Errorf("providers.%s.api_key_file %s: %w", k.provider, k.file, errors.Unwrap(err))
	}
	if k.loaded && st.ModTime().Equal(k.mtime) && st.Size() == k.size && now.Sub(k.readAt) < fileRecheck {
		return k.key, nil
	}
	b, err := os.ReadFile(k.file)
	if err != nil {
		if k.loaded {
			return k.key, nil
		}
		return "", fmt.Errorf("providers.%s.api_key_file %s: %w", k.provider, k.file, errors.Unwrap(err))
	}
	v := string(bytes.TrimSpace(b))
	if v == "" {
		if k.loaded {
			return k.key, nil
		}
		return "", fmt.Errorf("providers.%s.api_key_file %s: %w: the file is empty", k.provider, k.file, errNoKey)
	}
	if k.loaded && v != k.key {
		k.changedAt = now
	}
	k.key, k.loaded = v, true
	k.mtime, k.size, k.readAt = st.ModTime(), st.Size(), now
	return k.key, nil
}

// rotated reports whether a 401 answered to a request that used key
// follows a key change: the key has changed since, or changed within
// keyRotationWindow.
func (k *keySource) rotated(used string) bool {
	if k == nil || k.file == "" {
		return false
	}
	cur, _ := k.get()
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur != used {
		return true
	}
	return !k.changedAt.IsZero() && k.clk.Now().Sub(k.changedAt) < keyRotationWindow
}
