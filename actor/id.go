package actor

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// ID names one actor: (namespace, key, shard). Its encoding is a
// length-prefixed tuple, never a joined string, so the key "alice#0" can never
// be confused with shard 0 of "alice".
type ID struct {
	Namespace string
	Key       string
	Shard     uint32
}

// ErrBadID is returned for an encoded actor ID that does not decode.
var ErrBadID = errors.New("actor: malformed actor id")

// Encode returns uvarint(len(ns)) ns uvarint(len(key)) key uvarint(shard).
// Encodings of IDs of one namespace share the namespace prefix, so a bbolt
// cursor can list a namespace.
func (id ID) Encode() []byte {
	b := make([]byte, 0, len(id.Namespace)+len(id.Key)+3*binary.MaxVarintLen32)
	return id.AppendEncode(b)
}

// AppendEncode appends the encoding of id to b.
func (id ID) AppendEncode(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(id.Namespace)))
	b = append(b, id.Namespace...)
	b = binary.AppendUvarint(b, uint64(len(id.Key)))
	b = append(b, id.Key...)
	b = binary.AppendUvarint(b, uint64(id.Shard))
	return b
}

// encodedIDLen returns the length of the encoded ID that b starts with, or
// -1 when b does not start with one. The encoding is prefix-free: no
// encoded ID is a prefix of another (each field is length-prefixed or a
// self-delimiting uvarint), so storage can append keys to it.
func encodedIDLen(b []byte) int {
	i := 0
	for range 2 { // namespace, key
		n, k := binary.Uvarint(b[i:])
		if k <= 0 || n > uint64(len(b)-i-k) {
			return -1
		}
		i += k + int(n)
	}
	shard, k := binary.Uvarint(b[i:])
	if k <= 0 || shard > 1<<32-1 {
		return -1
	}
	return i + k
}

// NamespacePrefix returns the encoding prefix shared by every actor of ns.
func NamespacePrefix(ns string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ns)))
	return append(b, ns...)
}

// DecodeID parses an encoding made by Encode; trailing bytes are an error.
func DecodeID(b []byte) (ID, error) {
	var id ID
	rest := b
	str := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	var ok bool
	if id.Namespace, ok = str(); !ok {
		return ID{}, ErrBadID
	}
	if id.Key, ok = str(); !ok {
		return ID{}, ErrBadID
	}
	shard, k := binary.Uvarint(rest)
	if k <= 0 || shard > 1<<32-1 || k != len(rest) {
		return ID{}, ErrBadID
	}
	id.Shard = uint32(shard)
	return id, nil
}

// Partition returns the partition of id among p partitions: xxhash64 of the
// encoded ID, mod p. The hash is part of the cluster's recorded placement
// parameters: changing it moves every key.
func (id ID) Partition(p int) int {
	return PartitionOf(id.Encode(), p)
}

// PartitionOf is Partition for an already encoded ID.
func PartitionOf(encoded []byte, p int) int {
	return int(xxhash.Sum64(encoded) % uint64(p))
}

// String renders the ID for logs and errors: ns/key[#shard], with the key
// quoted so separators inside it stay unambiguous.
func (id ID) String() string {
	if id.Shard == 0 {
		return fmt.Sprintf("%s/%q", id.Namespace, id.Key)
	}
	return fmt.Sprintf("%s/%q#%d", id.Namespace, id.Key, id.Shard)
}
