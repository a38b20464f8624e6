package natsdir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/holdfast/holdfast/cluster/ownership"
)

// Defaults of DirectoryConfig.
const (
	DefaultDirectoryBucket = "holdfast_directory"
	DefaultOpTimeout       = 2 * time.Second
	// DefaultWatchLag is far above a healthy watch's delay (milliseconds)
	// and far below a lease TTL.
	DefaultWatchLag = time.Second
)

// DirectoryConfig configures the directory bucket.
type DirectoryConfig struct {
	// Bucket is the KV bucket name (default DefaultDirectoryBucket).
	Bucket string
	// Replicas of the bucket's stream (0 = 1). OpenDirectory raises the
	// replicas of an existing bucket to this, never lowers them.
	Replicas int
	// OpTimeout bounds each Do (default DefaultOpTimeout).
	OpTimeout time.Duration
	// WatchLag is how long Watch may go without delivering anything while
	// a write that Do saw acknowledged is missing, before it restarts its
	// watcher (default DefaultWatchLag); see Watch.
	WatchLag time.Duration
	// OnWatchRestart, when set, is called with the reason (WatchLagged, ...)
	// each time Watch restarts its watcher (metrics).
	OnWatchRestart func(reason string)
	// Logger (nil = discarded).
	Logger *slog.Logger
}

// DefaultDirectoryConfig returns the defaults.
func DefaultDirectoryConfig() DirectoryConfig {
	return DirectoryConfig{Bucket: DefaultDirectoryBucket, Replicas: 1, OpTimeout: DefaultOpTimeout}
}

// Validate checks the configuration (after defaults for zero fields).
func (c DirectoryConfig) Validate() error {
	c = c.withDefaults()
	if !nameRe.MatchString(c.Bucket) {
		return fmt.Errorf("%w: bucket %q must match [A-Za-z0-9_-]+", ErrInvalidConfig, c.Bucket)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("%w: replicas %d not in [1,5]", ErrInvalidConfig, c.Replicas)
	}
	if c.OpTimeout < 0 {
		return fmt.Errorf("%w: negative op timeout", ErrInvalidConfig)
	}
	if c.WatchLag < 0 {
		return fmt.Errorf("%w: negative watch lag", ErrInvalidConfig)
	}
	return nil
}

func (c DirectoryConfig) withDefaults() DirectoryConfig {
	if c.Bucket == "" {
		c.Bucket = DefaultDirectoryBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.WatchLag == 0 {
		c.WatchLag = DefaultWatchLag
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Directory is the ownership directory: a JetStream KV bucket whose stream
// has AllowDirect off, so that every read goes through the stream leader.
type Directory struct {
	cfg    DirectoryConfig
	log    *slog.Logger
	js     jetstream.JetStream
	nc     *nats.Conn
	stream string
	kv     jetstream.KeyValue

	// acked is the highest revision a write through Do was acknowledged
	// at: a watch that has not delivered it is behind (see Watch).
	acked atomic.Uint64
	// stallCheck is stallCheckInterval, per Directory so tests can change it.
	stallCheck time.Duration

	// testWatcher, when set (tests only), sees each watcher started.
	testWatcher func(jetstream.KeyWatcher)
}

// OpenDirectory creates the directory bucket or binds to it. It retries
// (JetStream starting, meta leader election, not enough peers yet for the
// replicas) until ctx ends.
func OpenDirectory(ctx context.Context, js jetstream.JetStream, cfg DirectoryConfig) (*Directory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	scfg := kvStreamConfig(cfg.Bucket, cfg.Replicas, false)
	kv, err := openKV(ctx, js, cfg.Logger, scfg)
	if err != nil {
		return nil, fmt.Errorf("natsdir: open directory %s: %w", cfg.Bucket, err)
	}
	return &Directory{cfg: cfg, log: cfg.Logger, js: js, nc: js.Conn(), stream: scfg.Name, kv: kv, stallCheck: stallCheckInterval}, nil
}

// kvStreamConfig is the stream of a KV bucket as nats.go's
// CreateKeyValue makes it (History 1, file storage), with AllowDirect as
// given: the KV config has no such field.
func kvStreamConfig(bucket string, replicas int, allowDirect bool) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        2 * time.Minute,
		AllowDirect:       allowDirect,
		Discard:           jetstream.DiscardNew,
	}
}

// openKV creates the bucket's stream or, if it exists, binds to it after
// fixing AllowDirect and raising (never lowering) its replicas.
func openKV(ctx context.Context, js jetstream.JetStream, log *slog.Logger, want jetstream.StreamConfig) (jetstream.KeyValue, error) {
	bucket := strings.TrimPrefix(want.Name, "KV_")
	err := openStream(ctx, js, log, want, func(have jetstream.StreamConfig) (jetstream.StreamConfig, error) {
		if have.MaxMsgsPerSubject < 1 {
			return have, fmt.Errorf("stream %s is not a KV bucket", want.Name)
		}
		have.AllowDirect = want.AllowDirect
		have.Replicas = max(have.Replicas, want.Replicas)
		return have, nil
	})
	if err != nil {
		return nil, err
	}
	var kv jetstream.KeyValue
	err = retry(ctx, log, "bind bucket "+bucket, func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, bucket)
		return err
	})
	return kv, err
}

// openStream creates the stream want or, if it exists, updates it to
// merge(existing config) when that differs. It retries until ctx ends.
func openStream(ctx context.Context, js jetstream.JetStream, log *slog.Logger, want jetstream.StreamConfig,
	merge func(have jetstream.StreamConfig) (jetstream.StreamConfig, error)) error {
	return retry(ctx, log, "open stream "+want.Name, func(ctx context.Context) error {
		st, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return errRetryNow
			}
			return err
		}
		if err != nil {
			return err
		}
		have := st.CachedInfo().Config
		upd, err := merge(have)
		if err != nil {
			return permanent(err)
		}
		if !reflect.DeepEqual(upd, have) {
			_, err = js.UpdateStream(ctx, upd)
		}
		return err
	})
}

// Do executes one ownership KV operation and classifies its outcome:
//
//   - OK: the write was applied (Rev = its revision) or the key was read;
//   - Mismatch: wrong last sequence (CAS on another revision, or create of
//     a present key), never applied;
//   - NotFound: a read found no key (or a delete marker);
//   - Failed: provably never applied: refused before it was sent (closed
//     connection, invalid key or value, ctx already done) or no responders
//     (nobody, hence no stream leader, received it); any failed read;
//   - Unknown: any other write error (timeout, connection lost after the
//     send, any other JetStream API error): it may have been applied.
//
// Do blocks at most OpTimeout (or until ctx ends). Safe for concurrent use.
func (d *Directory) Do(ctx context.Context, op ownership.KVOp) ownership.KVResult {
	res := ownership.KVResult{Op: op.ID, Status: ownership.StatusFailed}
	key := op.Key.String()
	if ctx.Err() != nil || d.nc.IsClosed() {
		return res
	}
	var val []byte
	if op.Kind == ownership.OpCreate || op.Kind == ownership.OpCompareAndSet {
		var err error
		if val, err = encodeValue(op); err != nil {
			d.log.Error("directory: invalid op", "op", op.String(), "err", err)
			return res
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
	defer cancel()
	switch op.Kind {
	case ownership.OpCreate:
		rev, err := d.kv.Create(ctx, key, val)
		res.Status, res.Rev = classifyWrite(err), rev
		d.logResult(op, res, err)
	case ownership.OpCompareAndSet:
		rev, err := d.kv.Update(ctx, key, val, op.ExpectRev)
		res.Status, res.Rev = classifyWrite(err), rev
		d.logResult(op, res, err)
	case ownership.OpReadFromLeader:
		e, err := d.kv.Get(ctx, key)
		res.Status = classifyRead(err)
		d.logResult(op, res, err)
		if res.Status != ownership.StatusOK {
			return res
		}
		res.Rev = e.Revision()
		l, en, derr := decodeValue(op.Key, e.Value())
		if derr != nil {
			d.log.Error("directory: undecodable value", "key", key, "rev", e.Revision(), "err", derr)
			return ownership.KVResult{Op: op.ID, Status: ownership.StatusFailed}
		}
		res.Lease, res.Entry = l, en
	default:
		d.log.Error("directory: invalid op kind", "op", op.String())
	}
	if res.Status != ownership.StatusOK {
		res.Rev = 0
	} else if op.Kind != ownership.OpReadFromLeader {
		d.noteAcked(res.Rev)
	}
	return res
}

func (d *Directory) noteAcked(rev uint64) {
	for {
		cur := d.acked.Load()
		if rev <= cur || d.acked.CompareAndSwap(cur, rev) {
			return
		}
	}
}

func (d *Directory) logResult(op ownership.KVOp, res ownership.KVResult, err error) {
	if err == nil || res.Status == ownership.StatusMismatch || res.Status == ownership.StatusNotFound {
		return
	}
	d.log.Debug("directory: op failed", "op", op.Kind.String(), "key", op.Key.String(), "status", res.Status.String(), "err", err)
}

// classifyWrite maps the error of kv.Create or kv.Update to a status.
// Only errors that prove the message never reached a stream leader give
// Failed; anything ambiguous gives Unknown.
func classifyWrite(err error) ownership.Status {
	switch {
	case err == nil:
		return ownership.StatusOK
	case IsWrongLastSeq(err):
		return ownership.StatusMismatch
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		// The server saw no subscriber at all for the subject: delivered
		// to nobody (nats.go already retried twice).
		return ownership.StatusFailed
	case errors.Is(err, jetstream.ErrInvalidKey),
		errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrInvalidConnection),
		errors.Is(err, nats.ErrInvalidContext),
		errors.Is(err, nats.ErrConnectionDraining):
		// Refused by the client before the message was written.
		return ownership.StatusFailed
	}
	// Timeouts, ctx ends, ErrConnectionClosed/ErrDisconnected (also
	// returned when the connection drops after the send), JetStream API
	// errors other than wrong-last-sequence: may have been applied.
	return ownership.StatusUnknown
}

// classifyRead maps the error of kv.Get: a read is never applied, so any
// error other than not-found is Failed.
func classifyRead(err error) ownership.Status {
	switch {
	case err == nil:
		return ownership.StatusOK
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return ownership.StatusNotFound
	}
	return ownership.StatusFailed
}

// IsWrongLastSeq tells a lost compare-and-set on a KV bucket: JetStream
// error 10071 (R1) or 10164 (replicated), as nats.go wraps them in
// ErrKeyExists (Create) or ErrKeyRevisionMismatch (Update).
func IsWrongLastSeq(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) &&
		(api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Wire forms of the values (JSON), independent of Go field names.
type leaseWire struct {
	Node        string `json:"node"`
	Incarnation uint64 `json:"incarnation"`
	Nonce       string `json:"nonce"`
	Revoked     bool   `json:"revoked,omitempty"`
}

type entryWire struct {
	Owner     string `json:"owner"`
	Epoch     uint64 `json:"epoch"`
	HandoffID string `json:"handoff_id,omitempty"`
	Orphaned  bool   `json:"orphaned,omitempty"`
}

func encodeValue(op ownership.KVOp) ([]byte, error) {
	switch op.Key.Kind {
	case ownership.LeaseKeyKind:
		if op.Lease == nil || op.Entry != nil {
			return nil, errors.New("lease key needs exactly a lease")
		}
		if !nameRe.MatchString(string(op.Key.Node)) {
			return nil, fmt.Errorf("invalid node ID %q", op.Key.Node)
		}
		l := op.Lease
		return json.Marshal(leaseWire{Node: string(l.NodeID), Incarnation: l.Incarnation, Nonce: l.Nonce, Revoked: l.Revoked})
	case ownership.EntryKeyKind:
		if op.Entry == nil || op.Lease != nil {
			return nil, errors.New("entry key needs exactly an entry")
		}
		e := op.Entry
		return json.Marshal(entryWire{Owner: string(e.Owner), Epoch: e.Epoch, HandoffID: e.HandoffID, Orphaned: e.Orphaned})
	}
	return nil, fmt.Errorf("invalid key kind %d", op.Key.Kind)
}

func decodeValue(k ownership.Key, b []byte) (*ownership.Lease, *ownership.Entry, error) {
	switch k.Kind {
	case ownership.LeaseKeyKind:
		var w leaseWire
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, nil, err
		}
		return &ownership.Lease{NodeID: ownership.NodeID(w.Node), Incarnation: w.Incarnation, Nonce: w.Nonce, Revoked: w.Revoked}, nil, nil
	case ownership.EntryKeyKind:
		var w entryWire
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, nil, err
		}
		return nil, &ownership.Entry{Owner: ownership.NodeID(w.Owner), Epoch: w.Epoch, HandoffID: w.HandoffID, Orphaned: w.Orphaned}, nil
	}
	return nil, nil, fmt.Errorf("invalid key kind %d", k.Kind)
}

// parseKey reads a bucket key back: ok is false for "meta.*" and anything
// that is not a lease or partition key.
func parseKey(s string) (ownership.Key, bool) {
	if node, found := strings.CutPrefix(s, "lease."); found {
		if !nameRe.MatchString(node) {
			return ownership.Key{}, false
		}
		return ownership.LeaseKey(ownership.NodeID(node)), true
	}
	if ps, found := strings.CutPrefix(s, "part."); found {
		p, err := strconv.ParseUint(ps, 10, 32)
		if err != nil || strconv.FormatUint(p, 10) != ps {
			return ownership.Key{}, false
		}
		return ownership.EntryKey(ownership.Partition(p)), true
	}
	return ownership.Key{}, false
}

// SetReplicas sets the replicas of the bucket's stream (raise it as nodes
// join). The stream keeps serving meanwhile. Safe for concurrent use.
func (d *Directory) SetReplicas(ctx context.Context, n int) error {
	if n < 1 || n > 5 {
		return fmt.Errorf("%w: replicas %d not in [1,5]", ErrInvalidConfig, n)
	}
	st, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return fmt.Errorf("natsdir: set replicas: %w", err)
	}
	c := st.CachedInfo().Config
	if c.Replicas == n {
		return nil
	}
	c.Replicas = n
	if _, err := d.js.UpdateStream(ctx, c); err != nil {
		return fmt.Errorf("natsdir: set replicas to %d: %w", n, err)
	}
	return nil
}

// Replicas reports the configured replicas of the bucket's stream and how
// many of them are current: the leader plus the followers that are
// current and online (for /readyz). The request goes to the stream leader,
// so it fails while there is none. Safe for concurrent use.
func (d *Directory) Replicas(ctx context.Context) (configured, current int, err error) {
	rs, err := d.ReplicaStatus(ctx, "")
	return rs.Configured, rs.Current, err
}

// ReplicaStatus is Replicas plus what it says of one server's replica.
type ReplicaStatus struct {
	Configured, Current int
	// Member: the server holds a replica (or leads); MemberCurrent: it is
	// the leader, or a follower that is current and online.
	Member, MemberCurrent bool
}

// ReplicaStatus reports the stream's replicas and whether server (a NATS
// server name: the node ID) holds a current one. Safe for concurrent use.
func (d *Directory) ReplicaStatus(ctx context.Context, server string) (ReplicaStatus, error) {
	st, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return ReplicaStatus{}, fmt.Errorf("natsdir: stream info: %w", err)
	}
	info := st.CachedInfo()
	rs := ReplicaStatus{Configured: info.Config.Replicas}
	ci := info.Cluster
	if ci == nil {
		// Not clustered: the one server is the leader.
		return ReplicaStatus{Configured: rs.Configured, Current: 1, Member: true, MemberCurrent: true}, nil
	}
	if ci.Leader != "" {
		rs.Current = 1
		if ci.Leader == server {
			rs.Member, rs.MemberCurrent = true, true
		}
	}
	for _, p := range ci.Replicas {
		if p == nil {
			continue
		}
		ok := p.Current && !p.Offline
		if ok {
			rs.Current++
		}
		if p.Name == server && server != "" {
			rs.Member, rs.MemberCurrent = true, ok
		}
	}
	return rs, nil
}

// Snapshot reads every lease and entry (values ownership.Lease and
// ownership.Entry), for holdctl. It is a consistent point-in-time view
// only per key. Safe for concurrent use.
func (d *Directory) Snapshot(ctx context.Context) (map[ownership.Key]any, error) {
	w, err := d.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("natsdir: snapshot: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := map[ownership.Key]any{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("natsdir: snapshot: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("natsdir: snapshot: %w", nats.ErrConnectionClosed)
			}
			if e == nil {
				return out, nil
			}
			k, ok := parseKey(e.Key())
			if !ok {
				continue
			}
			l, en, err := decodeValue(k, e.Value())
			if err != nil {
				return nil, fmt.Errorf("natsdir: snapshot: key %s: %w", e.Key(), err)
			}
			if l != nil {
				out[k] = *l
			} else {
				out[k] = *en
			}
		}
	}
}
