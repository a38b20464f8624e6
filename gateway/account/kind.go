package account

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// Kind is the kind name used in configuration.
const Kind = "account"

// Default namespace names.
const (
	DefaultNamespace      = "account"
	DefaultIndexNamespace = "account_index"
)

// Default retentions of usage totals.
const (
	DefaultHourRetention = 48 * time.Hour
	DefaultDayRetention  = 90 * 24 * time.Hour
)

// MaxPerMinute is the largest per-minute limit: 1e12 tokens (requests),
// ratelimit.MaxMicros in whole tokens.
const MaxPerMinute = ratelimit.MaxMicros / ratelimit.Micro

// Limit names: the names of AccountLimits fields (AccountLimitsSetRequest
// .fields) and, for the per-minute ones, of the buckets and of
// AccountAdmitResponse.refused_by.
const (
	RequestsPerMinute     = "requests_per_minute"
	InputTokensPerMinute  = "input_tokens_per_minute"
	OutputTokensPerMinute = "output_tokens_per_minute"
	DailyBudgetNanos      = "daily_budget_nanos"
)

// Refusal reasons (AccountAdmitResponse.refused_by) besides the per-minute
// limit names.
const (
	RefusedKeyUnknown         = "key_unknown"
	RefusedKeyRevoked         = "key_revoked"
	RefusedProviderNotAllowed = "provider_not_allowed"
	RefusedModelNotAllowed    = "model_not_allowed"
	RefusedDailyBudget        = "daily_budget"
)

const (
	maxUserBytes       = 128
	maxNameBytes       = 256
	maxAllowEntries    = 64
	maxAllowEntryBytes = 256
	maxRequestIDBytes  = 200 // the runtime allows 256; the service appends suffixes
	perMinuteSeconds   = 60
	spendKeepDays      = 2 // today and yesterday
	tidyAfterMidnight  = time.Minute
	nanosPerDay        = 24 * int64(time.Hour)
)

// perMinuteNames are the bucket names, sorted; numPerMinute of them.
var perMinuteNames = []string{InputTokensPerMinute, OutputTokensPerMinute, RequestsPerMinute}

const numPerMinute = 3

// Storage keys; see the package documentation.
const (
	keyLimits          = "limits"
	keyKeyPrefix       = "key/"
	keyHashPrefix      = "keyhash/"
	keyBucketPrefix    = "bucket/"
	keyKeyBucketPrefix = "keybucket/" // + key ID + "/" + limit
	keySpendPrefix     = "spend/"
	keyKeySpendPrefix  = "keyspend/" // + key ID + "/" + day
	keyUsageDayPrefix  = "usage/d/"
	keyUsageHourPrefix = "usage/h/"
)

// Defaults are a namespace's limits, used where a user has none of its
// own, and its retention of usage totals. A zero limit means none; a zero
// retention means the default.
type Defaults struct {
	RequestsPerMinute     int64
	InputTokensPerMinute  int64
	OutputTokensPerMinute int64
	// DailyBudgetNanos is the daily spend budget in nano-dollars.
	DailyBudgetNanos int64
	// HourRetention: hour totals that ended longer ago are tidied
	// (default 48 h).
	HourRetention time.Duration
	// DayRetention: day totals older than this many days (rounded up) are
	// tidied (default 90 days). The current day is always kept.
	DayRetention time.Duration
	// Settings, when non-nil, keeps each user's own limits outside the
	// actor's state (see Settings). Nil: in the state (a single node).
	Settings Settings
}

// Validate reports a default out of range, naming its config key
// (limits.default.*).
func (d Defaults) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{{RequestsPerMinute, d.RequestsPerMinute}, {InputTokensPerMinute, d.InputTokensPerMinute}, {OutputTokensPerMinute, d.OutputTokensPerMinute}} {
		if f.v < 0 || f.v > MaxPerMinute {
			errs = append(errs, fmt.Errorf("limits.default.%s = %d, must be in [0, %d]", f.name, f.v, MaxPerMinute))
		}
	}
	if d.DailyBudgetNanos < 0 {
		errs = append(errs, fmt.Errorf("limits.default.daily_budget_usd must not be negative"))
	}
	if d.HourRetention < 0 || d.DayRetention < 0 {
		errs = append(errs, fmt.Errorf("usage retentions must not be negative"))
	}
	return errors.Join(errs...)
}

func (d Defaults) normalized() Defaults {
	if d.HourRetention <= 0 {
		d.HourRetention = DefaultHourRetention
	}
	if d.DayRetention <= 0 {
		d.DayRetention = DefaultDayRetention
	}
	return d
}

// New returns the handler constructor of an account namespace. Check d with
// Validate first: a default out of range makes every admit fail with an
// INVALID_LIMIT error.
func New(d Defaults) func(actor.ID) actor.Handler {
	d = d.normalized()
	return func(actor.ID) actor.Handler { return &handler{d: d} }
}

// handler is one account actor. It caches no state: every turn loads the
// keys it needs, so an evicted, reset or rolled-back actor can never act on
// stale state. Its one other field, memo, only spares decoding the user's
// limits again when the turn read the same source (see limitsMemo).
type handler struct {
	d    Defaults
	memo limitsMemo
}

// Receive implements actor.Handler.
func (h *handler) Receive(t *actor.Turn, msg proto.Message) (proto.Message, error) {
	// Every reply is computed from what the turn reads (the handler keeps
	// no state of its own; its limits memo is keyed by what the turn
	// read), so a turn that writes nothing, such as an
	// admit with no limits to take from, need not wait for the settles
	// still committing in the background.
	t.GateOnReads()
	switch m := msg.(type) {
	case *holdfastv1.AccountAdmitRequest:
		return h.admit(t, m)
	case *holdfastv1.AccountSettleRequest:
		t.DeferCommit() // bookkeeping after the call: no client waits on it
		return h.settle(t, m)
	case *holdfastv1.AccountSettleBatchRequest:
		t.DeferCommit()
		return h.settleBatch(t, m)
	case *holdfastv1.AccountUsageRequest:
		return h.usage(t, m)
	case *holdfastv1.AccountKeyPutRequest:
		return h.putKey(t, m)
	case *holdfastv1.AccountKeyRevokeRequest:
		return h.revokeKey(t, m)
	case *holdfastv1.AccountKeyListRequest:
		return h.listKeys(t)
	case *holdfastv1.AccountLimitsSetRequest:
		return h.setLimits(t, m)
	case *holdfastv1.AccountLimitsGetRequest:
		return h.limitsResponse(t)
	}
	return nil, fmt.Errorf("account: %w %T", actor.ErrUnknownOperation, msg)
}

// ---- errors ----

// Sentinels for errors.Is. Every invalid-argument error of this package is
// an *Error wrapping one of the first group (and matching
// actor.ErrInvalidArgument); ErrKeyNotFound matches actor.ErrNotFound.
var (
	ErrInvalidUser     = errors.New("invalid user ID")
	ErrInvalidKeyID    = errors.New("invalid key ID")
	ErrInvalidKey      = errors.New("invalid key")
	ErrInvalidLimit    = errors.New("invalid limit")
	ErrInvalidDay      = errors.New("invalid day")
	ErrInvalidUsage    = errors.New("invalid usage")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrKeyExists       = errors.New("key ID already in use")
	ErrKeyNotFound     = fmt.Errorf("key %w", actor.ErrNotFound)
	ErrTooManyUsers    = errors.New("too many users to list at once")
)

// Error is an invalid request with its wire reason (api.GRPCError maps it
// to INVALID_ARGUMENT with an ErrorInfo of that reason and metadata).
type Error = actor.ReasonError

var reasons = map[error]string{
	ErrInvalidUser:     "INVALID_USER",
	ErrInvalidKeyID:    "INVALID_KEY_ID",
	ErrInvalidKey:      "INVALID_KEY",
	ErrInvalidLimit:    "INVALID_LIMIT",
	ErrInvalidDay:      "INVALID_DAY",
	ErrInvalidUsage:    "INVALID_USAGE",
	ErrInvalidArgument: "INVALID_ARGUMENT",
	ErrKeyExists:       "KEY_EXISTS",
	ErrTooManyUsers:    "TOO_MANY_USERS",
}

// invalid builds an *Error of sentinel; meta is key, value pairs.
func invalid(sentinel error, msg string, meta ...string) *Error {
	m := make(map[string]string, len(meta)/2)
	for i := 0; i+1 < len(meta); i += 2 {
		m[meta[i]] = meta[i+1]
	}
	return actor.NewReasonError(reasons[sentinel], m, fmt.Errorf("account: %w: %s", sentinel, msg))
}

// storageErr reports a stored value that does not decode.
func storageErr(key string, err error) error {
	return fmt.Errorf("%w: account: stored %q: %v", actor.ErrStorage, key, err)
}

// ValidateUser checks a user ID: 1–128 bytes of UTF-8, as vkey allows.
func ValidateUser(user string) error {
	switch {
	case user == "":
		return invalid(ErrInvalidUser, "empty user ID")
	case len(user) > maxUserBytes:
		return invalid(ErrInvalidUser, fmt.Sprintf("user ID of %d bytes, at most %d", len(user), maxUserBytes))
	case !utf8.ValidString(user):
		return invalid(ErrInvalidUser, "user ID is not valid UTF-8")
	}
	return nil
}

// ---- limits ----

func perMinuteLimit(n int64) (ratelimit.Limit, error) {
	return ratelimit.LimitFromFloat(float64(n), float64(n)/perMinuteSeconds)
}

// limitValue returns the field of l named name.
func limitValue(l *holdfastv1.AccountLimits, name string) int64 {
	switch name {
	case RequestsPerMinute:
		return l.GetRequestsPerMinute()
	case InputTokensPerMinute:
		return l.GetInputTokensPerMinute()
	case OutputTokensPerMinute:
		return l.GetOutputTokensPerMinute()
	case DailyBudgetNanos:
		return l.GetDailyBudgetNanos()
	}
	return 0
}

func setLimitValue(l *holdfastv1.AccountLimits, name string, v int64) {
	switch name {
	case RequestsPerMinute:
		l.RequestsPerMinute = v
	case InputTokensPerMinute:
		l.InputTokensPerMinute = v
	case OutputTokensPerMinute:
		l.OutputTokensPerMinute = v
	case DailyBudgetNanos:
		l.DailyBudgetNanos = v
	}
}

// validateLimits checks every field of l (nil is no limits).
func validateLimits(l *holdfastv1.AccountLimits, what string) error {
	for _, name := range perMinuteNames {
		if v := limitValue(l, name); v < 0 || v > MaxPerMinute {
			return invalid(ErrInvalidLimit, fmt.Sprintf("%s %s = %d, must be in [0, %d]", what, name, v, MaxPerMinute), "field", name)
		}
	}
	if v := l.GetDailyBudgetNanos(); v < 0 {
		return invalid(ErrInvalidLimit, fmt.Sprintf("%s %s = %d, must not be negative", what, DailyBudgetNanos, v), "field", DailyBudgetNanos)
	}
	return nil
}

func (h *handler) defaults() *holdfastv1.AccountLimits {
	return &holdfastv1.AccountLimits{
		RequestsPerMinute: h.d.RequestsPerMinute, InputTokensPerMinute: h.d.InputTokensPerMinute,
		OutputTokensPerMinute: h.d.OutputTokensPerMinute, DailyBudgetNanos: h.d.DailyBudgetNanos,
	}
}

// limitNames are the names of every AccountLimits field.
var limitNames = append(slices.Clone(perMinuteNames), DailyBudgetNanos)

// effective is own over the defaults, field by field.
func (h *handler) effective(own *holdfastv1.AccountLimits) *holdfastv1.AccountLimits {
	eff := h.defaults()
	for _, name := range limitNames {
		if v := limitValue(own, name); v != 0 {
			setLimitValue(eff, name, v)
		}
	}
	return eff
}

// hasPerMinute reports whether l sets any per-minute limit: without one,
// loadSet reads nothing and its set takes nothing.
func hasPerMinute(l *holdfastv1.AccountLimits) bool {
	return l.GetRequestsPerMinute() != 0 || l.GetInputTokensPerMinute() != 0 || l.GetOutputTokensPerMinute() != 0
}

// loadSet reads the buckets under prefix for the per-minute limits of l
// that are set (0: no bucket).
func loadSet(t *actor.Turn, prefix string, l *holdfastv1.AccountLimits) (*ratelimit.Set, error) {
	s := &ratelimit.Set{Limits: map[string]ratelimit.Limit{}, Buckets: map[string]ratelimit.Bucket{}}
	if err := fillSet(t, prefix, l, s); err != nil {
		return nil, err
	}
	return s, nil
}

// fillSet is loadSet into s, whose maps the caller made (and may keep on
// its stack).
func fillSet(t *actor.Turn, prefix string, l *holdfastv1.AccountLimits, s *ratelimit.Set) error {
	for _, name := range perMinuteNames {
		n := limitValue(l, name)
		if n == 0 {
			continue
		}
		lim, err := perMinuteLimit(n)
		if err != nil {
			return invalid(ErrInvalidLimit, fmt.Sprintf("%s %d: %v", name, n, err), "field", name)
		}
		s.Limits[name] = lim
		v, ok, err := t.Get(prefix + name)
		if err != nil {
			return err
		}
		if ok {
			var b ratelimit.Bucket
			if err := b.UnmarshalBinary(v); err != nil {
				return storageErr(prefix+name, err)
			}
			s.Buckets[name] = b
		}
	}
	return nil
}

// bucketBytes bounds a bucket's encoding (Bucket.MarshalBinary's).
const bucketBytes = 1 + 3*binary.MaxVarintLen64

// saveSet writes the buckets of s under prefix: their encodings share one
// allocation (each value is its own full slice of it, never written
// again, as Turn.Put requires).
func saveSet(t *actor.Turn, prefix string, s *ratelimit.Set) error {
	var buf []byte
	for _, name := range perMinuteNames {
		b, ok := s.Buckets[name]
		if !ok {
			continue
		}
		if buf == nil {
			buf = make([]byte, 0, numPerMinute*bucketBytes)
		}
		start := len(buf)
		var err error
		if buf, err = b.AppendBinary(buf); err != nil {
			return fmt.Errorf("%w: account: bucket %s: %v", actor.ErrInternal, name, err)
		}
		if err := t.Put(prefix+name, buf[start:len(buf):len(buf)]); err != nil {
			return err
		}
	}
	return nil
}

func keyBucketPrefixOf(keyID string) string { return keyKeyBucketPrefix + keyID + "/" }

func keySpendKey(keyID, day string) string { return keyKeySpendPrefix + keyID + "/" + day }

func (h *handler) limitsResponse(t *actor.Turn) (*holdfastv1.AccountLimitsResponse, error) {
	own, _, err := h.ownLimits(t)
	if err != nil {
		return nil, err
	}
	return &holdfastv1.AccountLimitsResponse{Own: own, Effective: h.effective(own)}, nil
}

// setLimits sets the named fields of the user's own limits. A per-minute
// bucket whose effective limit changes is carried over: refilled under the
// old limit up to now, then clamped to the new capacity
// (ratelimit.Set.SetLimit); a limit that appears starts full, a limit that
// goes away drops its bucket.
func (h *handler) setLimits(t *actor.Turn, m *holdfastv1.AccountLimitsSetRequest) (*holdfastv1.AccountLimitsResponse, error) {
	if len(m.GetFields()) == 0 {
		return nil, invalid(ErrInvalidArgument, "no fields named: nothing to set")
	}
	if err := validateLimits(m.GetLimits(), "limit"); err != nil {
		return nil, err
	}
	own, rev, err := h.ownLimits(t)
	if err != nil {
		return nil, err
	}
	own = proto.CloneOf(own) // modified below
	before := h.effective(own)
	for _, f := range m.GetFields() {
		switch f {
		case RequestsPerMinute, InputTokensPerMinute, OutputTokensPerMinute, DailyBudgetNanos:
			setLimitValue(own, f, limitValue(m.GetLimits(), f))
		default:
			return nil, invalid(ErrInvalidArgument, fmt.Sprintf("unknown limit field %q (want %s, %s, %s or %s)",
				f, RequestsPerMinute, InputTokensPerMinute, OutputTokensPerMinute, DailyBudgetNanos), "field", f)
		}
	}
	after := h.effective(own)
	now := t.Now().UnixNano()
	for _, name := range perMinuteNames {
		oldN, newN := limitValue(before, name), limitValue(after, name)
		if oldN == newN {
			continue
		}
		if oldN == 0 || newN == 0 {
			if _, err := t.Delete(keyBucketPrefix + name); err != nil {
				return nil, err
			}
			continue
		}
		s, err := loadSet(t, keyBucketPrefix, before)
		if err != nil {
			return nil, err
		}
		nl, err := perMinuteLimit(newN)
		if err != nil {
			return nil, invalid(ErrInvalidLimit, err.Error(), "field", name)
		}
		if err := s.SetLimit(now, name, nl); err != nil {
			return nil, invalid(ErrInvalidLimit, err.Error(), "field", name)
		}
		if b, ok := s.Buckets[name]; ok {
			v, err := b.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("%w: account: bucket %s: %v", actor.ErrInternal, name, err)
			}
			if err := t.Put(keyBucketPrefix+name, v); err != nil {
				return nil, err
			}
		}
	}
	if err := h.saveOwnLimits(t, own, rev); err != nil {
		return nil, err
	}
	return &holdfastv1.AccountLimitsResponse{Own: own, Effective: after}, nil
}

// ---- storage helpers ----

// getProto decodes key into m; a missing key leaves m empty.
func getProto(t *actor.Turn, key string, m proto.Message) error {
	_, err := getProtoOK(t, key, m)
	return err
}

func getProtoOK(t *actor.Turn, key string, m proto.Message) (bool, error) {
	v, ok, err := t.Get(key)
	if err != nil || !ok {
		return false, err
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return false, storageErr(key, err)
	}
	return true, nil
}

func putProto(t *actor.Turn, key string, m proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: account: encoding %q: %v", actor.ErrInternal, key, err)
	}
	return t.Put(key, v)
}

func getCounter(t *actor.Turn, key string) (int64, error) {
	v, ok, err := t.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		// A copy: key itself then stays on the caller's stack.
		return 0, storageErr(strings.Clone(key), fmt.Errorf("%d bytes, want 8", len(v)))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func putCounter(t *actor.Turn, key string, n int64) error {
	return t.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// listAll lists every key under prefix, page by page.
func listAll(t *actor.Turn, prefix string) ([]actor.KV, error) {
	var out []actor.KV
	start := ""
	for {
		page, truncated, err := t.List(actor.ListOptions{Prefix: prefix, Start: start})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !truncated || len(page) == 0 {
			return out, nil
		}
		start = page[len(page)-1].Key + "\x00"
	}
}

// satAdd adds non-negative b to a, saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// floorDiv is a / b rounded toward negative infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// nextMidnight is the start of the UTC day after the one containing now.
func nextMidnight(now int64) int64 {
	return (floorDiv(now, nanosPerDay) + 1) * nanosPerDay
}

// untilMidnightMs is the wait until the next UTC midnight, rounded up to
// the millisecond.
func untilMidnightMs(now int64) int64 {
	ms := int64(time.Millisecond)
	return (nextMidnight(now) - now + ms - 1) / ms
}

// armTidy schedules the tidy alarm a minute after the next midnight, unless
// an alarm is already set.
func armTidy(t *actor.Turn, now int64) error {
	if _, ok := t.Alarm(); ok {
		return nil
	}
	return t.SetAlarm(time.Unix(0, nextMidnight(now)).Add(tidyAfterMidnight))
}
