//go:build unix

package gateway

import (
	"os"
	"syscall"
)

// mapFile maps f's first size bytes read-only, so a spilled body is
// scanned from the page cache instead of the heap.
func mapFile(f *os.File, size int64) ([]byte, func(), error) {
	if size == 0 {
		return nil, func() {}, nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return readFile(f, size)
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
