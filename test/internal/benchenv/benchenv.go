// Package benchenv describes the machine a benchmark report runs on and how
// busy other processes kept it: the part every holdfast report tool
// (benchreport, clusterbench) shares. Linux only in what it reads; elsewhere
// the fields read "unknown" or zero.
package benchenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ModuleRoot is the directory of the go.mod the tool runs in.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run inside the holdfast module")
	}
	return filepath.Dir(mod), nil
}

// CPUModel is the first "model name" of /proc/cpuinfo.
func CPUModel() string {
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}

// GoVersion is `go version`.
func GoVersion() string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Kernel is the kernel release.
func Kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Commit is the short HEAD commit, marked when tracked files changed.
func Commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// LoadAvg is the 1, 5 and 15 minute load averages.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// CPUSnap is the machine's busy CPU time and the measuring tool's own.
type CPUSnap struct {
	At   time.Time
	Busy float64 // seconds, all CPUs: user+nice+system+irq+softirq from /proc/stat
	Ours float64 // seconds of CPU the tool counts as its own
}

// SnapCPU reads /proc/stat; ours is the tool's own CPU seconds so far.
func SnapCPU(ours float64) CPUSnap {
	s := CPUSnap{At: time.Now(), Ours: ours}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return s
	}
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		v, _ := strconv.ParseFloat(f[i], 64)
		s.Busy += v / 100 // USER_HZ
	}
	return s
}

// OthersCores is the average number of cores busy with other processes
// between two snapshots.
func OthersCores(a, b CPUSnap) float64 {
	wall := b.At.Sub(a.At).Seconds()
	if wall <= 0 || b.Busy == 0 {
		return 0
	}
	return max(0, (b.Busy-a.Busy)-(b.Ours-a.Ours)) / wall
}
