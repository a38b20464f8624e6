package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cluster/tlsconf"
)

// gen writes development files for nodes into a new temporary directory.
func gen(t *testing.T, nodes ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := tlsconf.GenerateDev(dir, tlsconf.DevOptions{Nodes: nodes}); err != nil {
		t.Fatalf("GenerateDev: %v", err)
	}
	return dir
}

func nodeFiles(dir, name string) tlsconf.Files {
	c, k := tlsconf.DevNodeFiles(name)
	return tlsconf.Files{CA: filepath.Join(dir, tlsconf.DevCAFile), Cert: filepath.Join(dir, c), Key: filepath.Join(dir, k)}
}

func loadNode(t *testing.T, dir, name string) *tlsconf.Bundle {
	t.Helper()
	b, err := tlsconf.LoadNode(nodeFiles(dir, name))
	if err != nil {
		t.Fatalf("LoadNode(%s): %v", name, err)
	}
	return b
}

func caPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, tlsconf.DevCAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no CA certificate")
	}
	return pool
}

func adminPair(t *testing.T, dir string) tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, tlsconf.DevAdminFile), filepath.Join(dir, tlsconf.DevAdminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func parseCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s: no certificate block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

type serverResult struct {
	state tls.ConnectionState
	err   error
}

// handshake runs a real TLS handshake over a loopback TCP socket: the server
// sends one byte once its handshake completes and the client reads it (in
// TLS 1.3 a client learns that the server refused its certificate only on
// its first read). It returns the server's outcome and the client's.
func handshake(t *testing.T, server, client *tls.Config) (serverResult, tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan serverResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- serverResult{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		sc := tls.Server(c, server)
		err = sc.Handshake()
		if err == nil {
			_, err = sc.Write([]byte{1})
		}
		done <- serverResult{state: sc.ConnectionState(), err: err}
	}()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	cc := tls.Client(conn, client)
	cerr := cc.Handshake()
	if cerr == nil {
		var b [1]byte
		_, cerr = io.ReadFull(cc, b[:])
	}
	cstate := cc.ConnectionState()
	cc.Close()
	return <-done, cstate, cerr
}
