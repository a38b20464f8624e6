//go:build linux

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// refuseBound is how long a refusal may take before it counts as a hang.
const refuseBound = 15 * time.Second

// wantRefusal checks that holdfast exited non-zero, promptly, naming every
// one of want on stderr.
func wantRefusal(t *testing.T, r Result, want ...string) {
	t.Helper()
	if r.TimedOut {
		t.Fatalf("holdfast did not refuse within %v: %v", refuseBound, r)
	}
	if r.Code == 0 || r.Code == -1 {
		t.Errorf("want a non-zero exit status, got %v", r)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr does not name %q: %v", w, r)
		}
	}
	t.Logf("refused in %v: %s", r.Elapsed.Round(time.Millisecond), strings.TrimSpace(r.Stderr))
}

func serveArgs(dir string, extra ...string) []string {
	return append([]string{"serve", "--data-dir", dir, "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"}, extra...)
}

func TestDataDirRefusals(t *testing.T) {
	t.Parallel()
	Build(t)

	t.Run("regular file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "not-a-dir")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantRefusal(t, RunHoldfast(t, refuseBound, serveArgs(file)...), file, "not a directory")
	})

	t.Run("in use", func(t *testing.T) {
		t.Parallel()
		n := StartNode(t, NodeOptions{})
		wantRefusal(t, RunHoldfast(t, refuseBound, serveArgs(n.DataDir)...), n.DataDir, "in use by another process")
		// The first node is unharmed.
		if r := n.MustDo(t, "GET", "/readyz", ""); r.Status != 200 {
			t.Errorf("first node after the refused second: /readyz %v", r)
		}
	})

	t.Run("read-only filesystem", func(t *testing.T) {
		t.Parallel()
		ro := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
			t.Skipf("cannot mount a read-only tmpfs (%v): not root, or no CAP_SYS_ADMIN; read-only case not tested", err)
		}
		t.Cleanup(func() {
			if err := syscall.Unmount(ro, 0); err != nil {
				t.Errorf("unmount %s: %v", ro, err)
			}
		})
		// The data dir is the read-only mount itself, and one to be created
		// under it.
		wantRefusal(t, RunHoldfast(t, refuseBound, serveArgs(ro)...), ro, "read-only")
		sub := filepath.Join(ro, "data")
		wantRefusal(t, RunHoldfast(t, refuseBound, serveArgs(sub)...), sub, "read-only")
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()

	t.Run("http", func(t *testing.T) {
		t.Parallel()
		n := StartNode(t, NodeOptions{})

		// One byte over the default max_value_bytes (131072).
		big := strings.Repeat("v", 131073)
		r := n.MustDo(t, "PUT", "/v1/actors/kv/bad/storage/big", big)
		wantError(t, "PUT of a 131073-byte value", r, 400, "LIMIT_EXCEEDED")
		var e errorJSON
		json.Unmarshal(r.Body, &e)
		if e.Error.Details["limit"] != "max_value_bytes" || !strings.Contains(e.Error.Message, "max_value_bytes") {
			t.Errorf("oversized value: the error does not name max_value_bytes: %s", r.Body)
		}
		if r := n.MustDo(t, "GET", "/v1/actors/kv/bad/storage/big", ""); r.Status != 404 {
			t.Errorf("GET after the refused PUT: %v, want 404 (nothing stored)", r)
		}
		if l := listAll(t, n, "bad"); len(l) != 0 {
			t.Errorf("kv/bad after the refused PUT holds %d keys", len(l))
		}
		// The same value through the kv.put op (base64 in JSON).
		r = n.MustDo(t, "POST", "/v1/actors/kv/bad/kv.put", `{"entries":[{"key":"big2","value":"`+b64(big)+`"}]}`)
		wantError(t, "kv.put of a 131073-byte value", r, 400, "LIMIT_EXCEEDED")

		// Exactly the limit is accepted.
		r = n.MustDo(t, "PUT", "/v1/actors/kv/bad/storage/max", big[:131072])
		if r.Status != 200 {
			t.Errorf("PUT of a 131072-byte value: %v, want 200", r)
		}

		r = n.MustDo(t, "POST", "/v1/actors/kv/bad/kv.put", `{"entries":[{"key":"k",`)
		wantError(t, "malformed JSON", r, 400, "INVALID_ARGUMENT")
		r = n.MustDo(t, "POST", "/v1/actors/ratelimit/bad/ratelimit.take", `{"amounts":{"requests":"many"}}`)
		wantError(t, "ill-typed JSON", r, 400, "INVALID_ARGUMENT")

		r = n.MustDo(t, "POST", "/v1/actors/nosuchns/k/kv.get", `{}`)
		wantError(t, "unknown namespace (op)", r, 404, "UNKNOWN_NAMESPACE")
		r = n.MustDo(t, "PUT", "/v1/actors/nosuchns/k/storage/x", "v")
		wantError(t, "unknown namespace (storage)", r, 404, "UNKNOWN_NAMESPACE")

		r = n.MustDo(t, "POST", "/v1/actors/kv/k/kv.frobnicate", `{}`)
		wantError(t, "unknown operation", r, 404, "UNKNOWN_OPERATION")
		// An op of another kind on a kv actor.
		r = n.MustDo(t, "POST", "/v1/actors/kv/k/ratelimit.take", `{"amounts":{"requests":1}}`)
		if r.Status/100 != 4 {
			t.Errorf("ratelimit.take on a kv actor: %v, want a 4xx", r)
		}
	})

	t.Run("holdctl oversized value", func(t *testing.T) {
		t.Parallel()
		// A value above the default 131072 bytes cannot be passed as one
		// argument (Linux caps one argument at 131071 bytes) and holdctl
		// has no stdin or file form, so the limit is lowered here.
		n := StartNode(t, NodeOptions{Config: "limits:\n  max_value_bytes: 1024\n"})
		r := n.Ctl(t, "kv", "put", "app1", "big", strings.Repeat("v", 1025))
		if r.Code != 1 || !strings.Contains(r.Stderr, "max_value_bytes") {
			t.Errorf("kv put of an oversized value: %v, want exit 1 naming max_value_bytes", r)
		}
		if r := n.Ctl(t, "kv", "get", "app1", "big"); r.Code != 4 {
			t.Errorf("kv get after the refused put: %v, want exit 4 (not found)", r)
		}
		if r := n.Ctl(t, "kv", "put", "app1", "ok", strings.Repeat("v", 1024)); r.Code != 0 {
			t.Errorf("kv put of a value at the limit: %v", r)
		}
	})

	t.Run("non-loopback without token", func(t *testing.T) {
		t.Parallel()
		r := RunHoldfast(t, refuseBound, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--http", "0.0.0.0:0", "--grpc", "127.0.0.1:0")
		wantRefusal(t, r, "auth.token", "0.0.0.0:0")
	})
}

type errorJSON struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details map[string]string `json:"details"`
	} `json:"error"`
}

func wantError(t *testing.T, what string, r HTTPResult, status int, code string) {
	t.Helper()
	var e errorJSON
	if err := json.Unmarshal(r.Body, &e); err != nil || r.Status != status || e.Error.Code != code {
		t.Errorf("%s: %v, want %d with JSON error code %s", what, r, status, code)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
