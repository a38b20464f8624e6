package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"
)

const (
	// Micro is the number of micro-tokens in one token. Levels, capacities
	// and rates are kept in micro-tokens so that fractional refill rates
	// are exact integers.
	Micro int64 = 1_000_000

	// MaxMicros bounds capacity (micro-tokens), refill rate (micro-tokens
	// per second) and the depth of a bucket's debt: 1e18, i.e. 1e12 tokens.
	// It leaves headroom below math.MaxInt64 (≈9.2e18) so that a level
	// plus or minus any in-range amount never wraps.
	MaxMicros int64 = 1_000_000_000_000_000_000

	// MaxRetryAfter is what RetryAfter saturates at when the wait does not
	// fit a time.Duration (≈292 years): for a client, "not in this life".
	// It is the largest whole number of milliseconds, like every other
	// RetryAfter, so Milliseconds() is exact.
	MaxRetryAfter = time.Duration(math.MaxInt64 / int64(time.Millisecond) * int64(time.Millisecond))
)

// nanosPerSecond converts a per-second rate over nanoseconds of elapsed
// time; it is also the denominator of Bucket.Carry.
const nanosPerSecond = 1_000_000_000

// Sentinels for errors.Is; the typed errors below carry the details.
var (
	ErrUnknownBucket   = errors.New("unknown bucket")
	ErrExceedsCapacity = errors.New("amount exceeds bucket capacity")
	ErrNegativeAmount  = errors.New("negative amount")
	ErrInvalidLimit    = errors.New("limit out of range")
	ErrInvalidBucket   = errors.New("bucket state out of range")
	ErrCorrupt         = errors.New("corrupt encoding")
)

// UnknownBucketError says a take or adjust named a bucket that has no
// limit. It is an error rather than "unlimited" so that a typo in a bucket
// name cannot silently disable limiting.
type UnknownBucketError struct{ Name string }

func (e *UnknownBucketError) Error() string {
	return fmt.Sprintf("ratelimit: no limit for bucket %q", e.Name)
}

// Unwrap lets errors.Is(err, ErrUnknownBucket) match.
func (e *UnknownBucketError) Unwrap() error { return ErrUnknownBucket }

// CapacityError says a take asks a bucket for more than it can ever hold,
// so no amount of waiting would let it succeed. It is distinct from a
// refusal, which carries a finite RetryAfter.
type CapacityError struct {
	Name     string
	Amount   int64 // tokens asked for
	Capacity int64 // micro-tokens the bucket holds when full
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("ratelimit: bucket %q: take of %d tokens exceeds capacity %s tokens",
		e.Name, e.Amount, formatMicros(e.Capacity))
}

// Unwrap lets errors.Is(err, ErrExceedsCapacity) match.
func (e *CapacityError) Unwrap() error { return ErrExceedsCapacity }

// LimitError says a limit lies outside the representable range.
type LimitError struct {
	Name   string // bucket the limit is for; empty from Limit.Validate
	Limit  Limit
	Reason string
}

func (e *LimitError) Error() string {
	where := ""
	if e.Name != "" {
		where = fmt.Sprintf("bucket %q: ", e.Name)
	}
	return fmt.Sprintf("ratelimit: %slimit (capacity %s, refill %s/s): %v: %s",
		where, formatMicros(e.Limit.Capacity), formatMicros(e.Limit.Refill), ErrInvalidLimit, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalidLimit) match.
func (e *LimitError) Unwrap() error { return ErrInvalidLimit }

// Limit configures one bucket. Both fields are in micro-tokens so that a
// rate such as one token per 4 s (250_000) is an exact integer.
type Limit struct {
	// Capacity is the level of a full bucket, in micro-tokens, in
	// [1, MaxMicros].
	Capacity int64
	// Refill is how fast the level rises back toward Capacity, in
	// micro-tokens per second, in [1, MaxMicros]. A zero rate is refused:
	// RetryAfter would be infinite.
	Refill int64
}

// Validate reports a *LimitError if l is outside the representable range.
func (l Limit) Validate() error {
	switch {
	case l.Capacity < 1 || l.Capacity > MaxMicros:
		return &LimitError{Limit: l, Reason: "capacity must be in [0.000001, 1e12] tokens"}
	case l.Refill < 1 || l.Refill > MaxMicros:
		return &LimitError{Limit: l, Reason: "refill must be in [0.000001, 1e12] tokens/s"}
	}
	return nil
}

// LimitFromFloat converts a limit given in (possibly fractional) tokens
// and tokens per second, as the wire protocol carries it, rounding each to
// the nearest micro-token. Rounding rather than truncating matters: 0.29
// as a float64 is 0.28999…, which must still mean 290_000 micro-tokens.
// NaN, infinities and values outside the range are a *LimitError.
func LimitFromFloat(capacity, refillPerSecond float64) (Limit, error) {
	c, cok := floatToMicros(capacity)
	r, rok := floatToMicros(refillPerSecond)
	l := Limit{Capacity: c, Refill: r}
	if !cok {
		return l, &LimitError{Limit: l, Reason: fmt.Sprintf("capacity %v is not in [0.000001, 1e12] tokens", capacity)}
	}
	if !rok {
		return l, &LimitError{Limit: l, Reason: fmt.Sprintf("refill %v is not in [0.000001, 1e12] tokens/s", refillPerSecond)}
	}
	return l, l.Validate()
}

// floatToMicros rounds f tokens to micro-tokens, reporting whether the
// result is within [1, MaxMicros]. 1e18 is exact in float64, so the
// comparison is exact.
func floatToMicros(f float64) (int64, bool) {
	m := math.Round(f * float64(Micro))
	if !(m >= 1 && m <= float64(MaxMicros)) { // also false for NaN
		return 0, false
	}
	return int64(m), true
}

// Bucket is the stored state of one token bucket. Its meaning depends on
// the bucket's Limit, which is stored separately so that an operator can
// change the limit without rewriting the state.
type Bucket struct {
	// Level is the number of micro-tokens available as of Last, in
	// [-MaxMicros, Capacity]. It is negative after an Adjust that consumed
	// more than was there.
	Level int64
	// Carry is the fraction of a micro-token refilled but not yet
	// credited, in units of 1e-9 micro-token, in [0, 1e9). Keeping it is
	// what makes many short refills add up exactly to one long refill.
	// A full bucket has no carry.
	Carry int64
	// Last is the Unix-nanosecond time Level was computed for. It never
	// moves backwards.
	Last int64
}

// sanitize forces b into the range its limit allows, so that a state built
// by hand or left over from a larger capacity cannot break the arithmetic.
// Clamping to a smaller capacity is also how a shrunk limit takes effect.
func (b Bucket) sanitize(capacity int64) Bucket {
	if b.Carry < 0 || b.Carry >= nanosPerSecond {
		b.Carry = 0
	}
	b.Level = max(b.Level, -MaxMicros)
	if b.Level >= capacity {
		b.Level, b.Carry = capacity, 0
	}
	return b
}

// refill returns b as of now under l. A now before b.Last counts as no
// elapsed time and keeps b.Last, so a clock stepping back and forth can
// never mint tokens. The product elapsed × rate is done in 128 bits, so
// any idle period saturates at capacity instead of wrapping.
func (b Bucket) refill(l Limit, now int64) Bucket {
	b = b.sanitize(l.Capacity)
	if now <= b.Last {
		return b
	}
	if b.Level == l.Capacity {
		return Bucket{Level: l.Capacity, Last: now}
	}
	elapsed := uint64(now) - uint64(b.Last) // exact: now > Last
	hi, lo := bits.Mul64(elapsed, uint64(l.Refill))
	lo, c := bits.Add64(lo, uint64(b.Carry), 0)
	hi += c // cannot overflow: the product is below 2^124
	room := uint64(l.Capacity - b.Level)
	if hi < nanosPerSecond { // else the quotient exceeds 2^64 > room
		q, r := bits.Div64(hi, lo, nanosPerSecond)
		if q < room {
			return Bucket{Level: b.Level + int64(q), Carry: int64(r), Last: now}
		}
	}
	return Bucket{Level: l.Capacity, Last: now}
}

// wait returns how long from now until b (already refilled to now) holds
// need micro-tokens, rounded up to the millisecond. It requires
// b.Level < need <= l.Capacity.
//
// At b.Last+t the level is Level + floor((t·Refill + Carry) / 1e9), so
// the smallest t is ceil((deficit·1e9 − Carry) / Refill) nanoseconds;
// b.Last may lie after now if the clock went backwards, and no refill
// happens before it.
func (b Bucket) wait(l Limit, need, now int64) time.Duration {
	deficit := uint64(need - b.Level) // ≤ 2·MaxMicros: fits
	hi, lo := bits.Mul64(deficit, nanosPerSecond)
	lo, borrow := bits.Sub64(lo, uint64(b.Carry), 0)
	hi -= borrow // deficit ≥ 1 so deficit·1e9 > Carry: no underflow
	rate := uint64(l.Refill)
	if hi >= rate {
		return MaxRetryAfter
	}
	ns, r := bits.Div64(hi, lo, rate)
	if ns >= math.MaxInt64 {
		return MaxRetryAfter
	}
	if r != 0 {
		ns++
	}
	if b.Last > now {
		gap := uint64(b.Last) - uint64(now) // exact, but may exceed MaxInt64
		if gap > math.MaxInt64-ns {
			return MaxRetryAfter
		}
		ns += gap
	}
	if ns > uint64(MaxRetryAfter) {
		return MaxRetryAfter
	}
	const ms = uint64(time.Millisecond)
	return time.Duration((ns + ms - 1) / ms * ms) // ≤ MaxRetryAfter, a multiple of ms
}

// validate checks the ranges MarshalBinary and UnmarshalBinary guarantee.
// The upper bound on Level is MaxMicros, not the capacity, which a Bucket
// does not know.
func (b Bucket) validate() error {
	switch {
	case b.Level < -MaxMicros || b.Level > MaxMicros:
		return fmt.Errorf("ratelimit: bucket level %d outside [-%d, %d] micro-tokens: %w", b.Level, MaxMicros, MaxMicros, ErrInvalidBucket)
	case b.Carry < 0 || b.Carry >= nanosPerSecond:
		return fmt.Errorf("ratelimit: bucket carry %d outside [0, %d): %w", b.Carry, nanosPerSecond, ErrInvalidBucket)
	}
	return nil
}

// Set is the buckets of one key: their limits and their states. The glue
// fills it from storage (all of it, or just the buckets a request names)
// and writes back the entries an operation reports as changed.
//
// A name in Limits without an entry in Buckets is a full bucket; the entry
// is created on first consumption. The zero Set is empty and ready to use.
type Set struct {
	Limits  map[string]Limit
	Buckets map[string]Bucket

	// zeroOK admits limits of zero capacity or refill: the effective
	// limits of a shard's share or of a split parent (hot.go), where a
	// share may round down to nothing. A zero capacity refuses every
	// positive take (a *CapacityError); a zero refill never refills
	// (RetryAfter saturates at MaxRetryAfter).
	zeroOK bool
}

// Result is the outcome of a Take.
type Result struct {
	// Allowed reports whether every amount was taken.
	Allowed bool
	// Remaining is the level of each bucket named by the request, in
	// micro-tokens, after the take if allowed and as it stands if not.
	// It may be negative after an Adjust.
	Remaining map[string]int64
	// RetryAfter is zero when allowed; otherwise the smallest wait after
	// which the same take succeeds (absent other traffic), rounded up to
	// the millisecond, saturating at MaxRetryAfter.
	RetryAfter time.Duration
	// RefusedBy names the bucket that sets RetryAfter (the first by name
	// on a tie); empty when allowed.
	RefusedBy string
}

// limit returns the valid limit for name, or an error naming the bucket.
func (s *Set) limit(name string) (Limit, error) {
	l, ok := s.Limits[name]
	if !ok {
		return Limit{}, &UnknownBucketError{Name: name}
	}
	if s.zeroOK && l.Capacity >= 0 && l.Capacity <= MaxMicros && l.Refill >= 0 && l.Refill <= MaxMicros {
		return l, nil
	}
	if err := l.Validate(); err != nil {
		err.(*LimitError).Name = name
		return Limit{}, err
	}
	return l, nil
}

// current returns the bucket for name as of now: the stored state
// refilled, or a full bucket if there is none yet.
func (s *Set) current(name string, l Limit, now int64) Bucket {
	b, ok := s.Buckets[name]
	if !ok {
		return Bucket{Level: l.Capacity, Last: now}
	}
	return b.refill(l, now)
}

func (s *Set) store(name string, b Bucket) {
	if s.Buckets == nil {
		s.Buckets = make(map[string]Bucket)
	}
	s.Buckets[name] = b
}

// Take takes amounts[name] whole tokens from each named bucket at time now
// (Unix nanoseconds), all or nothing.
//
// Errors, checked for every name (in name order) before anything changes:
// a negative amount (ErrNegativeAmount: a take must not add tokens; give
// back with Adjust), a name without a limit (*UnknownBucketError), an
// invalid limit (*LimitError), an amount above capacity (*CapacityError).
//
// When allowed, Take stores the bucket of every name with a positive
// amount in s.Buckets and nothing else; when refused it changes nothing.
// A take of zero is allowed, consumes nothing and stores nothing, so a
// take of all zeros reads the current levels.
func (s *Set) Take(now int64, amounts map[string]int64) (Result, error) {
	names := sortedKeys(amounts)
	levels := make([]int64, len(names))
	res, err := s.take(now, names, amounts, levels)
	if err != nil {
		return Result{}, err
	}
	res.Remaining = make(map[string]int64, len(names))
	for i, name := range names {
		res.Remaining[name] = levels[i]
	}
	return res, nil
}

// sortedKeys returns m's keys in order, in one allocation.
func sortedKeys[V any](m map[string]V) []string {
	return appendSortedKeys(make([]string, 0, len(m)), m)
}

// appendSortedKeys appends m's keys to dst and sorts what it appended.
func appendSortedKeys[V any](dst []string, m map[string]V) []string {
	n := len(dst)
	for name := range m {
		dst = append(dst, name)
	}
	slices.Sort(dst[n:])
	return dst
}

// take is Take with amounts' keys given sorted (names) and the levels
// written to levels[i] for names[i] instead of to Result.Remaining (nil):
// the handler has the names already and copies the levels into its reply,
// and two maps per take were a large share of its allocations.
func (s *Set) take(now int64, names []string, amounts map[string]int64, levels []int64) (Result, error) {
	for _, name := range names {
		n := amounts[name]
		if n < 0 {
			return Result{}, fmt.Errorf("ratelimit: bucket %q: take of %d tokens: %w", name, n, ErrNegativeAmount)
		}
		l, err := s.limit(name)
		if err != nil {
			return Result{}, err
		}
		if n > l.Capacity/Micro { // compared in tokens: n·Micro may overflow
			return Result{}, &CapacityError{Name: name, Amount: n, Capacity: l.Capacity}
		}
	}

	res := Result{Allowed: true}
	var small [4]Bucket // most takes name one bucket: no allocation
	next := small[:0]
	if len(names) > len(small) {
		next = make([]Bucket, 0, len(names))
	}
	for _, name := range names {
		l := s.Limits[name]
		b := s.current(name, l, now)
		if need := amounts[name] * Micro; b.Level < need {
			// The take succeeds once every bucket suffices: the longest wait.
			if w := b.wait(l, need, now); res.Allowed || w > res.RetryAfter {
				res.RetryAfter, res.RefusedBy = w, name
			}
			res.Allowed = false
		}
		next = append(next, b)
	}
	for i, name := range names {
		b := next[i]
		if res.Allowed && amounts[name] > 0 {
			b.Level -= amounts[name] * Micro
			s.store(name, b)
		}
		levels[i] = b.Level
	}
	return res, nil
}

// Adjust corrects bucket name after the fact at time now (Unix
// nanoseconds): a positive delta consumes that many more tokens, a
// negative one gives tokens back. Consuming may drive the level negative
// (down to -MaxMicros, where it saturates) so that later takes wait until
// refill has paid the debt; giving back never raises the level above
// capacity. It stores the bucket and returns its new level in
// micro-tokens. A name without a limit is an *UnknownBucketError.
func (s *Set) Adjust(now int64, name string, delta int64) (int64, error) {
	l, err := s.limit(name)
	if err != nil {
		return 0, err
	}
	b := s.current(name, l, now)
	// Beyond this many tokens either way the result saturates anyway;
	// clamping first keeps delta·Micro and Level−d inside int64.
	const maxDelta = 2 * MaxMicros / Micro
	d := min(max(delta, -maxDelta), maxDelta) * Micro
	b.Level = min(max(b.Level-d, -MaxMicros), l.Capacity)
	if b.Level == l.Capacity {
		b.Carry = 0
	}
	s.store(name, b)
	return b.Level, nil
}

// SetLimit installs limit l for bucket name at time now (Unix
// nanoseconds). An existing bucket is first refilled under its old limit
// up to now, so the new rate applies only from now on; then a level above
// the new capacity is clamped to it. A larger capacity does not raise the
// level: the bucket refills into the new room. An invalid l is a
// *LimitError and changes nothing. SetLimit changes s.Limits[name] and,
// if present, s.Buckets[name].
func (s *Set) SetLimit(now int64, name string, l Limit) error {
	if err := l.Validate(); err != nil {
		err.(*LimitError).Name = name
		return err
	}
	if b, ok := s.Buckets[name]; ok {
		if old, err := s.limit(name); err == nil {
			b = b.refill(old, now)
		} else {
			// No trustworthy old rate to credit the gap with: credit
			// nothing, but do not let the new rate apply to it either.
			b = b.sanitize(MaxMicros)
			b.Last = max(b.Last, now)
		}
		s.Buckets[name] = b.sanitize(l.Capacity)
	}
	if s.Limits == nil {
		s.Limits = make(map[string]Limit)
	}
	s.Limits[name] = l
	return nil
}

// RemoveLimit forgets bucket name, limit and state; a later take naming
// it is an *UnknownBucketError.
func (s *Set) RemoveLimit(name string) {
	delete(s.Limits, name)
	delete(s.Buckets, name)
}

// Encoding. Each value is one tag byte, kind<<4 | version, followed by
// minimal varints (zig-zag for signed fields). Minimal encoding makes the
// bytes of a value unique, so stored values can be compared for equality.
const (
	tagLimitV1  = 0x11 // Capacity uvarint, Refill uvarint
	tagBucketV1 = 0x21 // Level varint, Carry uvarint, Last varint
)

// AppendBinary appends the encoding of l to b. An invalid l is refused so
// that everything stored decodes.
func (l Limit) AppendBinary(b []byte) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return b, err
	}
	b = append(b, tagLimitV1)
	b = binary.AppendUvarint(b, uint64(l.Capacity))
	return binary.AppendUvarint(b, uint64(l.Refill)), nil
}

// MarshalBinary encodes l; see AppendBinary.
func (l Limit) MarshalBinary() ([]byte, error) { return l.AppendBinary(nil) }

// UnmarshalBinary decodes data into l. Anything but a well-formed encoding
// of a valid limit is an error wrapping ErrCorrupt, and leaves l alone.
func (l *Limit) UnmarshalBinary(data []byte) error {
	d := decoder{what: "limit", b: data}
	d.tag(tagLimitV1)
	v := Limit{Capacity: d.int64(), Refill: d.int64()}
	d.end()
	if d.err != nil {
		return d.err
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("ratelimit: decode limit: %w: %w", ErrCorrupt, err)
	}
	*l = v
	return nil
}

// AppendBinary appends the encoding of b to buf. A state outside the
// documented ranges is refused (ErrInvalidBucket).
func (b Bucket) AppendBinary(buf []byte) ([]byte, error) {
	if err := b.validate(); err != nil {
		return buf, err
	}
	buf = append(buf, tagBucketV1)
	buf = binary.AppendVarint(buf, b.Level)
	buf = binary.AppendUvarint(buf, uint64(b.Carry))
	return binary.AppendVarint(buf, b.Last), nil
}

// MarshalBinary encodes b; see AppendBinary. One allocation, of the
// largest encoding (appending to nil grew it two or three times).
func (b Bucket) MarshalBinary() ([]byte, error) {
	return b.AppendBinary(make([]byte, 0, 1+3*binary.MaxVarintLen64))
}

// UnmarshalBinary decodes data into b. Anything but a well-formed encoding
// of an in-range state is an error wrapping ErrCorrupt, and leaves b alone.
func (b *Bucket) UnmarshalBinary(data []byte) error {
	d := decoder{what: "bucket", b: data}
	d.tag(tagBucketV1)
	v := Bucket{Level: d.zigzag(), Carry: d.int64(), Last: d.zigzag()}
	d.end()
	if d.err != nil {
		return d.err
	}
	if err := v.validate(); err != nil {
		return fmt.Errorf("ratelimit: decode bucket: %w: %w", ErrCorrupt, err)
	}
	*b = v
	return nil
}

// decoder reads the fields of one value, remembering the first error so
// the field reads can be written straight-line.
type decoder struct {
	what string
	b    []byte
	err  error
}

func (d *decoder) fail(reason string) {
	if d.err == nil {
		d.err = fmt.Errorf("ratelimit: decode %s: %w: %s", d.what, ErrCorrupt, reason)
	}
}

func (d *decoder) tag(want byte) {
	switch {
	case len(d.b) == 0:
		d.fail("empty")
	case d.b[0] != want:
		d.fail(fmt.Sprintf("tag 0x%02x, want 0x%02x (unknown kind or version)", d.b[0], want))
	default:
		d.b = d.b[1:]
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overflowing varint")
		return 0
	}
	if n != len(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64), v)) {
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int64 reads an unsigned field; values above math.MaxInt64 come out
// negative and are caught by range validation.
func (d *decoder) int64() int64 { return int64(d.uvarint()) }

// zigzag reads a signed field written by binary.AppendVarint.
func (d *decoder) zigzag() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) end() {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
}

// formatMicros renders micro-tokens as an exact decimal token count
// ("0.25", "-3", "1000000000000") for error messages.
func formatMicros(m int64) string {
	u, sign := uint64(m), ""
	if m < 0 {
		u, sign = -u, "-" // two's complement magnitude; correct for MinInt64
	}
	s := sign + strconv.FormatUint(u/uint64(Micro), 10)
	if frac := u % uint64(Micro); frac != 0 {
		f := fmt.Sprintf("%06d", frac)
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		s += "." + f
	}
	return s
}
