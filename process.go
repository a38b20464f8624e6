package holdfast

import "runtime/debug"

// ApplyProcessSettings applies the settings of cfg that belong to the
// whole process, not to one node: the Go garbage collector's target
// (runtime.gc_percent) and soft memory limit (runtime.memory_limit_bytes),
// each only when set. `holdfast serve` calls it once before NewNode; a
// program embedding several nodes decides for itself. Not safe to call
// concurrently with itself.
func ApplyProcessSettings(cfg Config) {
	if cfg.Runtime.GCPercent > 0 {
		debug.SetGCPercent(cfg.Runtime.GCPercent)
	}
	if cfg.Runtime.MemoryLimitBytes > 0 {
		debug.SetMemoryLimit(cfg.Runtime.MemoryLimitBytes)
	}
}
