package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A certificate of the right CA that allows server authentication but
// carries the admin role is refused by a node's ClientConfig: only nodes
// serve peers.
func TestClientConfigRefusesNonNodeServer(t *testing.T) {
	dir := t.TempDir()
	if _, err := GenerateDev(dir, DevOptions{Nodes: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	ca := readPEMCert(t, filepath.Join(dir, DevCAFile))
	caKey, err := readKey(filepath.Join(dir, DevCAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := issue(ca, caKey, leafSpec{
		name: "impostor", ou: OUAdmin, now: time.Now(),
		usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		ips:    []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	node, err := LoadNode(Files{CA: filepath.Join(dir, DevCAFile), Cert: filepath.Join(dir, "n1.pem"), Key: filepath.Join(dir, "n1-key.pem")})
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		done <- tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}}).Handshake()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	cc := tls.Client(conn, node.ClientConfig("127.0.0.1"))
	cerr := cc.Handshake()
	cc.Close()
	<-done
	if !errors.Is(cerr, ErrNotNode) {
		t.Fatalf("client handshake with an admin-role server: %v", cerr)
	}
	if err := node.verifyNode(tls.ConnectionState{PeerCertificates: []*x509.Certificate{pair.Leaf}}); !errors.Is(err, ErrNotNode) {
		t.Fatalf("an admin-role server, verified by identity alone: %v", err)
	}
}

func TestIdentityOf(t *testing.T) {
	for _, tc := range []struct {
		cn   string
		ous  []string
		want Identity
		ok   bool
	}{
		{"n", []string{OUNode}, Identity{"n", RoleNode}, true},
		{"a", []string{"x", OUAdmin}, Identity{"a", RoleAdmin}, true},
		{"b", []string{OUNode, OUAdmin}, Identity{}, false},
		{"c", nil, Identity{}, false},
		{"", []string{OUNode}, Identity{}, false},
	} {
		c := &x509.Certificate{}
		c.Subject.CommonName, c.Subject.OrganizationalUnit = tc.cn, tc.ous
		got, ok := identityOf(c)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q %v: %+v %v", tc.cn, tc.ous, got, ok)
		}
	}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
