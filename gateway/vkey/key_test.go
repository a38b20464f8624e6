package vkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// testRand is a deterministic random stream, so failures reproduce.
func testRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

func mustNew(t testing.TB, user string, seed byte) Key {
	t.Helper()
	k, err := New(user, testRand(seed))
	if err != nil {
		t.Fatalf("New(%q): %v", user, err)
	}
	return k
}

var users = []string{
	"alice",
	"x",
	"user_with_underscores_",
	"hf_1abc",                  // looks like a key
	"a/b:c|d#0 e\tf,g;h=i&j?k", // separators of every kind
	"用户-42",                    // CJK
	"émilie@example.com",       // accents, '@'
	"🎉🚀",                       // 4-byte runes
	"a\x00b",                   // NUL is valid UTF-8
	strings.Repeat("z", 128),   // longest
	strings.Repeat("é", 64),    // 128 bytes of 2-byte runes
}

func TestRoundTrip(t *testing.T) {
	for i, user := range users {
		k := mustNew(t, user, byte(i))
		if !strings.HasPrefix(k.Token, "hf_1") || !ValidID(k.ID) || k.User != user {
			t.Errorf("New(%q) = %v", user, k)
		}
		p, err := Parse(k.Token)
		if err != nil || p.User != user || p.ID != k.ID {
			t.Errorf("Parse(New(%q)) = %+v, %v; want ID %s", user, p, err, k.ID)
		}
		for _, c := range k.Token[4:] {
			if !strings.ContainsRune(alphabet, c) {
				t.Fatalf("token has %q outside the alphabet", c)
			}
		}
		h, err := Hash(k.Token)
		if err != nil || !Verify(h, k.Token) {
			t.Errorf("Hash/Verify(%q): %v", user, err)
		}
	}
}

func TestNewDeterministicLayout(t *testing.T) {
	// Fixed random bytes → fixed token: pins the wire format.
	r := bytes.NewReader(append(bytes.Repeat([]byte{0x11}, 8), bytes.Repeat([]byte{0x22}, 32)...))
	k, err := New("alice", r)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "1111111111111111" {
		t.Errorf("ID = %s", k.ID)
	}
	payload, err := b32.DecodeString(k.Token[4:])
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{5}, "alice"...)
	want = append(want, bytes.Repeat([]byte{0x11}, 8)...)
	want = append(want, bytes.Repeat([]byte{0x22}, 32)...)
	if !bytes.Equal(payload[:len(want)], want) || len(payload) != len(want)+4 {
		t.Errorf("payload = %x", payload)
	}
	if len(k.Token) != 84 { // "hf_1" + 50 bytes → 80 chars
		t.Errorf("token length %d", len(k.Token))
	}
	if k.Token != "hf_1"+b32.EncodeToString(payload) || k.Token != goldenToken {
		t.Errorf("token = %s\nwant    %s", k.Token, goldenToken)
	}
}

// goldenToken is New("alice") with ID 11×8 and secret 22×32, computed
// independently (Python: CRC-32C bitwise with 0x82F63B78, base64.b32encode
// lowercased, padding stripped).
const goldenToken = "hf_1avqwy2ldmuirceirceircejceirceirceirceirceirceirceirceirceirceirceirceircek6s3jfm"

func TestNewErrors(t *testing.T) {
	for _, user := range []string{"", strings.Repeat("z", 129), "bad\xffutf8"} {
		if _, err := New(user, testRand(1)); !errors.Is(err, ErrUser) {
			t.Errorf("New(%q): %v", user, err)
		}
	}
	if _, err := New("alice", iotest.ErrReader(io.ErrClosedPipe)); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("rand failure: %v", err)
	}
	if _, err := New("alice", bytes.NewReader(make([]byte, 39))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short rand: %v", err)
	}
}

// corruptionChars are replacement characters: the whole alphabet plus
// look-alikes and separators a copy-paste might introduce.
const corruptionChars = alphabet + "ABCXYZ0189_-=+/. \n\x00é"

func TestEverySingleCharCorruptionFails(t *testing.T) {
	for i, user := range []string{"alice", "用户-42", strings.Repeat("z", 128)} {
		tok := mustNew(t, user, byte(i)).Token
		n := 0
		for pos := 0; pos < len(tok); pos++ {
			for _, c := range corruptionChars {
				bad := tok[:pos] + string(c) + tok[pos+1:]
				if bad == tok {
					continue
				}
				n++
				if p, err := Parse(bad); err == nil {
					t.Fatalf("corruption at %d to %q accepted: %+v", pos, c, p)
				} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) {
					t.Fatalf("corruption at %d: untyped error %v", pos, err)
				}
			}
		}
		// Adjacent swaps, deletions, duplications, truncations.
		for pos := 0; pos+1 < len(tok); pos++ {
			variants := []string{
				tok[:pos] + tok[pos+1:pos+2] + tok[pos:pos+1] + tok[pos+2:],
				tok[:pos] + tok[pos+1:],
				tok[:pos] + tok[pos:pos+1] + tok[pos:],
				tok[:pos],
			}
			for _, bad := range variants {
				if bad == tok {
					continue
				}
				n++
				if _, err := Parse(bad); err == nil {
					t.Fatalf("variant at %d accepted", pos)
				}
			}
		}
		if n < len(tok)*len(alphabet) {
			t.Fatalf("only %d corruptions tried", n)
		}
	}
}

func TestRandomStringsFail(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var s string
		switch i % 3 {
		case 0: // arbitrary bytes
			b := make([]byte, r.IntN(300))
			for j := range b {
				b[j] = byte(r.UintN(256))
			}
			s = string(b)
		case 1: // right prefix, alphabet body of any length
			b := make([]byte, r.IntN(300))
			for j := range b {
				b[j] = alphabet[r.IntN(len(alphabet))]
			}
			s = "hf_1" + string(b)
		case 2: // a well-formed payload of plausible length with a random checksum
			p := make([]byte, fixedLen+1+r.IntN(maxUser))
			for j := range p {
				p[j] = byte(r.UintN(256))
			}
			p[0] = byte(len(p) - fixedLen)
			s = "hf_1" + b32.EncodeToString(p)
		}
		if _, err := Parse(s); err == nil {
			t.Fatalf("random string %q accepted", s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := mustNew(t, "alice", 7).Token
	long := mustNew(t, "a-longer-user-id-for-truncation", 8).Token
	payload, _ := b32.DecodeString(good[4:])
	// A payload with a valid checksum but an inconsistent length byte:
	// only a forger or a bug makes one, and it must still be refused.
	forged := append([]byte(nil), payload[:len(payload)-4]...)
	forged[0] = 6
	forgedTok := "hf_1" + b32.EncodeToString(appendSum(forged))
	badUTF8 := append([]byte{2, 0xff, 0xfe}, make([]byte, idLen+secretLen)...)
	badUTF8Tok := "hf_1" + b32.EncodeToString(appendSum(badUTF8))
	emptyUser := append([]byte{0}, make([]byte, idLen+secretLen)...)
	emptyUserTok := "hf_1" + b32.EncodeToString(appendSum(emptyUser))

	tests := []struct {
		name, token string
		is          error // nil: ErrMalformed or ErrChecksum
	}{
		{"empty", "", ErrMalformed},
		{"prefix only", "hf_", ErrMalformed},
		{"head only", "hf_1", ErrMalformed},
		{"other prefix", "sk-ant-" + good[4:], ErrMalformed},
		{"version 2", "hf_2" + good[4:], ErrMalformed},
		{"uppercase body", "hf_1" + strings.ToUpper(good[4:]), ErrMalformed},
		{"uppercase prefix", "HF_1" + good[4:], ErrMalformed},
		{"padded", good + "======", ErrMalformed},
		{"newline inside", good[:20] + "\n" + good[20:], ErrMalformed},
		{"trailing space", good + " ", ErrMalformed},
		{"bearer prefix", "Bearer " + good, ErrMalformed},
		{"too long", "hf_1" + strings.Repeat("a", maxTokenLen), ErrMalformed},
		{"short", "hf_1aaaaaaaa", ErrMalformed},
		// Truncations: which check fires depends on the cut; either is right.
		{"truncated 8", long[:len(long)-8], nil},
		{"truncated 1", good[:len(good)-1], nil},
		{"truncated 2", good[:len(good)-2], nil},
		{"truncated below minimum", good[:len(good)-8], ErrMalformed},
		// Cut at a 5-byte (8-character) boundary the encoding stays
		// canonical: only the checksum can notice.
		{"truncated at a group boundary", long[:4+(len(long)-4)/8*8], ErrChecksum},
		{"length byte lies", forgedTok, ErrMalformed},
		{"invalid utf-8 user", badUTF8Tok, ErrMalformed},
		{"empty user", emptyUserTok, ErrMalformed},
	}
	for _, tc := range tests {
		p, err := Parse(tc.token)
		typed := errors.Is(err, ErrMalformed) || errors.Is(err, ErrChecksum)
		if tc.is != nil && !errors.Is(err, tc.is) || !typed || p != (Parsed{}) {
			t.Errorf("%s: Parse = %+v, %v; want %v", tc.name, p, err, tc.is)
		}
	}
}

func appendSum(p []byte) []byte {
	return append(p, byte(checksum(p)>>24), byte(checksum(p)>>16), byte(checksum(p)>>8), byte(checksum(p)))
}

// Errors and redactions must never carry the token or the secret.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	k := mustNew(t, "alice", 9)
	f, err := decode(k.Token)
	if err != nil {
		t.Fatal(err)
	}
	body := k.Token[4:]
	secretHex := hex.EncodeToString(f.secret[:])
	leaks := func(s string) bool {
		if strings.Contains(s, secretHex) || strings.Contains(s, string(f.secret[:])) {
			return true
		}
		for i := 0; i+8 <= len(body); i++ { // any 8-char slice of the encoded key
			if strings.Contains(s, body[i:i+8]) {
				return true
			}
		}
		return false
	}
	var inputs []string
	for pos := 0; pos < len(k.Token); pos++ {
		inputs = append(inputs, k.Token[:pos]+"!"+k.Token[pos+1:], k.Token[:pos]+"a"+k.Token[pos+1:], k.Token[:pos])
	}
	inputs = append(inputs, k.Token+"\n", strings.ToUpper(k.Token), "hf_2"+body)
	for _, in := range inputs {
		if _, err := Parse(in); err != nil && leaks(err.Error()) {
			t.Fatalf("Parse error leaks the key: %v", err)
		}
		if _, err := Hash(in); err != nil && leaks(err.Error()) {
			t.Fatalf("Hash error leaks the key: %v", err)
		}
		if leaks(Redact(in)) {
			t.Fatalf("Redact leaks: %s", Redact(in))
		}
	}
	for _, s := range []string{Redact(k.Token), k.String(), k.GoString()} {
		if leaks(s) {
			t.Errorf("leak in %q", s)
		}
	}
	if got, want := Redact(k.Token), "hf_1…"+k.ID; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if got := Redact("hf_1" + body[:len(body)-1] + "q"); got != "hf_?…(malformed)" {
		t.Errorf("Redact(corrupt) = %q", got)
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"0123456789abcdef": true, "0123456789ABCDEF": false, "0123456789abcde": false,
		"0123456789abcdef0": false, "0123456789abcdeg": false, "": false,
	} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) != %v", id, want)
		}
	}
}
