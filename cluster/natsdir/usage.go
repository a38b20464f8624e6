package natsdir

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Usage stream names and defaults.
const (
	UsageStream               = "HOLDFAST_USAGE"
	UsageSubjectPrefix        = "holdfast.usage."
	DefaultUsageRetention     = 7 * 24 * time.Hour
	DefaultUsageBatchSize     = 100
	DefaultUsageFlushInterval = time.Second
	DefaultUsageReadLimit     = 1000
	usageAckTimeout           = 5 * time.Second
)

// UsageEvent is one usage record. Body is free-form JSON (tokens, cost,
// model, error class...).
type UsageEvent struct {
	Time time.Time       `json:"time"`
	User string          `json:"user"`
	Body json.RawMessage `json:"body,omitempty"`
}

// UsageSubject is the subject of user's events: UsageSubjectPrefix
// followed by the lowercase hex encoding of the user ID's bytes (any byte
// is allowed in a user ID, so it is never used raw in a subject), or "_"
// for the empty ID.
func UsageSubject(user string) string {
	if user == "" {
		return UsageSubjectPrefix + "_"
	}
	return UsageSubjectPrefix + hex.EncodeToString([]byte(user))
}

// UsageConfig configures the usage stream and its publisher.
type UsageConfig struct {
	// Retention is the stream's MaxAge (default DefaultUsageRetention).
	Retention time.Duration
	// Replicas of the stream (0 = 1); an existing stream's are raised,
	// never lowered.
	Replicas int
	// BatchSize flushes a batch when it has this many events
	// (default DefaultUsageBatchSize).
	BatchSize int
	// FlushInterval flushes a non-empty batch at least this often
	// (default DefaultUsageFlushInterval).
	FlushInterval time.Duration
	// BufferSize is how many events may wait; beyond, Publish drops
	// (default 100 * BatchSize).
	BufferSize int
	// Logger (nil = discarded).
	Logger *slog.Logger
}

// DefaultUsageConfig returns the defaults.
func DefaultUsageConfig() UsageConfig {
	return UsageConfig{Retention: DefaultUsageRetention, Replicas: 1, BatchSize: DefaultUsageBatchSize,
		FlushInterval: DefaultUsageFlushInterval, BufferSize: 100 * DefaultUsageBatchSize}
}

func (c UsageConfig) withDefaults() UsageConfig {
	d := DefaultUsageConfig()
	if c.Retention == 0 {
		c.Retention = d.Retention
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.BufferSize == 0 {
		c.BufferSize = 100 * c.BatchSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration (after defaults for zero fields).
func (c UsageConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Retention < 0:
		return fmt.Errorf("%w: negative usage retention", ErrInvalidConfig)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("%w: usage replicas %d not in [1,5]", ErrInvalidConfig, c.Replicas)
	case c.BatchSize < 1, c.BufferSize < 1, c.FlushInterval < 0:
		return fmt.Errorf("%w: usage batch size, buffer size and flush interval must be positive", ErrInvalidConfig)
	}
	return nil
}

// UsageStats counts events since OpenUsage.
type UsageStats struct {
	Published uint64 // acknowledged by the stream
	Dropped   uint64 // buffer full or Usage closed
	Failed    uint64 // publish refused, or no ack in time
}

// Usage publishes usage events in batches and reads them back. Publish,
// Read and Stats are safe for concurrent use; Close is idempotent.
type Usage struct {
	cfg  UsageConfig
	log  *slog.Logger
	js   jetstream.JetStream // reads, with the caller's options
	pub  jetstream.JetStream // async publishes, own context
	ch   chan UsageEvent
	stop chan struct{}
	done chan struct{}

	mu     sync.RWMutex // closed vs sends on ch
	closed bool
	once   sync.Once

	published, dropped, failed atomic.Uint64
}

// OpenUsage creates or updates the usage stream (MaxAge = Retention) and
// starts the publisher goroutine, stopped by Close. The publisher uses its
// own JetStream context on js's connection (default API prefix).
func OpenUsage(ctx context.Context, js jetstream.JetStream, cfg UsageConfig) (*Usage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	want := jetstream.StreamConfig{
		Name:      UsageStream,
		Subjects:  []string{UsageSubjectPrefix + ">"},
		Retention: jetstream.LimitsPolicy,
		MaxAge:    cfg.Retention,
		Storage:   jetstream.FileStorage,
		Replicas:  cfg.Replicas,
		Discard:   jetstream.DiscardOld,
	}
	err := openStream(ctx, js, cfg.Logger, want, func(have jetstream.StreamConfig) (jetstream.StreamConfig, error) {
		have.MaxAge = cfg.Retention
		have.Replicas = max(have.Replicas, cfg.Replicas)
		return have, nil
	})
	if err != nil {
		return nil, fmt.Errorf("natsdir: open usage stream: %w", err)
	}
	pub, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncTimeout(usageAckTimeout),
		jetstream.WithPublishAsyncMaxPending(4*cfg.BatchSize))
	if err != nil {
		return nil, fmt.Errorf("natsdir: usage publisher: %w", err)
	}
	u := &Usage{
		cfg: cfg, log: cfg.Logger, js: js, pub: pub,
		ch:   make(chan UsageEvent, cfg.BufferSize),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go u.loop()
	return u, nil
}

// Publish queues ev without ever blocking; it is dropped (and counted)
// when the buffer is full or Usage is closed.
func (u *Usage) Publish(ev UsageEvent) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		u.dropped.Add(1)
		return
	}
	select {
	case u.ch <- ev:
	default:
		u.dropped.Add(1)
	}
}

// Stats returns the counters.
func (u *Usage) Stats() UsageStats {
	return UsageStats{Published: u.published.Load(), Dropped: u.dropped.Load(), Failed: u.failed.Load()}
}

// Close stops accepting events, flushes the queued ones (waiting for their
// acks, at most a few seconds) and stops the publisher. Idempotent.
func (u *Usage) Close() error {
	u.once.Do(func() {
		u.mu.Lock()
		u.closed = true
		u.mu.Unlock()
		close(u.stop)
		<-u.done
		u.pub.CleanupPublisher()
	})
	if n := u.failed.Load(); n > 0 {
		return fmt.Errorf("natsdir: usage: %d events were not acknowledged", n)
	}
	return nil
}

func (u *Usage) loop() {
	defer close(u.done)
	tick := time.NewTicker(u.cfg.FlushInterval)
	defer tick.Stop()
	batch := make([]UsageEvent, 0, u.cfg.BatchSize)
	for {
		select {
		case ev := <-u.ch:
			batch = append(batch, ev)
			if len(batch) >= u.cfg.BatchSize {
				batch = u.flush(batch)
			}
		case <-tick.C:
			batch = u.flush(batch)
		case <-u.stop:
			for {
				select {
				case ev := <-u.ch:
					batch = append(batch, ev)
					if len(batch) >= u.cfg.BatchSize {
						batch = u.flush(batch)
					}
					continue
				default:
				}
				break
			}
			u.flush(batch)
			return
		}
	}
}

// flush publishes the batch asynchronously and waits for the acks.
func (u *Usage) flush(batch []UsageEvent) []UsageEvent {
	if len(batch) == 0 {
		return batch
	}
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for _, ev := range batch {
		data, err := json.Marshal(ev)
		if err == nil {
			var f jetstream.PubAckFuture
			f, err = u.pub.PublishMsgAsync(&nats.Msg{Subject: UsageSubject(ev.User), Data: data})
			if err == nil {
				futures = append(futures, f)
				continue
			}
		}
		u.failed.Add(1)
		u.log.Debug("usage: publish failed", "err", err)
	}
	timer := time.NewTimer(usageAckTimeout + time.Second)
	defer timer.Stop()
	var failed uint64
	for i, f := range futures {
		select {
		case <-f.Ok():
			u.published.Add(1)
			continue
		case err := <-f.Err():
			u.log.Debug("usage: publish not acknowledged", "err", err)
		case <-timer.C:
			failed += uint64(len(futures) - i)
			u.failed.Add(uint64(len(futures) - i))
			u.log.Warn("usage: acks timed out", "events", len(futures)-i)
			return batch[:0]
		}
		failed++
		u.failed.Add(1)
	}
	if failed > 0 {
		u.log.Warn("usage: events not acknowledged", "events", failed)
	}
	return batch[:0]
}

// Read returns up to limit (<= 0: DefaultUsageReadLimit) of user's events
// stored at or after since (zero: all retained), oldest first, through an
// ordered consumer on the user's subject. It reads up to the last event
// present when it starts. Safe for concurrent use.
func (u *Usage) Read(ctx context.Context, user string, since time.Time, limit int) ([]UsageEvent, error) {
	if limit <= 0 {
		limit = DefaultUsageReadLimit
	}
	subj := UsageSubject(user)
	st, err := u.js.Stream(ctx, UsageStream)
	if err != nil {
		return nil, fmt.Errorf("natsdir: usage read: %w", err)
	}
	lastMsg, err := st.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsdir: usage read: %w", err)
	}
	occ := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subj},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	}
	if !since.IsZero() {
		occ.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		occ.OptStartTime = &since
	}
	cons, err := st.OrderedConsumer(ctx, occ)
	if err != nil {
		return nil, fmt.Errorf("natsdir: usage read: %w", err)
	}
	var out []UsageEvent
	for len(out) < limit {
		wait := time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = max(min(wait, time.Until(dl)), time.Millisecond)
		}
		batch, err := cons.Fetch(min(limit-len(out), 256), jetstream.FetchMaxWait(wait))
		if err != nil {
			return out, fmt.Errorf("natsdir: usage read: %w", err)
		}
		n, reachedLast := 0, false
		for m := range batch.Messages() {
			n++
			var ev UsageEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				u.log.Warn("usage: undecodable event skipped", "err", err)
			} else if len(out) < limit {
				out = append(out, ev)
			}
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= lastMsg.Sequence {
				reachedLast = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, fmt.Errorf("natsdir: usage read: %w", err)
		}
		if n == 0 || reachedLast {
			break
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("natsdir: usage read: %w", ctx.Err())
		}
	}
	return out, nil
}
