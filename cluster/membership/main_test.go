package membership

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: memberlist
// and the join loop must stop with Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
