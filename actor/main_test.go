package actor_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// runtime goroutine must stop with Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
