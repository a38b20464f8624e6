package harness_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/holdfast/holdfast/test/harness"
)

var t0 = time.Now()

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("HARNESS_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

var _ = harness.Options{}
