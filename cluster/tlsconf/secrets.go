package tlsconf

import (
	"encoding/base64"
	"os"
	"strings"
)

// LoadGossipKey reads a memberlist encryption key: a file holding the key in
// base64 (standard alphabet, padding optional), surrounding whitespace
// ignored, decoding to 16, 24 or 32 bytes (AES-128, -192, -256). Errors are
// *FileError values naming the path; they never quote the content.
func LoadGossipKey(path string) ([]byte, error) {
	const what = "gossip key"
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fileErr(what, path, err)
	}
	text := strings.TrimSpace(string(b))
	if text == "" {
		return nil, fileErr(what, path, invalid("file is empty; want base64 of 16, 24 or 32 bytes"))
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(text)
	}
	if err != nil {
		return nil, fileErr(what, path, invalid("not valid base64; want base64 of 16, 24 or 32 bytes"))
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fileErr(what, path, invalid("decodes to %d bytes; want 16, 24 or 32 (AES-128, -192 or -256)", len(key)))
}

// LoadSecretFile reads a secret (a token) from a file, surrounding
// whitespace trimmed. An unreadable or empty file is a *FileError naming the
// path, never the content.
func LoadSecretFile(path string) (string, error) {
	const what = "secret file"
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fileErr(what, path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fileErr(what, path, invalid("file is empty"))
	}
	return s, nil
}
