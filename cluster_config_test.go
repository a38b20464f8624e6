package holdfast

import (
	"errors"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/cluster"
)

func TestClusterWithoutSecurityRefusedUnlessInsecure(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cluster.Join = []string{"10.0.0.2:7946"}
	err := cfg.Validate()
	if !errors.Is(err, cluster.ErrInsecure) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("Validate() = %v, want the insecure refusal naming --insecure", err)
	}
	cfg.Cluster.Insecure = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with insecure: %v", err)
	}
	// A single node needs none of it.
	single := DefaultConfig()
	if err := single.Validate(); err != nil || single.Clustered() {
		t.Fatalf("single node: %v, clustered=%v", err, single.Clustered())
	}
}

func TestClusterConfigErrorsNameTheKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cluster.Enabled, cfg.Cluster.Insecure = true, true
	cfg.Cluster.LeaseTTL = 0
	cfg.Cluster.TLS.CA = "/x/ca.pem"
	err := cfg.Validate()
	for _, want := range []string{"cluster.lease_ttl", "cluster.tls"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate() = %v, want it to name %s", err, want)
		}
	}
}

func TestNATSRoutesFromJoin(t *testing.T) {
	got := natsRoutesFromJoin([]string{"holdfast-0.holdfast:7946", "10.0.0.3:7946", "seed"}, "0.0.0.0:6222")
	want := []string{"holdfast-0.holdfast:6222", "10.0.0.3:6222", "seed:6222"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("routes = %v, want %v", got, want)
	}
}

func TestOnOwnerLossValidated(t *testing.T) {
	cfg := DefaultConfig()
	ns := cfg.Namespaces["account"]
	ns.OnOwnerLoss = "reset"
	cfg.Namespaces["account"] = ns
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "namespaces.account.on_owner_loss") {
		t.Fatalf("account reset: %v", err)
	}
	cfg = DefaultConfig()
	ns = cfg.Namespaces["kv"]
	ns.OnOwnerLoss = "sometimes"
	cfg.Namespaces["kv"] = ns
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "namespaces.kv.on_owner_loss") {
		t.Fatalf("bad value: %v", err)
	}
}
