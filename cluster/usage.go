package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/cluster/natsdir"
	"github.com/nats-io/nats.go/jetstream"
)

// Usage is this node's handle on the cluster's usage-event stream
// (natsdir.Usage: batched JetStream publishes on holdfast.usage.<user>,
// for analytics; exact totals stay in the account actors). The stream is
// opened in the background once the directory is open; until then
// Publish drops (and counts) and Read answers ErrUsageNotReady. Publish,
// Read, Stats and Ready are safe for concurrent use; the node closes it
// when NATS stops.
type Usage struct {
	cfg   natsdir.UsageConfig // set before Start
	ptr   atomic.Pointer[natsdir.Usage]
	early atomic.Uint64 // dropped before the stream was open

	mu      sync.Mutex // closed vs the opener storing ptr
	closed  bool
	opening sync.Once
}

// ErrUsageNotReady is wrapped by Read before the usage stream is open.
var ErrUsageNotReady = errors.New("usage events stream not open yet")

// Usage returns the node's usage-event stream handle (never nil).
func (n *Node) Usage() *Usage { return &n.usage }

// SetUsageConfig sets the usage stream's configuration (Retention: the
// stream's max age; the batch and buffer sizes; Replicas and Logger are
// the node's own: min(MaxReplicas, members), raised as members join).
// Call it before Start; the zero configuration takes natsdir's defaults.
func (n *Node) SetUsageConfig(cfg natsdir.UsageConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("cluster usage events: %w", err)
	}
	n.usage.cfg = cfg
	return nil
}

// Publish queues ev without ever blocking; it is dropped, and counted,
// when the stream is not open yet, the buffer is full, or the node is
// stopping.
func (u *Usage) Publish(ev natsdir.UsageEvent) {
	if p := u.ptr.Load(); p != nil {
		p.Publish(ev)
		return
	}
	u.early.Add(1)
}

// Read returns up to limit of user's events stored at or after since
// (zero: all retained), oldest first (see natsdir.Usage.Read).
func (u *Usage) Read(ctx context.Context, user string, since time.Time, limit int) ([]natsdir.UsageEvent, error) {
	p := u.ptr.Load()
	if p == nil {
		return nil, ErrUsageNotReady
	}
	return p.Read(ctx, user, since, limit)
}

// Stats returns the publisher's counters; Dropped includes the events
// dropped before the stream was open.
func (u *Usage) Stats() natsdir.UsageStats {
	var s natsdir.UsageStats
	if p := u.ptr.Load(); p != nil {
		s = p.Stats()
	}
	s.Dropped += u.early.Load()
	return s
}

// Ready reports whether the stream is open.
func (u *Usage) Ready() bool { return u.ptr.Load() != nil }

// close flushes and stops the publisher (stopNATS, before the connection
// closes). A stream the opener opens later is closed at once.
func (u *Usage) close() error {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	if p := u.ptr.Load(); p != nil {
		return p.Close()
	}
	return nil
}

// openUsage starts, once, the goroutine that opens the usage stream on
// js (retrying while JetStream refuses) and then keeps its replicas at
// min(MaxReplicas, members). Analytics never hold up the directory: the
// node boots and serves whether or not the stream opens.
func (n *Node) openUsage(js jetstream.JetStream) {
	n.usage.opening.Do(func() {
		n.goFunc(func() { n.runUsage(js) })
	})
}

func (n *Node) runUsage(js jetstream.JetStream) {
	u := &n.usage
	cfg := u.cfg
	cfg.Logger = n.log
	cfg.Replicas = n.usageReplicas()
	var p *natsdir.Usage
	for {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		var err error
		p, err = natsdir.OpenUsage(ctx, js, cfg)
		cancel()
		if err == nil {
			break
		}
		if n.ctx.Err() != nil {
			return
		}
		n.log.Warn("usage events stream not available yet; retrying", "err", err)
		if !n.sleep(n.ctx, 2*time.Second) {
			return
		}
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		p.Close()
		return
	}
	u.ptr.Store(p)
	u.mu.Unlock()
	n.log.Info("usage events stream open", "stream", natsdir.UsageStream, "retention", cfg.Retention.String(), "replicas", cfg.Replicas)
	// Raise the replicas as members join (never lower them), like the
	// directory's.
	for n.sleep(n.ctx, 10*time.Second) {
		want := n.usageReplicas()
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := raiseStreamReplicas(ctx, js, natsdir.UsageStream, want)
		cancel()
		if err != nil && n.ctx.Err() == nil {
			n.log.Debug("raising usage stream replicas", "want", want, "err", err)
		}
	}
}

func (n *Node) usageReplicas() int {
	n.mu.Lock()
	members := len(n.mu.addrs)
	n.mu.Unlock()
	return max(1, min(n.cfg.MaxReplicas, members))
}

// raiseStreamReplicas sets the stream's replicas to want when it has
// fewer.
func raiseStreamReplicas(ctx context.Context, js jetstream.JetStream, name string, want int) error {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	sc := st.CachedInfo().Config
	if sc.Replicas >= want {
		return nil
	}
	sc.Replicas = want
	_, err = js.UpdateStream(ctx, sc)
	return err
}
