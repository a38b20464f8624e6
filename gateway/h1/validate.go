package h1

import (
	"fmt"
	"net/http"
	"strings"
)

// validateRequest refuses what http.Transport refuses, naming header keys
// but never their values (they may be credentials).
func validateRequest(req *http.Request) error {
	if req.Method != "" && !isToken(req.Method) {
		return fmt.Errorf("%w: invalid method", ErrInvalidRequest)
	}
	for k, vv := range req.Header {
		if !isToken(k) {
			return fmt.Errorf("%w: invalid header field name %q", ErrInvalidRequest, k)
		}
		for _, v := range vv {
			if !validValue(v) {
				return fmt.Errorf("%w: invalid header field value for %q", ErrInvalidRequest, k)
			}
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validValue rejects control bytes other than space and tab, as
// httpguts.ValidHeaderFieldValue does.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// hasToken reports whether a comma-separated header such as Connection
// lists tok, case-insensitively.
func hasToken(vals []string, tok string) bool {
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), tok) {
				return true
			}
		}
	}
	return false
}
