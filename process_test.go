package holdfast

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestApplyProcessSettings(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prevLimit)
	})
	cfg := DefaultConfig()
	ApplyProcessSettings(cfg) // unset: leaves the runtime's
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("gc percent %d after applying the defaults, want the runtime's 100", got)
	}
	cfg.Runtime.GCPercent, cfg.Runtime.MemoryLimitBytes = 400, 3<<30
	ApplyProcessSettings(cfg)
	if got := debug.SetGCPercent(100); got != 400 {
		t.Fatalf("gc percent %d, want 400", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Fatalf("memory limit %d, want %d", got, int64(3<<30))
	}
	cfg.Runtime.GCPercent, cfg.Runtime.MemoryLimitBytes = -5, -1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "runtime.gc_percent") || !strings.Contains(err.Error(), "runtime.memory_limit_bytes") {
		t.Fatalf("Validate: %v, want both keys named", err)
	}
}
