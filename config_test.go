package holdfast

import (
	"os"
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFileOverridesAndRefusesUnknownKeys(t *testing.T) {
	cfg := DefaultConfig()
	err := cfg.UnmarshalYAMLBytes([]byte(`
http_addr: 127.0.0.1:9999
limits:
  max_value_bytes: 1024
  turn_deadline: 5s
namespaces:
  ratelimit:
    durability: memory
    buckets:
      requests: {capacity: 10, refill_per_second: 0.5}
    daily_budget_usd: "2.50"
  sessions:
    kind: kv
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:9999" || cfg.GRPCAddr != "127.0.0.1:7070" || cfg.Limits.MaxValueBytes != 1024 || cfg.Limits.MaxKeyBytes != 2048 {
		t.Fatalf("merge: %+v", cfg)
	}
	if rl := cfg.Namespaces["ratelimit"]; rl.Kind != "ratelimit" || rl.Durability != "memory" || rl.Buckets["requests"].Capacity != 10 {
		t.Fatalf("ratelimit namespace: %+v", rl)
	}
	if _, ok := cfg.Namespaces["kv"]; !ok {
		t.Fatal("built-in kv namespace lost")
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := buildNamespaces(cfg, settingsStores{}, nil); err != nil {
		t.Fatal(err)
	}

	bad := DefaultConfig()
	if err := bad.UnmarshalYAMLBytes([]byte("htp_addr: x\n")); err == nil || !strings.Contains(err.Error(), "htp_addr") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	cases := map[string]func(*Config){
		"auth.token":               func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" },
		"limits.max_value_bytes":   func(c *Config) { c.Limits.MaxValueBytes = 0 },
		"namespaces.x.kind":        func(c *Config) { c.Namespaces["x"] = NamespaceConfig{Kind: "nope"} },
		"namespaces.kv.durability": func(c *Config) { c.Namespaces["kv"] = NamespaceConfig{Kind: "kv", Durability: "replicated-ish"} },
		"log.level":                func(c *Config) { c.Log.Level = "loud" },
		"grpc_addr":                func(c *Config) { c.GRPCAddr = "nocolon" },
		"namespaces.kv: buckets": func(c *Config) {
			c.Namespaces["kv"] = NamespaceConfig{Kind: "kv", Buckets: map[string]BucketConfig{"a": {}}}
		},
	}
	for want, mutate := range cases {
		cfg := DefaultConfig()
		cfg.Namespaces = map[string]NamespaceConfig{"kv": {Kind: "kv"}}
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	ok := DefaultConfig()
	ok.HTTPAddr = "0.0.0.0:8080"
	ok.Auth.Token = "t"
	if err := ok.Validate(); err != nil {
		t.Fatalf("token given: %v", err)
	}
}

func TestParseUSD(t *testing.T) {
	for in, want := range map[string]int64{"12.345678901": 12345678901, "0.000000001": 1, "$5": 5_000_000_000, ".5": 500_000_000, "0": 0} {
		got, err := ParseUSD(in)
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.0000000001", "-1", "abc", "99999999999999999999"} {
		if _, err := ParseUSD(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestTokenFileErrorsAreNamed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Auth.TokenFile = t.TempDir() + "/missing"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "auth.token_file") {
		t.Fatalf("unreadable token file: %v", err)
	}
	empty := t.TempDir() + "/empty"
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Auth.TokenFile = empty
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty token file: %v", err)
	}
	good := t.TempDir() + "/tok"
	os.WriteFile(good, []byte("s3cret\n"), 0o600)
	cfg.Auth.TokenFile = good
	cfg.HTTPAddr = "0.0.0.0:8080"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("readable token file beyond loopback: %v", err)
	}
	if tok, err := cfg.token(); err != nil || tok != "s3cret" {
		t.Fatalf("token %q %v", tok, err)
	}
}
