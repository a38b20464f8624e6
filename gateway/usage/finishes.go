package usage

import "github.com/holdfast/holdfast/gateway/jsonscan"

// finishes decodes the array member that holds the stop reason (OpenAI
// "choices", Gemini "candidates") as encoding/json decodes it into a
// []struct{FinishReason *string} (ptr) or []struct{FinishReason string},
// and answers the one question the observers ask of the result: the last
// element whose reason is non-empty.
//
// encoding/json decodes a repeated key into the same slice: element j of a
// later array is merged into element j of the earlier one, the length is
// the last array's, and elements beyond it keep their content in the
// backing array (a later, longer array merges into them again). null and
// [] start afresh. The usual single array needs no per-element memory;
// a history is kept only when a second array must merge into the first.
type finishes struct {
	key   string
	ptr   bool
	n     int // length after the last array
	arrs  int // arrays since the slice was last reset
	first int // offset of the first of those arrays
	last  str // single array: reason of the last element with a non-empty one
	hist  []str
}

// decode reads one occurrence of the member's value at b[i].
func (f *finishes) decode(d *decoder, b []byte, i, depth int) (int, error) {
	if isNull(b, i) {
		f.reset()
		return jsonscan.SkipValue(b, i, depth)
	}
	if i >= len(b) || b[i] != '[' {
		return d.other(b, i, depth) // an object is a type error here too
	}
	if f.arrs == 1 && f.hist == nil {
		// A second array: replay the first into a history to merge into.
		if _, err := f.replay(d, b, f.first, depth); err != nil {
			return 0, err
		}
	}
	n := 0
	end, err := f.walk(d, b, i, depth, f.arrs > 0, &n)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		f.reset()
		return end, nil
	}
	if f.arrs == 0 {
		f.first = i
	}
	f.arrs++
	f.n = n
	return end, nil
}

func (f *finishes) reset() {
	f.n, f.arrs, f.last, f.hist = 0, 0, str{}, nil
}

// replay decodes the array at b[i] into a new history.
func (f *finishes) replay(d *decoder, b []byte, i, depth int) (int, error) {
	n := 0
	f.hist = make([]str, 0, 4)
	return f.walk(d, b, i, depth, true, &n)
}

// walk reads the array at b[i]; with merge, each element is merged into
// the history, else only the summary is kept. *n is the element count.
func (f *finishes) walk(d *decoder, b []byte, i, depth int, merge bool, n *int) (int, error) {
	depth++
	if depth > jsonscan.MaxDepth {
		return jsonscan.SkipValue(b, i, depth-1) // reports the depth error
	}
	j := jsonscan.SkipSpace(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, nil
	}
	for {
		var el str
		if merge {
			if *n >= len(f.hist) {
				f.hist = append(f.hist, str{})
			}
			el = f.hist[*n]
		}
		end, err := d.object(b, j, depth, func(k jsonscan.Key, v, depth int) (int, error) {
			if k.Fold(f.key) {
				return d.string(b, v, depth, &el, f.ptr)
			}
			return -1, nil
		})
		if err != nil {
			return 0, err
		}
		if merge {
			f.hist[*n] = el
		} else if len(el.raw) > 0 {
			f.last = el
		}
		*n++
		j = jsonscan.SkipSpace(b, end)
		if j >= len(b) {
			return jsonscan.SkipValue(b, i, depth-1) // reports the truncation
		}
		switch b[j] {
		case ',':
			j = jsonscan.SkipSpace(b, j+1)
		case ']':
			return j + 1, nil
		default:
			return jsonscan.SkipValue(b, i, depth-1) // reports the bad byte
		}
	}
}

// lastReason is the reason of the last element of the final slice that has
// a non-empty one; set is false when there is none.
func (f *finishes) lastReason() str {
	if f.hist == nil {
		if f.arrs == 0 {
			return str{}
		}
		return f.last
	}
	for j := min(f.n, len(f.hist)) - 1; j >= 0; j-- {
		if len(f.hist[j].raw) > 0 {
			return f.hist[j]
		}
	}
	return str{}
}
