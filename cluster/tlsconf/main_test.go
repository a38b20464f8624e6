package tlsconf_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind (the
// handshake tests run real listeners).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
