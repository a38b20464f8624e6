package tlsconf_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cluster/tlsconf"
)

func TestGenerateDevWritesParsableFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	written, err := tlsconf.GenerateDev(dir, tlsconf.DevOptions{
		Nodes: []string{"a", "b"},
		Hosts: []string{"10.0.0.5", "holdfast.internal"},
		Now:   func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range []string{"ca.pem", "ca-key.pem", "a.pem", "a-key.pem", "b.pem", "b-key.pem",
		"admin.pem", "admin-key.pem", "gossip.key", "nats.token"} {
		want = append(want, filepath.Join(dir, n))
	}
	if !slices.Equal(written, want) {
		t.Fatalf("written = %v\nwant %v", written, want)
	}

	ca := parseCertFile(t, filepath.Join(dir, "ca.pem"))
	if !ca.IsCA || !ca.NotAfter.Equal(now.AddDate(10, 0, 0)) || ca.NotBefore.After(now) {
		t.Errorf("CA: IsCA=%v NotBefore=%v NotAfter=%v", ca.IsCA, ca.NotBefore, ca.NotAfter)
	}
	for _, n := range []string{"a", "b"} {
		c := parseCertFile(t, filepath.Join(dir, n+".pem"))
		if c.Subject.CommonName != n || !slices.Equal(c.Subject.OrganizationalUnit, []string{tlsconf.OUNode}) {
			t.Errorf("node %s: subject %v", n, c.Subject)
		}
		if !slices.Equal(c.DNSNames, []string{n, "localhost", "holdfast.internal"}) {
			t.Errorf("node %s: DNS SANs %v", n, c.DNSNames)
		}
		var ips []string
		for _, ip := range c.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Equal(ips, []string{"127.0.0.1", "::1", "10.0.0.5"}) {
			t.Errorf("node %s: IP SANs %v", n, ips)
		}
		if !c.NotAfter.Equal(now.AddDate(1, 0, 0)) {
			t.Errorf("node %s: NotAfter %v", n, c.NotAfter)
		}
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("node %s: key %T, want ECDSA P-256", n, c.PublicKey)
		}
		if err := c.CheckSignatureFrom(ca); err != nil {
			t.Errorf("node %s: not signed by CA: %v", n, err)
		}
		for _, host := range []string{n, "localhost", "127.0.0.1", "::1", "10.0.0.5", "holdfast.internal"} {
			if err := c.VerifyHostname(host); err != nil {
				t.Errorf("node %s: VerifyHostname(%s): %v", n, host, err)
			}
		}
	}
	admin := parseCertFile(t, filepath.Join(dir, "admin.pem"))
	if !slices.Equal(admin.Subject.OrganizationalUnit, []string{tlsconf.OUAdmin}) ||
		!slices.Equal(admin.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("admin: OU %v EKU %v", admin.Subject.OrganizationalUnit, admin.ExtKeyUsage)
	}
	for _, kf := range []string{"ca-key.pem", "a-key.pem", "b-key.pem", "admin-key.pem"} {
		if _, err := tls.LoadX509KeyPair(filepath.Join(dir, strings.Replace(kf, "-key", "", 1)), filepath.Join(dir, kf)); err != nil {
			t.Errorf("%s: %v", kf, err)
		}
	}

	// The files are valid now only if "now" is the real now.
	if err := nodeFiles(dir, "a").Validate(); err == nil || !strings.Contains(err.Error(), "not valid before") {
		t.Errorf("Validate of certificates issued in 2030: %v", err)
	}
}

func TestGenerateDevSecrets(t *testing.T) {
	dir := gen(t, "n1")
	key, err := tlsconf.LoadGossipKey(filepath.Join(dir, tlsconf.DevGossipKeyFile))
	if err != nil || len(key) != 32 {
		t.Fatalf("gossip key: %d bytes, %v", len(key), err)
	}
	tok, err := tlsconf.LoadSecretFile(filepath.Join(dir, tlsconf.DevNATSTokenFile))
	if err != nil || len(tok) < 32 {
		t.Fatalf("nats token: %d chars, %v", len(tok), err)
	}
	dir2 := gen(t, "n1")
	key2, _ := tlsconf.LoadGossipKey(filepath.Join(dir2, tlsconf.DevGossipKeyFile))
	tok2, _ := tlsconf.LoadSecretFile(filepath.Join(dir2, tlsconf.DevNATSTokenFile))
	if bytes.Equal(key, key2) || tok == tok2 {
		t.Fatal("two runs produced the same gossip key or token")
	}
}

func TestGenerateDevPermissions(t *testing.T) {
	dir := gen(t, "n1", "n2")
	want := map[string]fs.FileMode{
		"ca.pem": 0o644, "ca-key.pem": 0o600,
		"n1.pem": 0o644, "n1-key.pem": 0o600,
		"n2.pem": 0o644, "n2-key.pem": 0o600,
		"admin.pem": 0o644, "admin-key.pem": 0o600,
		"gossip.key": 0o600, "nats.token": 0o600,
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Errorf("%d files in dir, want %d", len(ents), len(want))
	}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
}

func TestGenerateDevRefusesOverwrite(t *testing.T) {
	dir := gen(t, "n1")
	before, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	written, err := tlsconf.GenerateDev(dir, tlsconf.DevOptions{Nodes: []string{"n1"}})
	if !errors.Is(err, tlsconf.ErrExists) || len(written) != 0 {
		t.Fatalf("second run without force: written %v, err %v", written, err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "ca-key.pem")) {
		t.Errorf("error does not name the existing file: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if !bytes.Equal(before, after) {
		t.Fatal("ca-key.pem changed without force")
	}

	// Make a key world-readable: force must replace it with a 0600 one.
	if err := os.Chmod(filepath.Join(dir, "n1-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	written, err = tlsconf.GenerateDev(dir, tlsconf.DevOptions{Nodes: []string{"n1"}, Force: true})
	if err != nil || len(written) != 8 {
		t.Fatalf("force: written %v, err %v", written, err)
	}
	after, _ = os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if bytes.Equal(before, after) {
		t.Fatal("ca-key.pem not replaced with force")
	}
	st, _ := os.Stat(filepath.Join(dir, "n1-key.pem"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("forced key mode %v", st.Mode().Perm())
	}
	if _, err := tlsconf.LoadNode(nodeFiles(dir, "n1")); err != nil {
		t.Fatalf("forced files: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 8 {
		t.Fatalf("%d entries after force (temporary files left?)", len(ents))
	}

	// One existing file is enough to write nothing at all.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "nats.token"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconf.GenerateDev(dir2, tlsconf.DevOptions{Nodes: []string{"n1"}}); !errors.Is(err, tlsconf.ErrExists) {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "ca.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ca.pem written although nats.token existed: %v", err)
	}
}

func TestDevOptionsValidate(t *testing.T) {
	if err := tlsconf.DefaultDevOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []tlsconf.DevOptions{
		{},
		{Nodes: []string{"a/b"}},
		{Nodes: []string{"../x"}},
		{Nodes: []string{""}},
		{Nodes: []string{"-a"}},
		{Nodes: []string{"a", "a"}},
		{Nodes: []string{"a"}, Hosts: []string{"bad host"}},
		{Nodes: []string{"a"}, Hosts: []string{""}},
	} {
		err := o.Validate()
		if !errors.Is(err, tlsconf.ErrInvalidOptions) {
			t.Errorf("%+v: %v", o, err)
		}
		if _, gerr := tlsconf.GenerateDev(t.TempDir(), o); !errors.Is(gerr, tlsconf.ErrInvalidOptions) {
			t.Errorf("GenerateDev %+v: %v", o, gerr)
		}
	}
	ok := tlsconf.DevOptions{Nodes: []string{"edge-1.eu", "n_2"}, Hosts: []string{"::ffff:10.0.0.1", "*.holdfast.svc", "10.1.2.3"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeNodeToNode(t *testing.T) {
	dir := gen(t, "node-1", "node-2")
	srv, cli := loadNode(t, dir, "node-1"), loadNode(t, dir, "node-2")
	if id := srv.Identity(); id != (tlsconf.Identity{Name: "node-1", Role: tlsconf.RoleNode}) {
		t.Fatalf("Identity = %+v", id)
	}
	for _, serverName := range []string{"node-1", "127.0.0.1", "localhost"} {
		sr, cstate, cerr := handshake(t, srv.ServerConfig(), cli.ClientConfig(serverName))
		if sr.err != nil || cerr != nil {
			t.Fatalf("%s: server %v, client %v", serverName, sr.err, cerr)
		}
		if sr.state.Version != tls.VersionTLS13 {
			t.Errorf("version %x", sr.state.Version)
		}
		id, ok := tlsconf.PeerIdentity(sr.state)
		if !ok || id != (tlsconf.Identity{Name: "node-2", Role: tlsconf.RoleNode}) {
			t.Errorf("server sees %+v ok=%v", id, ok)
		}
		id, ok = tlsconf.PeerIdentity(cstate)
		if !ok || id != (tlsconf.Identity{Name: "node-1", Role: tlsconf.RoleNode}) {
			t.Errorf("client sees %+v ok=%v", id, ok)
		}
	}
	// The wrong server name is refused by the client.
	sr, _, cerr := handshake(t, srv.ServerConfig(), cli.ClientConfig("node-9"))
	if cerr == nil || sr.err == nil {
		t.Fatalf("wrong server name accepted: server %v client %v", sr.err, cerr)
	}
	// No server name (a peer dialed at the address it announces in
	// gossip, which no certificate names): any node of the CA.
	sr, cstate, cerr := handshake(t, srv.ServerConfig(), cli.ClientConfig(""))
	if sr.err != nil || cerr != nil {
		t.Fatalf("by identity: server %v, client %v", sr.err, cerr)
	}
	if got := cstate.PeerCertificates[0].Subject.CommonName; got != "node-1" {
		t.Fatalf("reached %q", got)
	}
}

func TestServerConfigShape(t *testing.T) {
	b := loadNode(t, gen(t, "n"), "n")
	s := b.ServerConfig()
	if s.MinVersion != tls.VersionTLS13 || s.ClientAuth != tls.VerifyClientCertIfGiven || s.ClientCAs == nil || len(s.Certificates) != 1 {
		t.Fatalf("ServerConfig: %+v", s)
	}
	c := b.ClientConfig("x")
	if c.MinVersion != tls.VersionTLS13 || c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "x" || c.InsecureSkipVerify {
		t.Fatalf("ClientConfig: %+v", c)
	}
	if s2 := b.ServerConfig(); s2 == s {
		t.Fatal("ServerConfig returned a shared *tls.Config")
	}
}

func TestHandshakeAdmin(t *testing.T) {
	dir := gen(t, "n1")
	srv := loadNode(t, dir, "n1")
	client := &tls.Config{RootCAs: caPool(t, dir), ServerName: "n1", Certificates: []tls.Certificate{adminPair(t, dir)}}
	sr, _, cerr := handshake(t, srv.ServerConfig(), client)
	if sr.err != nil || cerr != nil {
		t.Fatalf("server %v, client %v", sr.err, cerr)
	}
	id, ok := tlsconf.PeerIdentity(sr.state)
	if !ok || id != (tlsconf.Identity{Name: tlsconf.DevAdminName, Role: tlsconf.RoleAdmin}) {
		t.Fatalf("PeerIdentity = %+v ok=%v", id, ok)
	}
}

func TestHandshakeWithoutClientCert(t *testing.T) {
	dir := gen(t, "n1")
	srv := loadNode(t, dir, "n1")
	client := &tls.Config{RootCAs: caPool(t, dir), ServerName: "127.0.0.1"}
	sr, _, cerr := handshake(t, srv.ServerConfig(), client)
	if sr.err != nil || cerr != nil {
		t.Fatalf("server %v, client %v", sr.err, cerr)
	}
	if id, ok := tlsconf.PeerIdentity(sr.state); ok {
		t.Fatalf("PeerIdentity without a client certificate = %+v, ok", id)
	}
	if _, ok := tlsconf.PeerIdentity(tls.ConnectionState{}); ok {
		t.Fatal("PeerIdentity of an empty state: ok")
	}
}

func TestOtherCARefused(t *testing.T) {
	dirA, dirB := gen(t, "a1"), gen(t, "b1")
	srvA := loadNode(t, dirA, "a1")
	nodeB := loadNode(t, dirB, "b1")

	// A client presenting a certificate of CA B, trusting CA A: the server
	// refuses it.
	client := nodeB.ClientConfig("a1")
	client.RootCAs = caPool(t, dirA)
	sr, _, cerr := handshake(t, srvA.ServerConfig(), client)
	if sr.err == nil || cerr == nil {
		t.Fatalf("client certificate of another CA: server %v, client %v", sr.err, cerr)
	}
	if _, ok := tlsconf.PeerIdentity(sr.state); ok {
		t.Fatal("PeerIdentity ok for a refused certificate")
	}

	// A node of CA B dialing a server of CA A: the client refuses the
	// server, by name or by identity alone.
	for _, name := range []string{"a1", ""} {
		sr, _, cerr = handshake(t, srvA.ServerConfig(), nodeB.ClientConfig(name))
		var uae x509.UnknownAuthorityError
		if !errors.As(cerr, &uae) || sr.err == nil {
			t.Fatalf("server certificate of another CA (server name %q): server %v, client %v", name, sr.err, cerr)
		}
	}

	// An admin certificate of CA B is refused as well.
	admin := &tls.Config{RootCAs: caPool(t, dirA), ServerName: "a1", Certificates: []tls.Certificate{adminPair(t, dirB)}}
	if sr, _, cerr := handshake(t, srvA.ServerConfig(), admin); sr.err == nil || cerr == nil {
		t.Fatalf("admin of another CA: server %v, client %v", sr.err, cerr)
	}
}

// keyChunks returns fragments of the base64 bodies of every PEM file in dir,
// to check that no error quotes them.
func keyChunks(t *testing.T, dir string) []string {
	t.Helper()
	var chunks []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) >= 24 && !strings.HasPrefix(line, "-----") {
				chunks = append(chunks, line[:24])
			}
		}
	}
	return chunks
}

func TestValidateErrors(t *testing.T) {
	dir := gen(t, "n1", "n2")
	other := gen(t, "n1")
	good := nodeFiles(dir, "n1")
	p := func(name string) string { return filepath.Join(dir, name) }
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a pem file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	encrypted := filepath.Join(t.TempDir(), "enc.pem")
	if err := os.WriteFile(encrypted, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")

	if err := (tlsconf.Files{}).Validate(); err != nil {
		t.Fatalf("zero Files: %v", err)
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good files: %v", err)
	}
	if _, err := tlsconf.LoadNode(tlsconf.Files{}); !errors.Is(err, tlsconf.ErrNotConfigured) {
		t.Fatalf("LoadNode(Files{}): %v", err)
	}

	cases := []struct {
		name  string
		files tlsconf.Files
		want  []string // substrings of the error
		is    error
	}{
		{"only ca", tlsconf.Files{CA: good.CA}, []string{"cert", "key"}, tlsconf.ErrIncomplete},
		{"no key", tlsconf.Files{CA: good.CA, Cert: good.Cert}, []string{"key"}, tlsconf.ErrIncomplete},
		{"missing ca", tlsconf.Files{CA: missing, Cert: good.Cert, Key: good.Key}, []string{missing}, fs.ErrNotExist},
		{"missing key", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: missing}, []string{missing, "TLS key"}, fs.ErrNotExist},
		{"ca is a key", tlsconf.Files{CA: p("ca-key.pem"), Cert: good.Cert, Key: good.Key}, []string{p("ca-key.pem"), "holds a key"}, tlsconf.ErrInvalidFile},
		{"cert is a key", tlsconf.Files{CA: good.CA, Cert: good.Key, Key: good.Key}, []string{good.Key, "TLS certificate", "holds a key"}, tlsconf.ErrInvalidFile},
		{"key is a cert", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: good.Cert}, []string{good.Cert, "TLS key", "holds a certificate"}, tlsconf.ErrInvalidFile},
		{"garbage key", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: garbage}, []string{garbage, "no PEM"}, tlsconf.ErrInvalidFile},
		{"garbage cert", tlsconf.Files{CA: good.CA, Cert: garbage, Key: good.Key}, []string{garbage, "no PEM"}, tlsconf.ErrInvalidFile},
		{"encrypted key", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: encrypted}, []string{encrypted, "encrypted"}, tlsconf.ErrInvalidFile},
		{"ca is a leaf", tlsconf.Files{CA: good.Cert, Cert: good.Cert, Key: good.Key}, []string{good.Cert, "not a CA"}, tlsconf.ErrInvalidFile},
		{"key of another node", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: p("n2-key.pem")}, []string{p("n2-key.pem"), "does not match"}, tlsconf.ErrInvalidFile},
		{"cert of another CA", tlsconf.Files{CA: good.CA, Cert: filepath.Join(other, "n1.pem"), Key: filepath.Join(other, "n1-key.pem")}, []string{filepath.Join(other, "n1.pem"), "not signed by the CA in " + good.CA}, tlsconf.ErrInvalidFile},
		{"admin cert", tlsconf.Files{CA: good.CA, Cert: p("admin.pem"), Key: p("admin-key.pem")}, []string{p("admin.pem"), tlsconf.OUNode}, tlsconf.ErrInvalidFile},
	}
	chunks := append(keyChunks(t, dir), keyChunks(t, other)...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.files.Validate()
			if err == nil {
				t.Fatal("Validate: nil")
			}
			_, lerr := tlsconf.LoadNode(tc.files)
			if lerr == nil || lerr.Error() != err.Error() {
				t.Errorf("LoadNode error %v differs from Validate's %v", lerr, err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, "BEGIN") {
				t.Errorf("error quotes PEM: %q", msg)
			}
			for _, c := range chunks {
				if strings.Contains(msg, c) {
					t.Errorf("error quotes file content %q: %q", c, msg)
				}
			}
		})
	}
}

func TestValidateMultipleProblems(t *testing.T) {
	dir := gen(t, "n1")
	a, b := filepath.Join(t.TempDir(), "a.pem"), filepath.Join(t.TempDir(), "b.pem")
	err := tlsconf.Files{CA: a, Cert: b, Key: filepath.Join(dir, "n1-key.pem")}.Validate()
	var fe *tlsconf.FileError
	if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateExpired(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	past := time.Now().AddDate(-2, 0, 0)
	if _, err := tlsconf.GenerateDev(dir, tlsconf.DevOptions{Nodes: []string{"n1"}, Now: func() time.Time { return past }}); err != nil {
		t.Fatal(err)
	}
	f := nodeFiles(dir, "n1")
	err := f.Validate()
	if err == nil || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), f.Cert) {
		t.Fatalf("Validate of an expired certificate: %v", err)
	}
}

func TestLoadGossipKey(t *testing.T) {
	d := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, n := range []int{16, 24, 32} {
		raw := bytes.Repeat([]byte{byte(n)}, n)
		k, err := tlsconf.LoadGossipKey(write("k", "  "+base64.StdEncoding.EncodeToString(raw)+"\n"))
		if err != nil || !bytes.Equal(k, raw) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	raw := bytes.Repeat([]byte{7}, 16)
	if k, err := tlsconf.LoadGossipKey(write("unpadded", base64.RawStdEncoding.EncodeToString(raw))); err != nil || !bytes.Equal(k, raw) {
		t.Fatalf("unpadded: %v", err)
	}
	short := write("short", base64.StdEncoding.EncodeToString([]byte("0123456789")))
	secret := "s3cr3t-not-base64!!"
	notB64 := write("notb64", secret)
	empty := write("empty", " \n")
	missing := filepath.Join(d, "missing")
	for p, want := range map[string]string{short: "16, 24 or 32", notB64: "base64", empty: "empty", missing: "no such file"} {
		_, err := tlsconf.LoadGossipKey(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", p, err)
		}
		if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "MDEyMzQ1")) {
			t.Errorf("error quotes the content: %v", err)
		}
	}
}

func TestLoadSecretFile(t *testing.T) {
	d := t.TempDir()
	p := filepath.Join(d, "tok")
	if err := os.WriteFile(p, []byte("\n  tok-en \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := tlsconf.LoadSecretFile(p); err != nil || s != "tok-en" {
		t.Fatalf("%q %v", s, err)
	}
	if err := os.WriteFile(p, []byte(" \t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconf.LoadSecretFile(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty: %v", err)
	}
	missing := filepath.Join(d, "nope")
	if _, err := tlsconf.LoadSecretFile(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing: %v", err)
	}
	// A directory is unreadable as a file.
	if _, err := tlsconf.LoadSecretFile(d); err == nil || !strings.Contains(err.Error(), d) {
		t.Fatalf("directory: %v", err)
	}
}

// PeerIdentity trusts only a verified chain: a certificate the handshake
// accepted without verifying it (a server that merely requests one) names
// nobody.
func TestPeerIdentityNeedsVerifiedChain(t *testing.T) {
	dirA, dirB := gen(t, "a1"), gen(t, "b1")
	srv := loadNode(t, dirA, "a1").ServerConfig()
	srv.ClientAuth = tls.RequestClientCert // accepts any certificate unverified
	client := loadNode(t, dirB, "b1").ClientConfig("a1")
	client.RootCAs = caPool(t, dirA)
	sr, _, cerr := handshake(t, srv, client)
	if sr.err != nil || cerr != nil {
		t.Fatalf("server %v, client %v", sr.err, cerr)
	}
	if len(sr.state.PeerCertificates) == 0 {
		t.Fatal("the client sent no certificate")
	}
	if id, ok := tlsconf.PeerIdentity(sr.state); ok {
		t.Fatalf("PeerIdentity of an unverified certificate = %+v, ok", id)
	}
}

func TestPeerConfig(t *testing.T) {
	dir := gen(t, "n1", "n2")
	n1, n2 := loadNode(t, dir, "n1"), loadNode(t, dir, "n2")

	// Both ends with PeerConfig: each sees the other as a node.
	client := n2.PeerConfig()
	client.ServerName = "10.99.0.7" // a route found by gossip: an address no certificate names
	sr, cstate, cerr := handshake(t, n1.PeerConfig(), client)
	if sr.err != nil || cerr != nil {
		t.Fatalf("server %v, client %v", sr.err, cerr)
	}
	if id, ok := tlsconf.PeerIdentity(sr.state); !ok || id != (tlsconf.Identity{Name: "n2", Role: tlsconf.RoleNode}) {
		t.Errorf("server sees %+v %v", id, ok)
	}
	if got := cstate.PeerCertificates[0].Subject.CommonName; got != "n1" {
		t.Errorf("client reached %q", got)
	}
	// The dialing side still refuses a node of another CA.
	other := loadNode(t, gen(t, "x1"), "x1")
	if sr, _, cerr := handshake(t, other.PeerConfig(), n2.PeerConfig()); cerr == nil || sr.err == nil {
		t.Fatalf("a server of another CA: server %v, client %v", sr.err, cerr)
	}

	// A client without a certificate is refused.
	sr, _, cerr = handshake(t, n1.PeerConfig(), &tls.Config{RootCAs: caPool(t, dir), ServerName: "n1"})
	if sr.err == nil || cerr == nil {
		t.Fatalf("no client certificate: server %v, client %v", sr.err, cerr)
	}
	// An admin certificate of the same CA is refused: not a node.
	admin := &tls.Config{RootCAs: caPool(t, dir), ServerName: "n1", Certificates: []tls.Certificate{adminPair(t, dir)}}
	sr, _, cerr = handshake(t, n1.PeerConfig(), admin)
	if !errors.Is(sr.err, tlsconf.ErrNotNode) || cerr == nil {
		t.Fatalf("admin certificate: server %v, client %v", sr.err, cerr)
	}

	// ServerConfig also dials (NATS routes): it trusts the CA.
	dial := n2.ServerConfig()
	dial.ServerName = "127.0.0.1"
	if sr, _, cerr := handshake(t, n1.ServerConfig(), dial); sr.err != nil || cerr != nil {
		t.Fatalf("ServerConfig as a dialer: server %v, client %v", sr.err, cerr)
	}
}
