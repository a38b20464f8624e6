package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/cluster/tlsconf"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCertsInitDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := runCmd(t, "certs", "init", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	names := []string{"ca.pem", "ca-key.pem", "admin.pem", "admin-key.pem", "gossip.key", "nats.token"}
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		c, k := tlsconf.DevNodeFiles(n)
		names = append(names, c, k)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if !strings.Contains(out, "  "+p+"\n") {
			t.Errorf("output does not list %s:\n%s", p, out)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(out, "Wrote 12 files") {
		t.Errorf("output: %s", out)
	}
	for _, key := range []string{"cluster.tls.ca", "cluster.tls.cert", "cluster.tls.key", "cluster.gossip_key_file", "cluster.nats_token_file", "--tls-ca"} {
		if !strings.Contains(out, key) {
			t.Errorf("hint does not name %s:\n%s", key, out)
		}
	}
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		c, k := tlsconf.DevNodeFiles(n)
		f := tlsconf.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, c), Key: filepath.Join(dir, k)}
		b, err := tlsconf.LoadNode(f)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if b.Identity().Name != n {
			t.Errorf("identity %+v, want %s", b.Identity(), n)
		}
	}
	// No secret is printed.
	tok, err := tlsconf.LoadSecretFile(filepath.Join(dir, "nats.token"))
	if err != nil {
		t.Fatal(err)
	}
	gk, err := os.ReadFile(filepath.Join(dir, "gossip.key"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, tok) || strings.Contains(out, strings.TrimSpace(string(gk))) || strings.Contains(out, "PRIVATE KEY") {
		t.Fatal("output contains a secret")
	}

	// Again without --force: refused, exit 1, nothing changed.
	before, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	code, _, errOut = runCmd(t, "certs", "init", dir)
	if code != 1 || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "--force") {
		t.Fatalf("second run: exit %d, stderr %s", code, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if !bytes.Equal(before, after) {
		t.Fatal("ca-key.pem changed without --force")
	}
	// With --keep (an init container's every start): exit 0, nothing changed.
	code, out, errOut = runCmd(t, "certs", "init", "--keep", dir)
	if code != 0 || !strings.Contains(out, "Kept the existing files") {
		t.Fatalf("--keep: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if after, _ = os.ReadFile(filepath.Join(dir, "ca-key.pem")); !bytes.Equal(before, after) {
		t.Fatal("ca-key.pem changed with --keep")
	}
	// With --force (after DIR): replaced.
	code, _, errOut = runCmd(t, "certs", "init", dir, "--force")
	if code != 0 {
		t.Fatalf("--force: exit %d, stderr %s", code, errOut)
	}
	after, _ = os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if bytes.Equal(before, after) {
		t.Fatal("ca-key.pem not replaced with --force")
	}
}

func TestCertsInitNodesAndHosts(t *testing.T) {
	for _, args := range [][]string{
		{"--node", "a", "--node", "b", "--host", "10.1.2.3", "--host", "db.internal"},
		{"--nodes", "a,b", "--host", "10.1.2.3,db.internal"},
	} {
		dir := t.TempDir()
		code, out, errOut := runCmd(t, append([]string{"certs", "init"}, append(args, dir)...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %s", args, code, errOut)
		}
		if !strings.Contains(out, "Wrote 10 files") {
			t.Errorf("%v: %s", args, out)
		}
		for _, n := range []string{"a", "b"} {
			c, k := tlsconf.DevNodeFiles(n)
			b, err := tlsconf.LoadNode(tlsconf.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, c), Key: filepath.Join(dir, k)})
			if err != nil {
				t.Fatal(err)
			}
			leaf := b.ServerConfig().Certificates[0].Leaf
			for _, h := range []string{n, "localhost", "127.0.0.1", "10.1.2.3", "db.internal"} {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Errorf("%v: node %s: %v", args, n, err)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "node-1.pem")); err == nil {
			t.Errorf("%v: default nodes written too", args)
		}
	}
}

func TestCertsUsageErrors(t *testing.T) {
	d := t.TempDir()
	for _, args := range [][]string{
		{"certs"},
		{"certs", "bogus"},
		{"certs", "init"},
		{"certs", "init", filepath.Join(d, "a"), filepath.Join(d, "b")},
		{"certs", "init", "--bogus", filepath.Join(d, "c")},
		{"certs", "init", filepath.Join(d, "e"), "--node", "bad/name"},
		{"certs", "init", filepath.Join(d, "f"), "--nodes", "a,,b"},
		{"certs", "init", filepath.Join(d, "g"), "--nodes", "a,a"},
		{"certs", "init", filepath.Join(d, "h"), "--host", "not a host"},
		{"certs", "init", filepath.Join(d, "i"), "--node"},
		{"certs", "init", filepath.Join(d, "j"), "--force", "--keep"},
	} {
		code, out, errOut := runCmd(t, args...)
		if code != 2 || errOut == "" || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if ents, _ := os.ReadDir(d); len(ents) != 0 {
		t.Errorf("usage errors wrote %d entries", len(ents))
	}
	for _, args := range [][]string{{"certs", "help"}, {"certs", "init", "-h"}} {
		code, out, _ := runCmd(t, args...)
		if code != 0 || !strings.Contains(out, "holdfast certs init DIR") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
	code, out, _ := runCmd(t, "help")
	if code != 0 || !strings.Contains(out, "certs init") {
		t.Errorf("help: %d %q", code, out)
	}
}

// An I/O failure (DIR is a regular file) exits 1.
func TestCertsInitFailure(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "certs", "init", f)
	if code != 1 || !strings.HasPrefix(errOut, "holdfast: ") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
