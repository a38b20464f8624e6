package natsdir

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// testTLS makes a CA and a certificate for 127.0.0.1 usable as server and
// client (mutual TLS for clients and routes).
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// TestTLSCluster: two servers with mutual TLS on clients and routes form a
// cluster; a TCP client needs the certificate and the token; in-process
// clients need neither TLS nor a certificate.
func TestTLSCluster(t *testing.T) {
	t.Parallel()
	tc := testTLS(t)
	ports := []int{freePort(t), freePort(t)}
	routes := []string{"127.0.0.1:" + strconv.Itoa(ports[0]), "127.0.0.1:" + strconv.Itoa(ports[1])}
	var servers []*Server
	for i := range 2 {
		cfg := DefaultServerConfig()
		cfg.NodeID = "tls" + strconv.Itoa(i)
		cfg.DataDir = t.TempDir()
		cfg.ClientAddr = "127.0.0.1:0"
		cfg.ClusterAddr = routes[i]
		cfg.Routes = routes
		cfg.Token = testToken
		cfg.TLS = tc
		servers = append(servers, startTestServer(t, cfg))
	}
	waitFor(t, 10*time.Second, "TLS routes", func() bool {
		return servers[0].NATS().NumRoutes() > 0 && servers[1].NATS().NumRoutes() > 0
	})
	url := servers[0].ClientURL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("ClientURL %s", url)
	}
	clientTLS := tc.Clone()
	if nc, err := nats.Connect(url, nats.Token(testToken), nats.Secure(&tls.Config{RootCAs: tc.RootCAs}), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without a client certificate")
	}
	nc, err := nats.Connect(url, nats.Token(testToken), nats.Secure(clientTLS))
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	defer nc.Close()
	// A message crosses the TLS route.
	ic, err := servers[1].Connect("inproc")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ic.SubscribeSync("hello")
	if err != nil {
		t.Fatal(err)
	}
	_ = ic.Flush()
	waitFor(t, 10*time.Second, "interest over the route", func() bool {
		_ = nc.Publish("hello", []byte("x"))
		_ = nc.Flush()
		m, err := sub.NextMsg(50 * time.Millisecond)
		return err == nil && string(m.Data) == "x"
	})
}
