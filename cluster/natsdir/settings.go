package natsdir

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SettingsBucket is the KV bucket of per-key limits and similar settings.
const SettingsBucket = "holdfast_settings"

// Settings is the replicated settings bucket: written rarely, cached by the
// owners (through Watch). Keys must be valid KV keys ([-/_=.A-Za-z0-9]+,
// not starting or ending with '.'). Reads may be answered by any replica
// (direct get), so they can lag the last write briefly. All methods are
// safe for concurrent use.
type Settings struct {
	kv  jetstream.KeyValue
	log *slog.Logger
}

// OpenSettings creates the settings bucket or binds to it, raising (never
// lowering) its replicas to replicas (0 = 1). It retries until ctx ends.
func OpenSettings(ctx context.Context, js jetstream.JetStream, replicas int) (*Settings, error) {
	if replicas == 0 {
		replicas = 1
	}
	if replicas < 1 || replicas > 5 {
		return nil, fmt.Errorf("%w: replicas %d not in [1,5]", ErrInvalidConfig, replicas)
	}
	logger := slog.New(slog.DiscardHandler)
	kv, err := openKV(ctx, js, logger, kvStreamConfig(SettingsBucket, replicas, true))
	if err != nil {
		return nil, fmt.Errorf("natsdir: open settings: %w", err)
	}
	return &Settings{kv: kv, log: logger}, nil
}

// Get returns the value and revision of key; found is false if it is
// absent or deleted.
func (s *Settings) Get(ctx context.Context, key string) (val []byte, rev uint64, found bool, err error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("natsdir: settings get %q: %w", key, err)
	}
	return e.Value(), e.Revision(), true, nil
}

// Put writes key and returns the new revision.
func (s *Settings) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	rev, err := s.kv.Put(ctx, key, val)
	if err != nil {
		return 0, fmt.Errorf("natsdir: settings put %q: %w", key, err)
	}
	return rev, nil
}

// Delete deletes key (a delete marker; watchers see it).
func (s *Settings) Delete(ctx context.Context, key string) error {
	if err := s.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("natsdir: settings delete %q: %w", key, err)
	}
	return nil
}

// Watch calls fn with the latest value of every key, then with every
// change, in revision order (deleted true for a delete or purge, val nil).
// It restarts a broken watch from the revision after the last one seen and
// returns ctx.Err() when ctx ends. fn runs on the caller's goroutine.
func (s *Settings) Watch(ctx context.Context, fn func(key string, val []byte, deleted bool)) error {
	var last uint64
	wait := 50 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var opts []jetstream.WatchOpt
		if last > 0 {
			opts = append(opts, jetstream.ResumeFromRevision(last+1))
		}
		if w, err := s.kv.WatchAll(ctx, opts...); err == nil {
			func() {
				defer StopWatcher(w)
				for {
					select {
					case <-ctx.Done():
						return
					case e, ok := <-w.Updates():
						if !ok {
							return
						}
						if e == nil || e.Revision() <= last {
							continue
						}
						last = e.Revision()
						wait = 50 * time.Millisecond
						if e.Operation() == jetstream.KeyValuePut {
							fn(e.Key(), e.Value(), false)
						} else {
							fn(e.Key(), nil, true)
						}
					}
				}
			}()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		s.log.Debug("settings: watch broken, restarting", "after_rev", last)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
