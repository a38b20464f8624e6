package holdfast

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/cluster/tlsconf"
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

// {node_id} in the TLS paths lets every node of a StatefulSet share one
// config file; each loads its own certificate.
func TestTLSPathsTakeTheNodeID(t *testing.T) {
	dir := t.TempDir()
	if _, err := tlsconf.GenerateDev(dir, tlsconf.DevOptions{Nodes: []string{"holdfast-0", "holdfast-1"}}); err != nil {
		t.Fatal(err)
	}
	certName, keyName := tlsconf.DevNodeFiles(NodeIDPlaceholder)
	for _, id := range []string{"holdfast-0", "holdfast-1"} {
		cfg := DefaultConfig()
		cfg.NodeID = id
		cfg.Cluster.TLS = ClusterTLSFile{CA: filepath.Join(dir, tlsconf.DevCAFile), Cert: filepath.Join(dir, certName), Key: filepath.Join(dir, keyName)}
		s, err := cfg.readClusterSecrets()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.bundle.Identity().Name; got != id {
			t.Fatalf("node %s loaded %s's certificate", id, got)
		}
	}
	cfg := DefaultConfig()
	cfg.NodeID = "holdfast-9"
	cfg.Cluster.TLS = ClusterTLSFile{CA: filepath.Join(dir, tlsconf.DevCAFile), Cert: filepath.Join(dir, certName), Key: filepath.Join(dir, keyName)}
	if _, err := cfg.readClusterSecrets(); err == nil || !strings.Contains(err.Error(), "holdfast-9.pem") {
		t.Fatalf("a node without a certificate: %v (want the expanded path named)", err)
	}
}
