package holdfast

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

func TestHotKeyOptions(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.UnmarshalYAMLBytes([]byte(`
namespaces:
  ratelimit:
    hot_threshold_tps: 500
    hot_shards: 8
    hot_merge_after: 30s
    hot_cache_ttl: 2s
    allowance_lifetime: 250ms
    allowance_max_takes: 16
  static:
    kind: ratelimit
    shards: 16
    allowances: false
    hot_threshold_tps: 100
`)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := cfg.Namespaces["ratelimit"].hotConfig()
	if h.ThresholdTPS != 500 || h.HotShards != 8 || h.MergeAfter != 30*time.Second || h.AllowanceLifetime != 250*time.Millisecond || h.AllowanceMaxTakes != 16 {
		t.Fatalf("ratelimit: %+v", h)
	}
	if s := cfg.Namespaces["static"].hotConfig(); s.Shards != 16 || s.AllowanceLifetime != 0 || s.AutoSplit() {
		t.Fatalf("static: %+v", s)
	}
	// A threshold alone: allowances on, for a second.
	if h := (NamespaceConfig{Kind: "ratelimit", HotThresholdTPS: 1}).hotConfig(); h.AllowanceLifetime != time.Second {
		t.Fatalf("default allowance lifetime: %+v", h)
	}
	layer := cfg.hotLayerNamespaces()
	if len(layer) != 2 || layer["ratelimit"].CacheTTL != 2*time.Second || !layer["ratelimit"].Allowances || layer["static"].Allowances {
		t.Fatalf("layer namespaces: %+v", layer)
	}
	if len(DefaultConfig().hotLayerNamespaces()) != 0 {
		t.Fatal("the default config has hot-key handling")
	}
}

func TestHotKeyOptionsNameTheKey(t *testing.T) {
	yes := true
	cases := map[string]NamespaceConfig{
		"namespaces.x.shards applies to kind ratelimit only": {Kind: "kv", Shards: 4},
		"namespaces.x.allowances applies":                    {Kind: "account", Allowances: &yes},
		"shards 2000":                                        {Kind: "ratelimit", Shards: 2000},
		"hot_threshold_tps -1":                               {Kind: "ratelimit", HotThresholdTPS: -1},
		"hot_shards 65":                                      {Kind: "ratelimit", HotShards: 65},
		"hot_merge_after -1s":                                {Kind: "ratelimit", HotMergeAfter: -time.Second},
		"namespaces.x.hot_cache_ttl -1s":                     {Kind: "ratelimit", HotCacheTTL: -time.Second},
		"namespaces.x.allowance_lifetime 2s":                 {Kind: "ratelimit", AllowanceLifetime: 2 * time.Second},
		"allowance_max_takes -1":                             {Kind: "ratelimit", HotThresholdTPS: 1, AllowanceMaxTakes: -1},
		"are exclusive":                                      {Kind: "ratelimit", Shards: 4, HotShards: 4},
	}
	for want, ns := range cases {
		cfg := DefaultConfig()
		cfg.Namespaces["x"] = ns
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "namespaces.x") {
			t.Errorf("%+v: %v (want %q)", ns, err, want)
		}
	}
}

// A single node puts the hot-key layer in front of its runtime: a static
// key is spread over its shards, and Hot lists what is hot.
func TestSingleNodeStaticShards(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Namespaces["sharded"] = NamespaceConfig{Kind: "ratelimit", Shards: 4, HotThresholdTPS: 1,
		Buckets: map[string]BucketConfig{"r": {Capacity: 40, RefillPerSecond: 0.000004}}}
	n, err := NewNode(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	ctx := context.Background()
	id := actor.ID{Namespace: "sharded", Key: "k"}
	admitted := 0
	for range 60 {
		resp, err := n.Caller().Call(ctx, id, &holdfastv1.RateLimitTakeRequest{Actor: &holdfastv1.ActorRef{Namespace: "sharded", Key: "k"}, Amounts: map[string]int64{"r": 1}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed() {
			admitted++
		}
	}
	if admitted != 40 {
		t.Fatalf("admitted %d of 40", admitted)
	}
	_, err = n.Caller().Call(ctx, id, &holdfastv1.RateLimitTakeRequest{Actor: &holdfastv1.ActorRef{Namespace: "sharded", Key: "k"}, Amounts: map[string]int64{"r": 11}})
	var re *actor.ReasonError
	if !errors.As(err, &re) || re.Reason() != ratelimit.ReasonTakeExceedsShardShare {
		t.Fatalf("take of 11 over 4 shards of 10: %v", err)
	}
	hot, err := n.Hot(ctx, false)
	if err != nil || len(hot.GetNodes()) != 1 || len(hot.GetNodes()[0].GetKeys()) == 0 {
		t.Fatalf("Hot: %v, %v", hot, err)
	}
	for _, k := range hot.GetNodes()[0].GetKeys() {
		if k.GetActor().GetNamespace() != "sharded" || k.GetShards() != 4 {
			t.Fatalf("Hot lists %v", k)
		}
	}
}
