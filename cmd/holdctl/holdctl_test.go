package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	now = func() time.Time { return fixedNow }
	os.Exit(m.Run())
}

// wantJSON checks that out is exactly one JSON document equal to want
// (field order included: shapes are a contract).
func wantJSON(t *testing.T, out, want string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if err := dec.Decode(&raw); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document:\n%s", out)
	}
	var got, exp bytes.Buffer
	if err := json.Compact(&got, []byte(out)); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&exp, []byte(want)); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if got.String() != exp.String() {
		t.Fatalf("JSON mismatch\n got: %s\nwant: %s", got.String(), exp.String())
	}
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestStatusJSONWithFlagsAfterCommand(t *testing.T) {
	_, addr := startFake(t)
	r := holdctl(t, nil, "status", "-o", "json", "--addr", addr)
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"node_id":"node-1","version":"v0.1.0","state":"serving",
		"started":"2030-01-02T02:04:05Z","data_dir":"/var/lib/holdfast","http_addr":"127.0.0.1:8080",
		"grpc_addr":"127.0.0.1:7070","partitions":16,"actors_in_memory":3,"durable_seq":42,"commits":7,
		"alarms_pending":1,"namespaces":[{"name":"kv","kind":"kv","durability":"sync","actors_in_memory":2}],
		"clustered":false,"members":[]}`)

	r = holdctl(t, nil, "--addr", addr, "status")
	wantCode(t, r, 0)
	for _, s := range []string{"node-1", "serving", "started", "2030-01-02T02:04:05Z (1h ago)", "NAMESPACE"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("status text lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestAddressFromEnvAndFlag(t *testing.T) {
	_, addr := startFake(t)
	if g := newGlobals(func(string) string { return "" }); g.addr != "127.0.0.1:7070" || g.timeout != 10*time.Second {
		t.Fatalf("defaults: addr %q timeout %v", g.addr, g.timeout)
	}
	wantCode(t, holdctl(t, map[string]string{"HOLDCTL_ADDR": addr}, "status"), 0)
	// --addr beats the environment, wherever it appears.
	bad := map[string]string{"HOLDCTL_ADDR": closedAddr(t)}
	wantCode(t, holdctl(t, bad, "--addr", addr, "status"), 0)
	wantCode(t, holdctl(t, bad, "status", "--addr", addr), 0)
	// A later position overrides an earlier one.
	wantCode(t, holdctl(t, nil, "--addr", closedAddr(t), "kv", "--addr", addr, "list", "a"), 0)
}

func TestUnreachableNodeNamesAddress(t *testing.T) {
	addr := closedAddr(t)
	start := time.Now()
	r := holdctl(t, nil, "--addr", addr, "--timeout", "30s", "status")
	wantCode(t, r, 1)
	if want := "holdctl: cannot reach holdfast at " + addr + ": "; !strings.HasPrefix(r.stderr, want) {
		t.Fatalf("stderr %q, want prefix %q", r.stderr, want)
	}
	if !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("stderr lacks the cause: %q", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout not empty: %q", r.stdout)
	}
	// Fails fast instead of waiting for the 30s deadline.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	// Also through the environment, and for the default port on a bare host.
	r = holdctl(t, map[string]string{"HOLDCTL_ADDR": addr}, "kv", "get", "a", "b")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "cannot reach holdfast at "+addr) {
		t.Errorf("stderr %q", r.stderr)
	}
	if got := normalizeAddr("localhost"); got != "localhost:7070" {
		t.Errorf("normalizeAddr(localhost) = %q", got)
	}
	if got := normalizeAddr("[::1]"); got != "[::1]:7070" {
		t.Errorf("normalizeAddr([::1]) = %q", got)
	}
	if got := normalizeAddr("unix:///run/holdfast.sock"); got != "unix:///run/holdfast.sock" {
		t.Errorf("normalizeAddr(unix) = %q", got)
	}
}

func TestKVRoundTrip(t *testing.T) {
	f, addr := startFake(t)
	a := []string{"--addr", addr}
	run := func(args ...string) result { return holdctl(t, nil, append(append([]string{}, a...), args...)...) }

	r := run("-o", "json", "kv", "put", "user-1", "name", "Ada Lovelace")
	wantCode(t, r, 0)
	var put map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &put); err != nil {
		t.Fatal(err)
	}
	putID, _ := put["request_id"].(string)
	if !hexID.MatchString(putID) {
		t.Fatalf("request_id %v", put["request_id"])
	}
	delete(put, "request_id")
	b, _ := json.Marshal(put)
	wantJSON(t, string(b), `{"actor":"user-1","bytes":12,"key":"name","namespace":"kv"}`)
	if _, ids, _ := f.snapshot(); len(ids) != 1 || ids[0] != putID {
		t.Fatalf("request ids at the node: %q", ids)
	}

	wantCode(t, run("kv", "put", "user-1", "city", "London"), 0)
	// A value starting with '-' after "--".
	wantCode(t, run("kv", "put", "user-1", "--", "delta", "-5"), 0)

	r = run("kv", "get", "user-1", "name")
	wantCode(t, r, 0)
	if r.stdout != "Ada Lovelace\n" {
		t.Fatalf("kv get text %q", r.stdout)
	}
	r = run("kv", "get", "user-1", "delta", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"key":"delta","value":"-5"}`)

	r = run("kv", "list", "user-1", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"entries":[{"key":"city","value":"London"},{"key":"delta","value":"-5"},
		{"key":"name","value":"Ada Lovelace"}],"truncated":false}`)

	r = run("kv", "list", "--limit", "1", "--reverse", "user-1", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"entries":[{"key":"name","value":"Ada Lovelace"}],"truncated":true}`)

	r = run("kv", "list", "user-1", "--prefix", "c")
	wantCode(t, r, 0)
	if !regexp.MustCompile(`(?m)^KEY\s+VALUE\ncity\s+London\n$`).MatchString(r.stdout) {
		t.Fatalf("kv list table:\n%s", r.stdout)
	}

	r = run("kv", "list", "nobody", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"entries":[],"truncated":false}`)

	r = run("kv", "delete", "user-1", "name", "-o", "json", "--request-id", "del-1")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"namespace":"kv","actor":"user-1","key":"name","deleted":1,"request_id":"del-1"}`)

	r = run("kv", "get", "user-1", "name")
	wantCode(t, r, 4)
	if r.stdout != "" || !strings.HasPrefix(r.stderr, "holdctl: not found") {
		t.Fatalf("missing key: stdout %q stderr %q", r.stdout, r.stderr)
	}
	r = run("-o", "json", "kv", "get", "user-1", "name")
	wantCode(t, r, 4)
	if r.stdout != "" {
		t.Fatalf("stdout %q", r.stdout)
	}
}

func TestKVNamespaceAndBinaryValue(t *testing.T) {
	f, addr := startFake(t)
	f.kv["cache/c1"] = map[string][]byte{"bin": {0x00, 0xff, 0x10}}
	r := holdctl(t, nil, "--addr", addr, "kv", "get", "c1", "bin", "--namespace", "cache", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"key":"bin","value":null,"value_base64":"AP8Q"}`)
	r = holdctl(t, nil, "--addr", addr, "kv", "get", "--namespace", "cache", "c1", "bin")
	wantCode(t, r, 0)
	if r.stdout != "\x00\xff\x10\n" {
		t.Fatalf("raw value %q", r.stdout)
	}
	// The default namespace is kv: the same actor there is empty.
	wantCode(t, holdctl(t, nil, "--addr", addr, "kv", "get", "c1", "bin"), 4)
}

func TestErrorInfoDetailIsShown(t *testing.T) {
	_, addr := startFake(t)
	r := holdctl(t, nil, "--addr", addr, "kv", "put", "a", "k", strings.Repeat("x", maxFakeValue+1))
	wantCode(t, r, 1)
	for _, s := range []string{`holdctl: value of key "k" is too large`, "InvalidArgument", "reason LIMIT_EXCEEDED", "limit=max_value_bytes", "max=16"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q: %s", s, r.stderr)
		}
	}
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("want one line: %q", r.stderr)
	}
}

func TestTokenIsSentAndNeverShown(t *testing.T) {
	f, addr := startFake(t)
	const tok = "s3cr3t-t0ken-value"
	var outputs []result
	check := func(r result) { outputs = append(outputs, r) }

	r := holdctl(t, nil, "--addr", addr, "--token", tok, "kv", "put", "a", "k", "v")
	wantCode(t, r, 0)
	check(r)
	r = holdctl(t, map[string]string{"HOLDCTL_TOKEN": tok}, "--addr", addr, "status", "-o", "json")
	wantCode(t, r, 0)
	check(r)
	// A node that echoes the credentials back in its error.
	r = holdctl(t, nil, "--addr", addr, "kv", "get", "echo-auth", "k", "--token", tok)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "[redacted]") || !strings.Contains(r.stderr, "--token") {
		t.Errorf("stderr %q", r.stderr)
	}
	check(r)
	// Usage errors, bad flags and connection errors.
	check(holdctl(t, nil, "--token", tok, "kv", "put", "a"))
	check(holdctl(t, nil, "--token", tok, "ratelimit", "set", "k", "--bucket", "x"))
	check(holdctl(t, nil, "--token", tok, "--addr", closedAddr(t), "status"))
	check(holdctl(t, nil, "--token", tok, "help"))
	check(holdctl(t, nil, "--token", tok, "status", "-h"))

	for _, o := range outputs {
		if strings.Contains(o.stdout, tok) || strings.Contains(o.stderr, tok) {
			t.Fatalf("token leaked:\nstdout %q\nstderr %q", o.stdout, o.stderr)
		}
	}
	auth, _, _ := f.snapshot()
	if len(auth) != 3 {
		t.Fatalf("calls at the node: %q", auth)
	}
	for _, a := range auth {
		if a != "Bearer "+tok {
			t.Fatalf("authorization metadata %q", a)
		}
	}
	// No token: no authorization metadata at all.
	wantCode(t, holdctl(t, nil, "--addr", addr, "status"), 0)
	if auth, _, _ := f.snapshot(); auth[len(auth)-1] != "" {
		t.Fatalf("authorization sent without a token: %q", auth[len(auth)-1])
	}
}

func TestRatelimitTake(t *testing.T) {
	f, addr := startFake(t)
	r := holdctl(t, nil, "--addr", addr, "-o", "json", "ratelimit", "take", "user-1", "requests=3")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"allowed":true,"remaining":{"requests":2},"retry_after_ms":0}`)
	f.mu.Lock()
	take := f.lastTake
	f.mu.Unlock()
	if take.GetActor().GetNamespace() != "ratelimit" || take.GetActor().GetKey() != "user-1" ||
		take.GetAmounts()["requests"] != 3 || !hexID.MatchString(take.GetRequestId()) {
		t.Fatalf("take request %v", take)
	}

	r = holdctl(t, nil, "--addr", addr, "ratelimit", "take", "user-1", "requests=9", "-o", "json", "--request-id", "r-9")
	wantCode(t, r, 3)
	wantJSON(t, r.stdout, `{"allowed":false,"remaining":{"requests":5},"retry_after_ms":2500,"refused_by":"requests"}`)
	if r.stderr != "" {
		t.Errorf("refusal is not an error: stderr %q", r.stderr)
	}
	f.mu.Lock()
	if f.lastTake.GetRequestId() != "r-9" {
		t.Errorf("request id %q", f.lastTake.GetRequestId())
	}
	f.mu.Unlock()

	r = holdctl(t, nil, "--addr", addr, "ratelimit", "take", "user-1", "requests=9")
	wantCode(t, r, 3)
	if r.stdout != "refused by requests: retry after 2.5s (remaining requests=5)\n" {
		t.Errorf("text %q", r.stdout)
	}
	r = holdctl(t, nil, "--addr", addr, "ratelimit", "take", "user-1", "requests=1")
	wantCode(t, r, 0)
	if r.stdout != "allowed (remaining requests=4)\n" {
		t.Errorf("text %q", r.stdout)
	}

	// Usage errors never reach the node.
	_, _, before := f.snapshot()
	for _, args := range [][]string{
		{"ratelimit", "take", "user-1"},
		{"ratelimit", "take", "user-1", "requests=x"},
		{"ratelimit", "take", "user-1", "requests=-1"},
		{"ratelimit", "take", "user-1", "requests"},
		{"ratelimit", "take", "user-1", "a=1", "a=2"},
	} {
		r := holdctl(t, nil, append([]string{"--addr", addr}, args...)...)
		wantCode(t, r, 2)
		if !strings.Contains(r.stderr, "Usage: holdctl ratelimit take") {
			t.Errorf("%v: no usage in %q", args, r.stderr)
		}
	}
	if _, _, after := f.snapshot(); after != before {
		t.Errorf("usage errors made %d calls", after-before)
	}
}

func TestRatelimitSetAndGet(t *testing.T) {
	f, addr := startFake(t)
	r := holdctl(t, nil, "--addr", addr, "ratelimit", "set", "user-1",
		"--bucket", "requests=10/0.5", "--bucket", "tokens=1000/50", "--daily-budget-usd", "12.345678901", "--replace", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"buckets":[
		{"name":"requests","capacity":10,"refill_per_second":0.5,"level":7.25,"source":"key"},
		{"name":"tokens","capacity":1000,"refill_per_second":50,"level":1000,"source":"namespace"}],
		"day":"2030-01-02","spend_today_nanos":1500000000,"daily_budget_nanos":12345678901}`)
	f.mu.Lock()
	set := f.lastSet
	f.mu.Unlock()
	if set.GetDailyBudgetNanos() != 12345678901 || !set.GetReplace() || set.GetActor().GetNamespace() != "ratelimit" ||
		len(set.GetBuckets()) != 2 || set.GetBuckets()["requests"].GetCapacity() != 10 ||
		set.GetBuckets()["requests"].GetRefillPerSecond() != 0.5 || set.GetBuckets()["tokens"].GetRefillPerSecond() != 50 ||
		!hexID.MatchString(set.GetRequestId()) {
		t.Fatalf("set request %v", set)
	}

	wantCode(t, holdctl(t, nil, "--addr", addr, "ratelimit", "set", "u", "--clear-budget"), 0)
	f.mu.Lock()
	if f.lastSet.GetDailyBudgetNanos() != -1 || f.lastSet.GetReplace() || len(f.lastSet.GetBuckets()) != 0 {
		t.Errorf("clear-budget request %v", f.lastSet)
	}
	f.mu.Unlock()

	r = holdctl(t, nil, "--addr", addr, "ratelimit", "get", "user-1")
	wantCode(t, r, 0)
	for _, re := range []string{`(?m)^BUCKET\s+CAPACITY\s+REFILL/S\s+LEVEL\s+SOURCE$`,
		`(?m)^requests\s+10\s+0\.5\s+7\.25\s+key$`, `(?m)^tokens\s+1000\s+50\s+1000\s+namespace$`,
		`(?m)^spend 2030-01-02: \$1\.50 of \$12\.345678901 daily budget$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("ratelimit get lacks %s:\n%s", re, r.stdout)
		}
	}
}

func TestRatelimitSetUsageErrors(t *testing.T) {
	f, addr := startFake(t)
	for _, args := range [][]string{
		{"--bucket", "requests=abc"},
		{"--bucket", "requests=10"},
		{"--bucket", "=10/1"},
		{"--bucket", "requests=10/-1"},
		{"--bucket", "requests=10/1", "--bucket", "requests=5/1"},
		{"--daily-budget-usd", "1.0000000001"},
		{"--daily-budget-usd", "0"},
		{"--daily-budget-usd", "-3"},
		{"--daily-budget-usd", "1e3"},
		{"--daily-budget-usd", "5", "--clear-budget"},
		{},
	} {
		r := holdctl(t, nil, append([]string{"--addr", addr, "ratelimit", "set", "user-1"}, args...)...)
		wantCode(t, r, 2)
		if !strings.HasPrefix(r.stderr, "holdctl: ") || !strings.Contains(r.stderr, "Usage: holdctl ratelimit set KEY") {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
	}
	if _, _, calls := f.snapshot(); calls != 0 {
		t.Errorf("usage errors made %d calls", calls)
	}
}

func TestParseUSDNanos(t *testing.T) {
	for in, want := range map[string]int64{
		"12.345678901": 12345678901, "0.000000001": 1, "5": 5_000_000_000, "$2.50": 2_500_000_000,
		".5": 500_000_000, "9223372036.854775807": 9223372036854775807, "0": 0,
	} {
		got, err := parseUSDNanos(in)
		if err != nil || got != want {
			t.Errorf("parseUSDNanos(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"12.3456789012", "0.0000000001", "1.", "", ".", "-1", "+1", "1e9", "1,5", "abc",
		"9223372036.854775808", "99999999999"} {
		if got, err := parseUSDNanos(in); err == nil {
			t.Errorf("parseUSDNanos(%q) = %d, want an error", in, got)
		}
	}
	if _, err := parseUSDNanos("1.0000000001"); err == nil || !strings.Contains(err.Error(), "9 decimal places") {
		t.Errorf("precision error %v", err)
	}
	for n, want := range map[int64]string{12345678901: "$12.345678901", 1_500_000_000: "$1.50", 0: "$0.00", -1: "-$0.000000001"} {
		if got := formatUSD(n); got != want {
			t.Errorf("formatUSD(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestAlarm(t *testing.T) {
	f, addr := startFake(t)
	r := holdctl(t, nil, "--addr", addr, "alarm", "set", "sched", "job-1", "--in", "4.5s")
	wantCode(t, r, 0)
	f.mu.Lock()
	set := f.lastAlarm
	f.mu.Unlock()
	if set.GetInMs() != 4500 || set.GetAt() != nil || set.GetActor().GetNamespace() != "sched" || !hexID.MatchString(set.GetRequestId()) {
		t.Fatalf("alarm set request %v", set)
	}
	for _, re := range []string{`(?m)^actor\s+sched/job-1$`, `(?m)^scheduled\s+2030-01-02T03:04:09\.5Z \(in 4\.5s\)$`,
		`(?m)^last fired\s+2030-01-02T03:02:35Z \(1m30s ago\)$`, `(?m)^fired count\s+3$`, `(?m)^retries\s+1$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("alarm text lacks %s:\n%s", re, r.stdout)
		}
	}

	r = holdctl(t, nil, "--addr", addr, "-o", "json", "alarm", "set", "sched", "job-1", "--at", "2031-05-06T07:08:09Z")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"namespace":"sched","key":"job-1","scheduled":true,"at":"2031-05-06T07:08:09Z",
		"last_fired":"2030-01-02T03:02:35Z","fired_count":3,"retries":1}`)
	f.mu.Lock()
	if got := f.lastAlarm.GetAt().AsTime(); !got.Equal(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)) || f.lastAlarm.GetInMs() != 0 {
		t.Errorf("--at sent %v / %d", got, f.lastAlarm.GetInMs())
	}
	f.mu.Unlock()

	r = holdctl(t, nil, "--addr", addr, "alarm", "get", "sched", "job-2", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"namespace":"sched","key":"job-2","scheduled":false,"at":null,"last_fired":null,"fired_count":0,"retries":0}`)
	r = holdctl(t, nil, "--addr", addr, "alarm", "get", "sched", "job-2")
	wantCode(t, r, 0)
	if !regexp.MustCompile(`(?m)^scheduled\s+no$`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^last fired\s+never$`).MatchString(r.stdout) {
		t.Errorf("unscheduled alarm text:\n%s", r.stdout)
	}

	// The fake does not implement AlarmDelete: an Unimplemented status is a
	// server error (1), and the request id is offered only for uncertain outcomes.
	r = holdctl(t, nil, "--addr", addr, "alarm", "delete", "sched", "job-1")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "Unimplemented") || strings.Contains(r.stderr, "--request-id") {
		t.Errorf("stderr %q", r.stderr)
	}

	_, _, before := f.snapshot()
	for _, args := range [][]string{
		{"sched", "job-1"},
		{"sched", "job-1", "--in", "5s", "--at", "2031-05-06T07:08:09Z"},
		{"sched", "job-1", "--in", "soon"},
		{"sched", "job-1", "--in", "-5s"},
		{"sched", "job-1", "--at", "tomorrow"},
		{"sched", "--in", "5s"},
	} {
		wantCode(t, holdctl(t, nil, append([]string{"--addr", addr, "alarm", "set"}, args...)...), 2)
	}
	if _, _, after := f.snapshot(); after != before {
		t.Errorf("usage errors made %d calls", after-before)
	}
}

func TestActors(t *testing.T) {
	f, addr := startFake(t)
	r := holdctl(t, nil, "--addr", addr, "actors", "get", "kv", "a1")
	wantCode(t, r, 0)
	for _, re := range []string{`(?m)^actor\s+kv/a1 \(shard 0\)$`, `(?m)^partition\s+5$`, `(?m)^in memory\s+yes$`,
		`(?m)^greeting\s+hello world$`, `(?m)^blob\s+0x00ff10$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("actors get lacks %s:\n%s", re, r.stdout)
		}
	}
	r = holdctl(t, nil, "--addr", addr, "actors", "get", "kv", "a1", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"actor":{"namespace":"kv","key":"a1","shard":0,"partition":5,"keys":2,"in_memory":true,"alarm":null},
		"alarm":{"namespace":"kv","key":"a1","scheduled":false,"at":null,"last_fired":null,"fired_count":0,"retries":0},
		"entries":[{"key":"greeting","value":"hello world"},{"key":"blob","value":null,"value_base64":"AP8Q"}],"truncated":false}`)

	r = holdctl(t, nil, "--addr", addr, "actors", "get", "kv", "nobody")
	wantCode(t, r, 4)
	if !strings.Contains(r.stderr, "not found") {
		t.Errorf("stderr %q", r.stderr)
	}

	r = holdctl(t, nil, "--addr", addr, "actors", "list", "kv", "--limit", "1", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"actors":[{"namespace":"kv","key":"a1","shard":0,"partition":5,"keys":2,"in_memory":true,
		"alarm":"2030-01-02T03:04:09.5Z"}],"truncated":true}`)
	r = holdctl(t, nil, "--addr", addr, "actors", "list", "kv")
	wantCode(t, r, 0)
	if !regexp.MustCompile(`(?m)^a1\s+0\s+5\s+2\s+yes\s+2030-01-02T03:04:09\.5Z \(in 4\.5s\)$`).MatchString(r.stdout) {
		t.Errorf("actors list:\n%s", r.stdout)
	}

	r = holdctl(t, nil, "--addr", addr, "actors", "delete", "kv", "a1", "-o", "json", "--request-id", "d1")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"namespace":"kv","key":"a1","deleted_keys":2,"request_id":"d1"}`)
	if _, ids, _ := f.snapshot(); ids[len(ids)-1] != "d1" {
		t.Errorf("request ids %q", ids)
	}
}

func TestEveryMutationSendsARequestID(t *testing.T) {
	f, addr := startFake(t)
	for _, args := range [][]string{
		{"kv", "put", "a", "k", "v"},
		{"kv", "delete", "a", "k"},
		{"ratelimit", "set", "k", "--bucket", "r=1/1"},
		{"ratelimit", "take", "k", "r=1"},
		{"alarm", "set", "n", "k", "--in", "1s"},
		{"actors", "delete", "n", "k"},
	} {
		wantCode(t, holdctl(t, nil, append([]string{"--addr", addr}, args...)...), 0)
	}
	_, ids, _ := f.snapshot()
	seen := map[string]bool{}
	for _, id := range ids {
		if !hexID.MatchString(id) || seen[id] {
			t.Fatalf("request ids %q", ids)
		}
		seen[id] = true
	}
	if len(ids) != 6 {
		t.Fatalf("request ids %q", ids)
	}
}

func TestUsageAndHelp(t *testing.T) {
	r := holdctl(t, nil, "help")
	wantCode(t, r, 0)
	for _, c := range commands() {
		if !strings.Contains(r.stdout, "  "+c.name) {
			t.Errorf("help lacks %q", c.name)
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"kv", "put", "-h"}, {"help", "kv", "put"}, {"kv", "help"}, {"alarm", "-h"}} {
		r := holdctl(t, nil, args...)
		wantCode(t, r, 0)
		if !strings.HasPrefix(r.stdout, "Usage: holdctl") || r.stderr != "" {
			t.Errorf("%v: stdout %q stderr %q", args, r.stdout, r.stderr)
		}
	}
	if r := holdctl(t, nil, "help", "kv", "list"); !strings.Contains(r.stdout, "--reverse") {
		t.Errorf("kv list usage lacks its flags:\n%s", r.stdout)
	}
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"kv"}, {"kv", "frob"}, {"kv", "get", "a"}, {"kv", "get", "a", "b", "c"},
		{"status", "-o", "yaml"}, {"status", "--timeout", "soon"}, {"status", "--nope"}, {"status", "extra"},
		{"kv", "list", "a", "--limit", "-1"}, {"status", "--cert", "c.pem", "--key", "k.pem"},
		{"help", "frob"},
	} {
		r := holdctl(t, nil, args...)
		wantCode(t, r, 2)
		if !strings.HasPrefix(r.stderr, "holdctl: ") || !strings.Contains(r.stderr, "Usage: holdctl") || r.stdout != "" {
			t.Errorf("%v: stdout %q stderr %q", args, r.stdout, r.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	r := holdctl(t, nil, "version", "-o", "json")
	wantCode(t, r, 0)
	var v struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version == "" || v.GoVersion == "" {
		t.Fatalf("version %q: %v", r.stdout, err)
	}
	if r := holdctl(t, nil, "version"); !strings.HasPrefix(r.stdout, "holdctl ") {
		t.Errorf("version text %q", r.stdout)
	}
}

func TestDisplayHelpers(t *testing.T) {
	for in, want := range map[string]string{"hello": "hello", "tab\there": "0x7461620968657265", "": "", "héllo": "héllo"} {
		if got := displayValue([]byte(in)); got != want {
			t.Errorf("displayValue(%q) = %q, want %q", in, got, want)
		}
	}
	for d, want := range map[time.Duration]string{4500 * time.Millisecond: "in 4.5s", -90 * time.Second: "1m30s ago",
		2*time.Hour + 3*time.Minute + 10*time.Second: "in 2h3m", time.Hour: "in 1h", 0: "now"} {
		if got := relative(d); got != want {
			t.Errorf("relative(%v) = %q, want %q", d, got, want)
		}
	}
}
