package jsonscan

// MaxDepth is the deepest nesting of arrays and objects accepted, counting
// the top-level object as 1. It equals encoding/json's limit so that the two
// agree on which bodies are valid, and it bounds the recursion below.
const MaxDepth = 10000

// strSafe marks bytes that may appear in a JSON string without ending it or
// starting an escape: everything except '"', '\\' and control characters.
// A table lookup per byte keeps the hot loop branch-light.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString validates the string starting at b[i] == '"' and returns the
// offset just past its closing quote and whether it contained an escape.
func skipString(b []byte, i int) (end int, escaped bool, err error) {
	start := i
	i++
	for {
		// Most of a request body is message text: consume runs of plain bytes
		// eight at a time where possible, then byte by byte.
		for i+8 <= len(b) && strSafe[b[i]] && strSafe[b[i+1]] && strSafe[b[i+2]] && strSafe[b[i+3]] &&
			strSafe[b[i+4]] && strSafe[b[i+5]] && strSafe[b[i+6]] && strSafe[b[i+7]] {
			i += 8
		}
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, false, syntaxErr(start, ErrUnterminatedString)
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, syntaxErr(start, ErrUnterminatedString)
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					// Report a truncated \u escape at end of input as an
					// unterminated string: that is what the input is.
					for k := i + 2; k < len(b); k++ {
						if !isHex(b[k]) {
							return 0, false, syntaxErr(k, ErrInvalidEscape)
						}
					}
					return 0, false, syntaxErr(start, ErrUnterminatedString)
				}
				for k := i + 2; k < i+6; k++ {
					if !isHex(b[k]) {
						return 0, false, syntaxErr(k, ErrInvalidEscape)
					}
				}
				i += 6
			default:
				return 0, false, syntaxErr(i+1, ErrInvalidEscape)
			}
		default:
			return 0, false, syntaxErr(i, ErrControlCharacter)
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipValue validates the value starting at b[i] (no leading whitespace) and
// returns the offset just past it. depth is the nesting of the enclosing
// container.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, syntaxErr(len(b), ErrUnexpectedEnd)
	}
	switch c := b[i]; c {
	case '"':
		end, _, err := skipString(b, i)
		return end, err
	case '{':
		return skipObject(b, i, depth+1)
	case '[':
		return skipArray(b, i, depth+1)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return skipNumber(b, i)
		}
		return 0, syntaxErr(i, ErrInvalidCharacter)
	}
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return 0, syntaxErr(len(b), ErrUnexpectedEnd)
		}
		if b[i+k] != lit[k] {
			return 0, syntaxErr(i+k, ErrInvalidCharacter)
		}
	}
	return i + len(lit), nil
}

// skipNumber follows the JSON grammar exactly:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, syntaxErr(len(b), ErrUnexpectedEnd)
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return 0, syntaxErr(i, ErrInvalidCharacter)
	}
	if i < len(b) && b[i] == '.' {
		var err error
		if i, err = needDigits(b, i+1); err != nil {
			return 0, err
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		var err error
		if i, err = needDigits(b, i); err != nil {
			return 0, err
		}
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func needDigits(b []byte, i int) (int, error) {
	j := skipDigits(b, i)
	if j == i {
		if i >= len(b) {
			return 0, syntaxErr(len(b), ErrUnexpectedEnd)
		}
		return 0, syntaxErr(i, ErrInvalidCharacter)
	}
	return j, nil
}

func skipArray(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, syntaxErr(i, ErrTooDeep)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = skipValue(b, i, depth); err != nil {
			return 0, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, syntaxErr(len(b), ErrUnexpectedEnd)
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, syntaxErr(i, ErrInvalidCharacter)
		}
	}
}

// member is one key/value pair of an object, as offsets into the body.
type member struct {
	key      []byte // raw key bytes between the quotes
	escaped  bool   // key contains a backslash escape
	valStart int    // offset of the first byte of the value
}

func skipObject(b []byte, i, depth int) (int, error) {
	return walkObject(b, i, depth, nil)
}

// walkObject validates the object starting at b[i] == '{' and, when visit is
// non-nil, calls it for every member in order. visit may consume the value
// itself (to look inside it) by returning the offset past the value; it
// returns -1 to let walkObject skip the value.
func walkObject(b []byte, i, depth int, visit func(m member) (int, error)) (int, error) {
	if depth > MaxDepth {
		return 0, syntaxErr(i, ErrTooDeep)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) {
			return 0, syntaxErr(len(b), ErrUnexpectedEnd)
		}
		if b[i] != '"' {
			return 0, syntaxErr(i, ErrInvalidCharacter)
		}
		keyEnd, escaped, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		m := member{key: b[i+1 : keyEnd-1], escaped: escaped}
		i = skipSpace(b, keyEnd)
		if i >= len(b) {
			return 0, syntaxErr(len(b), ErrUnexpectedEnd)
		}
		if b[i] != ':' {
			return 0, syntaxErr(i, ErrInvalidCharacter)
		}
		i = skipSpace(b, i+1)
		m.valStart = i
		end := -1
		if visit != nil {
			if end, err = visit(m); err != nil {
				return 0, err
			}
		}
		if end < 0 {
			if end, err = skipValue(b, i, depth); err != nil {
				return 0, err
			}
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, syntaxErr(len(b), ErrUnexpectedEnd)
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return 0, syntaxErr(i, ErrInvalidCharacter)
		}
	}
}
