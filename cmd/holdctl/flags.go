package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

const (
	defaultAddr    = "127.0.0.1:7070"
	defaultPort    = "7070"
	defaultTimeout = 10 * time.Second
)

const globalFlagsHelp = `Global flags (before or after the command):
  --addr ADDR              node gRPC address (default 127.0.0.1:7070, env HOLDCTL_ADDR)
  -o, --output FORMAT      text (default) or json: one JSON document on stdout
  --token TOKEN            bearer token sent as "authorization" metadata (env HOLDCTL_TOKEN)
  --timeout DURATION       deadline of each call (default 10s, 0 for none)
  --tls-ca FILE            use TLS, trusting the CA certificates in FILE
  --cert FILE, --key FILE  client certificate and key for TLS (need --tls-ca)
  --tls-server-name NAME   server name to verify, when it differs from --addr
`

// globals holds the flags every command accepts.
type globals struct {
	addr          string
	output        string
	token         string
	timeout       time.Duration
	tlsCA         string
	cert          string
	key           string
	tlsServerName string
}

func newGlobals(getenv func(string) string) *globals {
	g := &globals{addr: defaultAddr, output: "text", timeout: defaultTimeout}
	if a := getenv("HOLDCTL_ADDR"); a != "" {
		g.addr = a
	}
	g.token = getenv("HOLDCTL_TOKEN")
	return g
}

// register binds the global flags to fs. The current values are the
// defaults, so flags given at an earlier position survive; a later position
// overrides an earlier one.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "")
	fs.StringVar(&g.output, "o", g.output, "")
	fs.StringVar(&g.output, "output", g.output, "")
	fs.Var(secretValue{&g.token}, "token", "")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "")
	fs.StringVar(&g.tlsCA, "tls-ca", g.tlsCA, "")
	fs.StringVar(&g.cert, "cert", g.cert, "")
	fs.StringVar(&g.key, "key", g.key, "")
	fs.StringVar(&g.tlsServerName, "tls-server-name", g.tlsServerName, "")
}

func (g *globals) validate() error {
	switch g.output {
	case "text", "table", "":
		g.output = "text"
	case "json":
	default:
		return usagef("unknown output format %q (want text or json)", g.output)
	}
	if g.timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	if g.addr == "" {
		return usagef("--addr must not be empty")
	}
	if (g.cert == "") != (g.key == "") {
		return usagef("--cert and --key go together")
	}
	if g.cert != "" && g.tlsCA == "" {
		return usagef("--cert and --key need --tls-ca")
	}
	if g.tlsServerName != "" && g.tlsCA == "" {
		return usagef("--tls-server-name needs --tls-ca")
	}
	return nil
}

// secretValue is a string flag whose value is never shown (the flag package
// would otherwise print it as a default in generated help).
type secretValue struct{ p *string }

func (s secretValue) String() string { return "" }
func (s secretValue) Set(v string) error {
	*s.p = v
	return nil
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // holdctl prints its own usage and errors
	fs.Usage = func() {}
	return fs
}

// parseInterspersed parses flags anywhere among the positional arguments
// ("kv list A --prefix p" as well as "kv list --prefix p A"). Everything
// after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" && !isFlagValue(fs, args[:consumed]) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isFlagValue reports whether the last of the consumed arguments was the
// value of a flag ("--prefix --") rather than the "--" terminator.
func isFlagValue(fs *flag.FlagSet, consumed []string) bool {
	if len(consumed) < 2 {
		return false
	}
	prev := consumed[len(consumed)-2]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") || prev == "--" {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
		return false
	}
	return true
}

// usageError is a bad flag or argument: exit status 2 and the usage text.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// exitError ends the command with a given status; msg, when set, goes to
// stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ---- flag values ----

// bucketFlag collects repeated --bucket NAME=CAPACITY/REFILL_PER_SECOND.
type bucketFlag struct {
	m     map[string]*holdfastv1.BucketLimit
	order []string
}

func (b *bucketFlag) String() string { return strings.Join(b.order, ",") }

func (b *bucketFlag) Set(s string) error {
	name, lim, err := parseBucket(s)
	if err != nil {
		return err
	}
	if b.m == nil {
		b.m = map[string]*holdfastv1.BucketLimit{}
	}
	if _, dup := b.m[name]; dup {
		return fmt.Errorf("bucket %q given twice", name)
	}
	b.m[name] = lim
	b.order = append(b.order, name)
	return nil
}

// parseBucket parses NAME=CAPACITY/REFILL_PER_SECOND, e.g. requests=10/0.5.
func parseBucket(s string) (string, *holdfastv1.BucketLimit, error) {
	bad := errors.New("want NAME=CAPACITY/REFILL_PER_SECOND with non-negative numbers, e.g. requests=10/0.5")
	name, spec, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", nil, bad
	}
	capText, refillText, ok := strings.Cut(spec, "/")
	if !ok {
		return "", nil, bad
	}
	capacity, err1 := parseNonNegative(capText)
	refill, err2 := parseNonNegative(refillText)
	if err1 != nil || err2 != nil {
		return "", nil, bad
	}
	return name, &holdfastv1.BucketLimit{Capacity: capacity, RefillPerSecond: refill}, nil
}

func parseNonNegative(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, errors.New("not a finite non-negative number")
	}
	return f, nil
}

// parseAmounts parses NAME=N arguments of ratelimit take.
func parseAmounts(args []string) (map[string]int64, error) {
	m := make(map[string]int64, len(args))
	for _, a := range args {
		name, n, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, usagef("want NAME=N, got %q", a)
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 0 {
			return nil, usagef("amount of %q must be a non-negative integer, got %q", name, n)
		}
		if _, dup := m[name]; dup {
			return nil, usagef("bucket %q given twice", name)
		}
		m[name] = v
	}
	return m, nil
}

// usdFlag is a dollar amount given as decimal text, kept exactly as
// nano-dollars.
type usdFlag struct {
	set   bool
	nanos int64
}

func (u *usdFlag) String() string {
	if !u.set {
		return ""
	}
	return formatUSD(u.nanos)
}

func (u *usdFlag) Set(s string) error {
	n, err := parseUSDNanos(s)
	if err != nil {
		return err
	}
	u.set, u.nanos = true, n
	return nil
}

// parseUSDNanos converts a non-negative decimal dollar amount ("12.345678901",
// "$5", "0.5") to nano-dollars exactly, with no floating point. More than nine
// decimal places cannot be represented and is an error, as is overflow.
func parseUSDNanos(s string) (int64, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "$")
	whole, frac, hasPoint := strings.Cut(t, ".")
	if whole == "" && (!hasPoint || frac == "") {
		return 0, fmt.Errorf("invalid dollar amount %q", s)
	}
	if hasPoint && frac == "" {
		return 0, fmt.Errorf("invalid dollar amount %q", s)
	}
	if !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("invalid dollar amount %q (want a non-negative decimal such as 12.50)", s)
	}
	if len(frac) > 9 {
		return 0, fmt.Errorf("dollar amount %q has more than 9 decimal places (nano-dollar precision)", s)
	}
	const maxWhole = math.MaxInt64 / 1_000_000_000
	var w int64
	if whole != "" {
		v, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || v > maxWhole {
			return 0, fmt.Errorf("dollar amount %q is too large", s)
		}
		w = v
	}
	var f int64
	if frac != "" {
		v, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid dollar amount %q", s)
		}
		f = v
	}
	n := w * 1_000_000_000
	if n > math.MaxInt64-f {
		return 0, fmt.Errorf("dollar amount %q is too large", s)
	}
	return n + f, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// actorRef builds and checks an actor reference from arguments.
func actorRef(namespace, key string, shard uint) (*holdfastv1.ActorRef, error) {
	if namespace == "" {
		return nil, usagef("NAMESPACE must not be empty")
	}
	if key == "" {
		return nil, usagef("the actor key must not be empty")
	}
	if shard > math.MaxUint32 {
		return nil, usagef("--shard %d is out of range", shard)
	}
	return &holdfastv1.ActorRef{Namespace: namespace, Key: key, Shard: uint32(shard)}, nil
}

const shardHelp = "  --shard N             shard of the actor (default 0; only split keys have others)\n"
const requestIDHelp = "  --request-id ID       idempotency key (default: 16 random bytes, hex)\n"
