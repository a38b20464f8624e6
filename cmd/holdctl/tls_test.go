package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// selfSigned writes a CA certificate for 127.0.0.1, usable by server and
// client, and its key; it returns their paths and the parsed pair.
func selfSigned(t *testing.T) (certPath, keyPath string, pair tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "holdfast test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certPath, keyPath, pair, pool
}

func TestTLSWithClientCertificate(t *testing.T) {
	certPath, keyPath, pair, pool := selfSigned(t)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})
	_, addr := startFake(t, grpc.Creds(creds))

	r := holdctl(t, nil, "--addr", addr, "--tls-ca", certPath, "--cert", certPath, "--key", keyPath, "status", "-o", "json")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, `"node_id": "node-1"`) {
		t.Fatalf("stdout %q", r.stdout)
	}
	// Without the client certificate, or in plain text, the node is unreachable.
	for _, args := range [][]string{{"--tls-ca", certPath}, {}} {
		r := holdctl(t, nil, append([]string{"--addr", addr, "status"}, args...)...)
		wantCode(t, r, 1)
		if !strings.HasPrefix(r.stderr, "holdctl: ") || !strings.Contains(r.stderr, addr) {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
	}
	r = holdctl(t, nil, "--addr", addr, "--tls-ca", keyPath, "status")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "--tls-ca: no PEM certificates") {
		t.Errorf("stderr %q", r.stderr)
	}
}
