package natsdir

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/holdfast/holdfast/cluster/ownership"
)

// stallCheckInterval is how often Watch compares its progress with the
// stream's last sequence; two checks behind without progress restart the
// watcher (nats.go's ordered consumer can give up silently when it cannot
// recreate its consumer).
var stallCheckInterval = 2 * time.Second

// Watch runs one ordered watch over the whole bucket and calls deliver, in
// strictly increasing revision order, with an ownership.WatchEvent per
// lease or entry change (both values nil when the key was deleted or
// purged) and, once, ownership.WatchSynced after the initial values (the
// latest value of each key). "meta.*" keys are skipped. When the watch
// breaks (connection lost, consumer gone, stall) it is restarted after a
// backoff from the revision after the last one seen, so nothing is
// delivered twice or out of order, and no update is lost (the bucket keeps
// the latest value of every key).
//
// A stall is seen two ways. The cheap, fast one: a write through Do was
// acknowledged at a revision the watch has not delivered, and the watch
// has delivered nothing for WatchLag (a slow watch that still moves is
// left alone: a restart would not speed it up).
// The watch is an ordered push consumer, an R1 consumer that the servers
// may place on any replica of the stream; when that server dies, nothing
// tells the client (nats.go notices missing heartbeats only after 10 s),
// so without this the node's directory view froze for seconds and it
// could neither see claims nor make them. The backstop, for a node that
// writes nothing: the stream's last sequence, polled every
// stallCheckInterval, ahead of the watch for two polls in a row.
//
// deliver runs on the caller's goroutine
// and must not call Watch. Watch returns ctx.Err() when ctx ends.
// Concurrent Watch calls are independent.
func (d *Directory) Watch(ctx context.Context, deliver func(ownership.Input)) error {
	var last uint64 // highest revision received, delivered or skipped
	synced := false
	wait := 50 * time.Millisecond
	var stops sync.WaitGroup // old watchers being stopped in the background
	defer stops.Wait()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		progressed, why := d.watchOnce(ctx, &last, &synced, deliver, &stops)
		if err := ctx.Err(); err != nil {
			return err
		}
		if progressed {
			wait = 50 * time.Millisecond
		}
		if d.cfg.OnWatchRestart != nil {
			d.cfg.OnWatchRestart(why)
		}
		d.log.Warn("directory: watch broken, restarting", "reason", why, "after_rev", last, "backoff", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Reasons for a watch restart (DirectoryConfig.OnWatchRestart).
const (
	WatchLagged  = "lag"    // nothing delivered for WatchLag, an acknowledged write among it
	WatchStalled = "stall"  // behind the stream's last sequence for two polls
	WatchClosed  = "closed" // the watcher ended (consumer or connection lost)
	WatchFailed  = "start"  // the watcher could not be created
)

// watchOnce runs one watcher until it breaks or ctx ends; it reports
// whether it received anything, and why it ended.
func (d *Directory) watchOnce(ctx context.Context, last *uint64, synced *bool, deliver func(ownership.Input), stops *sync.WaitGroup) (progressed bool, why string) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opts []jetstream.WatchOpt
	if *last > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(*last+1))
	}
	w, err := d.kv.WatchAll(wctx, opts...)
	if err != nil {
		d.log.Debug("directory: watch start failed", "err", err)
		return false, WatchFailed
	}
	defer func() {
		if why == "" { // ctx ended: stopped before Watch returns
			StopWatcher(w)
			return
		}
		// A restart: the old watcher's consumer may live on a server that
		// died, and deleting it can block for seconds (seen: 5 s after a
		// SIGKILL); the new watcher must not wait for that.
		stops.Add(1)
		go func() {
			defer stops.Done()
			StopWatcher(w)
		}()
	}()
	if d.testWatcher != nil {
		d.testWatcher(w)
	}
	tick := time.NewTicker(d.stallCheck)
	defer tick.Stop()
	lagTick := time.NewTicker(max(d.cfg.WatchLag/4, time.Millisecond))
	defer lagTick.Stop()
	checkedAt, behind := *last, false
	var awaited uint64 // an acknowledged revision not delivered yet
	var awaitedSince time.Time
	for {
		select {
		case <-ctx.Done():
			return progressed, ""
		case now := <-lagTick.C:
			// Measured from when this loop first saw the write
			// acknowledged (at most WatchLag/4 after it) or from the last
			// update delivered, whichever is later.
			if awaited <= *last {
				awaited = 0
				if a := d.acked.Load(); a > *last {
					awaited, awaitedSince = a, now
				}
				continue
			}
			if now.Sub(awaitedSince) >= d.cfg.WatchLag {
				d.log.Warn("directory: watch lags a write this node saw acknowledged; restarting it", "at_rev", *last, "acked_rev", awaited, "lag", d.cfg.WatchLag)
				return progressed, WatchLagged
			}
		case <-tick.C:
			lastSeq, ok := d.lastSeq(ctx)
			if !ok {
				continue
			}
			stalled := lastSeq > *last && *last == checkedAt
			if stalled && behind {
				d.log.Warn("directory: watch stalled", "at_rev", *last, "stream_last", lastSeq)
				return progressed, WatchStalled
			}
			checkedAt, behind = *last, stalled
		case e, ok := <-w.Updates():
			if !ok {
				return progressed, WatchClosed
			}
			progressed = true
			awaitedSince = time.Now()
			if e == nil {
				if !*synced {
					*synced = true
					deliver(ownership.WatchSynced{})
				}
				continue
			}
			rev := e.Revision()
			if rev <= *last {
				continue
			}
			*last = rev
			k, ok := parseKey(e.Key())
			if !ok {
				continue // meta.* or foreign keys
			}
			ev := ownership.WatchEvent{Key: k, Rev: rev}
			if op := e.Operation(); op == jetstream.KeyValuePut {
				l, en, err := decodeValue(k, e.Value())
				if err != nil {
					d.log.Error("directory: undecodable value skipped", "key", e.Key(), "rev", rev, "err", err)
					continue
				}
				ev.Lease, ev.Entry = l, en
			}
			deliver(ev)
		}
	}
}

func (d *Directory) lastSeq(ctx context.Context) (uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
	defer cancel()
	st, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return 0, false
	}
	return st.CachedInfo().State.LastSeq, true
}

// StopWatcher stops a KV watcher and drains its channel (for at most 2 s),
// so that nats.go's delivery goroutine, which may be blocked sending to
// it, can exit.
func StopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}
