package natsdir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Streams are the JetStream streams a holdfast cluster keeps replicated:
// the directory and settings buckets and the usage events.
var Streams = []string{"KV_" + DefaultDirectoryBucket, "KV_" + SettingsBucket, UsageStream}

// ErrDegraded is returned by LeaveStreams when taking this server's
// replica away would leave a stream without a current majority, and it
// stayed so until ctx ended.
var ErrDegraded = errors.New("natsdir: stream degraded; replica kept")

// degradedRetry is how often LeaveStreams looks again at a stream whose
// other replicas are not all current (one catching up after a join, say).
const degradedRetry = 200 * time.Millisecond

// LeaveStreams moves this server's replicas of streams to the other
// servers (JetStream picks the replacements), so a node that leaves the
// cluster for good does not leave every stream one replica short. A
// leader steps down first. A stream whose other replicas are not all
// current is looked at again until they are or ctx ends; then it keeps
// this replica (ErrDegraded): removing it could cost the stream its
// quorum. Streams not found are skipped.
func LeaveStreams(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, server string, streams []string) error {
	var errs []error
	for _, name := range streams {
		if err := leaveStream(ctx, nc, js, server, name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func leaveStream(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, server, name string) error {
	for stepdowns := 0; ; {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ci := st.CachedInfo().Cluster
		if ci == nil {
			return nil // not clustered
		}
		member, degraded := ci.Leader == server, false
		for _, r := range ci.Replicas {
			if r == nil {
				continue
			}
			if r.Name == server {
				member = true
			} else if !r.Current || r.Offline {
				degraded = true
			}
		}
		if !member {
			return nil
		}
		if degraded {
			select {
			case <-time.After(degradedRetry):
				continue
			case <-ctx.Done():
				return ErrDegraded
			}
		}
		if ci.Leader == server {
			if stepdowns++; stepdowns > 20 {
				return errors.New("leader did not step down")
			}
			if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, nil); err != nil {
				return fmt.Errorf("leader step down: %w", err)
			}
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		req, _ := json.Marshal(map[string]string{"peer": server})
		msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.PEER.REMOVE."+name, req)
		if err != nil {
			return fmt.Errorf("peer remove: %w", err)
		}
		var resp struct {
			Success bool `json:"success"`
			Error   *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return fmt.Errorf("peer remove: %w", err)
		}
		if !resp.Success {
			if resp.Error != nil {
				return fmt.Errorf("peer remove: %s", resp.Error.Description)
			}
			return errors.New("peer remove refused")
		}
		return nil
	}
}
