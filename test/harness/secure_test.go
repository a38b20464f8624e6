package harness_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cluster/tlsconf"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// A secure cluster forms and forwards over mTLS; the node-to-node service
// refuses an admin certificate and a plaintext client.
func TestSecureClusterMTLS(t *testing.T) {
	c := harness.New(t, 3, harness.Options{Secure: true})
	for i := range 20 {
		key := fmt.Sprintf("s-%d", i)
		if err := put(t, c, i%3, key, "f", key); err != nil {
			t.Fatalf("put via node-%d: %v", i%3+1, err)
		}
		if v, err := get(t, c, (i+1)%3, key, "f"); err != nil || v != key {
			t.Fatalf("get = %q, %v", v, err)
		}
	}
	dir := c.CertsDir()
	caPEM, err := os.ReadFile(filepath.Join(dir, tlsconf.DevCAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	admin, err := tls.LoadX509KeyPair(filepath.Join(dir, tlsconf.DevAdminFile), filepath.Join(dir, tlsconf.DevAdminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	addr := c.Node(0).GRPCAddr()
	dial := func(creds credentials.TransportCredentials) *grpc.ClientConn {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The admin certificate opens the admin service (holdctl)...
	adminConn := dial(credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{admin}, ServerName: "127.0.0.1"}))
	if _, err := holdfastv1.NewAdminServiceClient(adminConn).Ring(ctx, &holdfastv1.RingRequest{}); err != nil {
		t.Fatalf("ring with the admin certificate: %v", err)
	}
	// ...but not the node-to-node service.
	_, err = holdfastv1.NewPeerServiceClient(adminConn).Ping(ctx, &holdfastv1.PingRequest{NodeId: "intruder"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("peer ping with an admin certificate: %v, want PermissionDenied", err)
	}
	// No certificate at all: the peer service refuses.
	anon := dial(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}))
	if _, err := holdfastv1.NewPeerServiceClient(anon).Ping(ctx, &holdfastv1.PingRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("peer ping without a certificate: %v, want PermissionDenied", err)
	}
	// Plaintext does not even reach the server's handlers.
	plain := dial(insecure.NewCredentials())
	if _, err := holdfastv1.NewPeerServiceClient(plain).Ping(ctx, &holdfastv1.PingRequest{}); err == nil {
		t.Fatal("plaintext peer ping succeeded")
	}
}
