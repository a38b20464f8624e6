package h1

import (
	"fmt"
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// validateRequest refuses what http.Transport refuses (with the same
// httpguts checks), naming header keys but never their values (they may
// be credentials).
func validateRequest(req *http.Request) error {
	if req.Method != "" && !httpguts.ValidHeaderFieldName(req.Method) { // a method is a token too
		return fmt.Errorf("%w: invalid method", ErrInvalidRequest)
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("%w: invalid header field name %q", ErrInvalidRequest, k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("%w: invalid header field value for %q", ErrInvalidRequest, k)
			}
		}
	}
	return nil
}
