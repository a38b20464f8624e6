package holdfast

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/cluster/natsdir"
	"github.com/holdfast/holdfast/gateway"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Usage events: on a cluster member the gateway publishes one event per
// call (sampled by gateway.usage_events) to the JetStream usage stream,
// batched by this node (cluster.Usage); `holdctl events USER` reads them
// back through the admin Events RPC. A single node has no NATS: no events,
// and Events answers FAILED_PRECONDITION (api.AdminServer).

// usageEvents configures the cluster's usage stream (retention:
// cluster.usage_retention), registers its counters, and returns the
// gateway's event sink; nil on a single node.
func (n *Node) usageEvents() gateway.EventSink {
	if n.cluster == nil {
		return nil
	}
	uc := natsdir.DefaultUsageConfig()
	if r := n.cfg.Cluster.UsageRetention; r > 0 {
		uc.Retention = r
	}
	if err := n.cluster.SetUsageConfig(uc); err != nil {
		// Only a negative retention gets here, and Validate refused it.
		n.log.Error("usage events off", "err", err)
		return nil
	}
	u := n.cluster.Usage()
	for _, c := range []struct {
		name, help string
		get        func(natsdir.UsageStats) uint64
	}{
		{"holdfast_usage_events_published_total", "Usage events acknowledged by the JetStream usage stream.", func(s natsdir.UsageStats) uint64 { return s.Published }},
		{"holdfast_usage_events_dropped_total", "Usage events dropped by this node: publisher buffer full, stream not open yet, or node stopping.", func(s natsdir.UsageStats) uint64 { return s.Dropped }},
		{"holdfast_usage_events_failed_total", "Usage events the usage stream refused or did not acknowledge in time.", func(s natsdir.UsageStats) uint64 { return s.Failed }},
	} {
		get := c.get
		n.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(get(u.Stats())) }))
	}
	return usageSink{u}
}

// usageSink hands gateway events to the cluster's batched publisher,
// which never blocks (a full buffer drops and counts).
type usageSink struct{ u *cluster.Usage }

func (s usageSink) Publish(ev gateway.Event) {
	body, err := json.Marshal(ev)
	if err != nil {
		return // plain fields: cannot fail
	}
	s.u.Publish(natsdir.UsageEvent{Time: ev.Time, User: ev.User, Body: body})
}

// Events implements api.ClusterAdmin: user's usage events from the
// cluster's stream (any node reads every node's events).
func (a clusterAdmin) Events(ctx context.Context, user string, since time.Time, limit int) (*holdfastv1.EventsResponse, error) {
	evs, err := a.readUsage(ctx, user, since, limit+1)
	if errors.Is(err, cluster.ErrUsageNotReady) {
		return nil, status.Error(codes.Unavailable, "usage events stream not open yet on this node (cluster forming); retry shortly")
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		a.log.Warn("reading usage events", "err", err)
		return nil, status.Errorf(codes.Unavailable, "reading usage events: %v", err)
	}
	resp := &holdfastv1.EventsResponse{}
	if len(evs) > limit {
		evs, resp.Truncated = evs[:limit], true
	}
	resp.Events = make([]*holdfastv1.UsageEvent, 0, len(evs))
	for _, e := range evs {
		resp.Events = append(resp.Events, usageEventProto(e))
	}
	return resp, nil
}

// readUsage reads, retrying a failed read (reads are idempotent) a few
// times within ctx: a stream leader election or replica change answers
// "no responders" for a moment.
func (a clusterAdmin) readUsage(ctx context.Context, user string, since time.Time, limit int) ([]natsdir.UsageEvent, error) {
	wait := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		evs, err := a.cluster.Usage().Read(ctx, user, since, limit)
		if err == nil || errors.Is(err, cluster.ErrUsageNotReady) || attempt == 3 {
			return evs, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait *= 2
	}
}

func usageEventProto(e natsdir.UsageEvent) *holdfastv1.UsageEvent {
	var ev gateway.Event
	if err := json.Unmarshal(e.Body, &ev); err != nil {
		// Not a gateway event: what the envelope says.
		ev = gateway.Event{}
	}
	if ev.Time.IsZero() {
		ev.Time = e.Time
	}
	if ev.User == "" {
		ev.User = e.User
	}
	return &holdfastv1.UsageEvent{
		Time: timestamppb.New(ev.Time), RequestId: ev.RequestID, User: ev.User, KeyId: ev.KeyID, Route: ev.Route,
		Provider: ev.Provider, Model: ev.Model, RequestedModel: ev.RequestedModel, Status: int32(ev.Status),
		ErrorType: ev.ErrorType, ProviderErrorType: ev.ProviderErrorType, Streamed: ev.Streamed,
		InputTokens: ev.InputTokens, OutputTokens: ev.OutputTokens,
		CacheCreationInputTokens: ev.CacheCreationInputTokens, CacheReadInputTokens: ev.CacheReadInputTokens,
		Estimated: ev.Estimated, CostNanos: ev.CostNanos, LatencyMs: ev.LatencyMs, TtfbMs: ev.TTFBMs,
		Attempts: int32(ev.Attempts), SampleRate: ev.SampleRate,
	}
}
