//go:build !unix

package gateway

// openFileLimit is unknown here: no derived bound.
func openFileLimit() uint64 { return 0 }
