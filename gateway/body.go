package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// errBodyTooLarge: the body exceeds gateway.max_body_bytes.
var errBodyTooLarge = errors.New("request body exceeds gateway.max_body_bytes")

// body is a request body read whole, in memory or spilled to an unlinked
// temporary file, plus at most a few textual edits. Every attempt reads
// it afresh (Reader), so retries replay the same bytes.
type body struct {
	mem   []byte   // the body when not spilled
	file  *os.File // the spilled body (already unlinked where possible)
	size  int64    // original size
	edits []edit   // sorted, non-overlapping, against the original bytes
}

// edit replaces original bytes [from, to) by ins.
type edit struct {
	from, to int64
	ins      []byte
}

// readBody reads r whole. Up to spillAt bytes stay in memory; beyond
// that the body goes to a temporary file in dir. More than max bytes is
// errBodyTooLarge. hint is the announced length (-1: unknown).
func readBody(r io.Reader, hint, max, spillAt int64, dir string) (*body, error) {
	if spillAt > max {
		spillAt = max
	}
	// Memory part: read up to spillAt+1 bytes to learn whether more come.
	size := int64(4 << 10)
	if hint >= 0 {
		size = hint + 1 // +1: bytes.Buffer reads until it sees EOF
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(spillAt+1, size)))
	n, err := io.Copy(buf, io.LimitReader(r, spillAt+1))
	if err != nil {
		return nil, err
	}
	if n <= spillAt {
		return &body{mem: buf.Bytes(), size: n}, nil
	}
	f, err := os.CreateTemp(dir, "holdfast-body-*")
	if err != nil {
		// No usable spill directory: keep the body in memory rather than
		// refuse the request, still bounded by max.
		rest, rerr := io.ReadAll(io.LimitReader(r, max+1-n))
		if rerr != nil {
			return nil, rerr
		}
		all := append(buf.Bytes(), rest...)
		if int64(len(all)) > max {
			return nil, errBodyTooLarge
		}
		return &body{mem: all, size: int64(len(all))}, nil
	}
	_ = os.Remove(f.Name()) // unlinked: the data lives as long as the descriptor
	b := &body{file: f}
	if _, err := f.Write(buf.Bytes()); err != nil {
		b.Close()
		return nil, fmt.Errorf("spilling the request body: %w", err)
	}
	m, err := io.Copy(f, io.LimitReader(r, max+1-n))
	if err != nil {
		b.Close()
		return nil, err
	}
	b.size = n + m
	if b.size > max {
		b.Close()
		return nil, errBodyTooLarge
	}
	return b, nil
}

// spilled reports whether the body lives in a file.
func (b *body) spilled() bool { return b.file != nil }

// Len is the length of the body as forwarded (edits applied).
func (b *body) Len() int64 {
	n := b.size
	for _, e := range b.edits {
		n += int64(len(e.ins)) - (e.to - e.from)
	}
	return n
}

// addEdit records an edit; it must not overlap an earlier one.
func (b *body) addEdit(e edit) error {
	for _, o := range b.edits {
		if e.from < o.to && o.from < e.to || e.from == o.from {
			return errors.New("overlapping body edits")
		}
	}
	b.edits = append(b.edits, e)
	sort.Slice(b.edits, func(i, j int) bool { return b.edits[i].from < b.edits[j].from })
	return nil
}

// Reader returns a fresh reader over the forwarded bytes.
func (b *body) Reader() io.Reader {
	section := func(from, to int64) io.Reader {
		if b.file != nil {
			return io.NewSectionReader(b.file, from, to-from)
		}
		return bytes.NewReader(b.mem[from:to])
	}
	if len(b.edits) == 0 {
		return section(0, b.size)
	}
	parts := make([]io.Reader, 0, 2*len(b.edits)+1)
	at := int64(0)
	for _, e := range b.edits {
		parts = append(parts, section(at, e.from), bytes.NewReader(e.ins))
		at = e.to
	}
	parts = append(parts, section(at, b.size))
	return io.MultiReader(parts...)
}

// Bytes returns the forwarded bytes in one slice (tests and small bodies).
func (b *body) Bytes() ([]byte, error) {
	if b.file == nil && len(b.edits) == 0 {
		return b.mem, nil
	}
	out := make([]byte, 0, b.Len())
	w := bytes.NewBuffer(out)
	_, err := io.Copy(w, b.Reader())
	return w.Bytes(), err
}

// view gives f the original bytes: the memory slice, or the spilled file
// mapped read-only (read into memory where mapping is unavailable). The
// slice is valid only during f.
func (b *body) view(f func([]byte) error) error {
	if b.file == nil {
		return f(b.mem)
	}
	data, release, err := mapFile(b.file, b.size)
	if err != nil {
		return err
	}
	defer release()
	return f(data)
}

// Close releases the spill file.
func (b *body) Close() {
	if b != nil && b.file != nil {
		name := b.file.Name()
		_ = b.file.Close()
		_ = os.Remove(name) // already gone where unlinking an open file works
		b.file = nil
	}
}

// diffEdit expresses edited, a copy of orig with one contiguous change,
// as an edit of orig: the common prefix and suffix are kept, the rest is
// the replacement. It lets a spilled body take jsonscan's edit without a
// second copy on disk.
func diffEdit(orig, edited []byte) edit {
	p := 0
	for p < len(orig) && p < len(edited) {
		// compare in blocks: bodies can be tens of megabytes
		k := min(4096, len(orig)-p, len(edited)-p)
		if bytes.Equal(orig[p:p+k], edited[p:p+k]) {
			p += k
			continue
		}
		for orig[p] == edited[p] {
			p++
		}
		break
	}
	s := 0
	for s < len(orig)-p && s < len(edited)-p && orig[len(orig)-1-s] == edited[len(edited)-1-s] {
		s++
	}
	ins := append([]byte(nil), edited[p:len(edited)-s]...)
	return edit{from: int64(p), to: int64(len(orig) - s), ins: ins}
}

// readFile reads a spilled body back into memory (when it cannot be
// mapped).
func readFile(f *os.File, size int64) ([]byte, func(), error) {
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil { // nil exactly when all size bytes were read
		return nil, nil, err
	}
	return data, func() {}, nil
}
