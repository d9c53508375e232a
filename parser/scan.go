package parser

import (
	"encoding/json"
	"strconv"
)

// This file holds a small JSON scanner used to look inside payloads
// without building a value tree: finding the first element of an array,
// splitting an array into its elements, and locating binary placeholders.
//
// The scanner expects valid JSON (the Decoder checks it with json.Valid
// first). On malformed input it returns errMalformed or produces a split
// that is wrong, but it never panics and never reads out of bounds.

// maxDepth bounds the nesting the scanner and the encoders follow. It is the
// limit encoding/json's scanner enforces too, so any payload json.Valid
// accepts fits.
const maxDepth = 10000

var errMalformed = errorf(ErrInvalidPayload, "malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at b[i],
// which must be '"'.
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i + 1, nil
		case '\\':
			i++ // skip the escaped byte; \uXXXX digits are plain bytes
		}
	}
	return 0, errMalformed
}

// skipValue returns the index just past the JSON value starting at b[i]
// (whitespace already skipped). Containers are skipped by counting brackets
// outside strings; their content is not checked.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errMalformed
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errMalformed
	default:
		// number, true, false or null: a run of these bytes.
		start := i
		for i < len(b) && isScalarByte(b[i]) {
			i++
		}
		if i == start {
			return 0, errMalformed
		}
		return i, nil
	}
}

func isScalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// forEachElement calls yield with each element of the JSON array data
// (which may be surrounded by whitespace) after the first skip ones. The
// elements are sub-slices of data, capacity-limited, without surrounding
// whitespace.
func forEachElement(data []byte, skip int, yield func(elem []byte)) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return errorf(ErrInvalidPayload, "not a JSON array")
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return trailing(data, i+1)
	}
	for n := 0; ; n++ {
		end, err := skipValue(data, i)
		if err != nil {
			return err
		}
		if n >= skip {
			yield(data[i:end:end])
		}
		i = skipSpace(data, end)
		if i >= len(data) {
			return errMalformed
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return trailing(data, i+1)
		default:
			return errMalformed
		}
	}
}

func trailing(data []byte, i int) error {
	if skipSpace(data, i) != len(data) {
		return errMalformed
	}
	return nil
}

// firstElement returns the bounds of the first element of the JSON array
// data. ok is false if data is not an array or the array is empty.
func firstElement(data []byte) (start, end int, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return 0, 0, false
	}
	i = skipSpace(data, i+1)
	if i >= len(data) || data[i] == ']' {
		return 0, 0, false
	}
	end, err := skipValue(data, i)
	if err != nil {
		return 0, 0, false
	}
	return i, end, true
}

// stringEquals reports whether the JSON string literal lit (quotes
// included) decodes to s. Escaped literals take a slow path.
func stringEquals(lit []byte, s string) bool {
	if len(lit) < 2 {
		return false
	}
	inner := lit[1 : len(lit)-1]
	if !hasByte(inner, '\\') {
		return string(inner) == s
	}
	u, ok := unquote(lit)
	return ok && u == s
}

// unquote decodes the JSON string literal lit (quotes included).
func unquote(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	if !hasByte(inner, '\\') {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", false
	}
	return s, true
}

func hasByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// A placeholder is a {"_placeholder":true,"num":N} object found in a
// payload: its bounds and its attachment index (-1 if num is missing or
// not a usable index).
type placeholder struct {
	start, end int
	num        int
}

// findPlaceholders appends to dst every placeholder object in data, in
// document (depth-first) order.
//
// It follows socket.io-parser's reconstructPacket: an object whose last
// "_placeholder" member is the literal true is a placeholder and is replaced
// as a whole, so placeholders nested inside it do not count. Any other
// members it has are ignored.
func findPlaceholders(data []byte, dst []placeholder) ([]placeholder, error) {
	s := phScanner{data: data, out: dst}
	i := skipSpace(data, 0)
	end, err := s.value(i, 0)
	if err != nil {
		return s.out, err
	}
	return s.out, trailing(data, end)
}

type phScanner struct {
	data []byte
	out  []placeholder
}

func (s *phScanner) value(i, depth int) (int, error) {
	if i >= len(s.data) {
		return 0, errMalformed
	}
	switch s.data[i] {
	case '{':
		return s.object(i, depth+1)
	case '[':
		return s.array(i, depth+1)
	default:
		return skipValue(s.data, i)
	}
}

func (s *phScanner) array(i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errMalformed
	}
	d := s.data
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, nil
	}
	for {
		end, err := s.value(i, depth)
		if err != nil {
			return 0, err
		}
		i = skipSpace(d, end)
		if i >= len(d) {
			return 0, errMalformed
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case ']':
			return i + 1, nil
		default:
			return 0, errMalformed
		}
	}
}

func (s *phScanner) object(i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errMalformed
	}
	d := s.data
	start, mark := i, len(s.out)
	isPlaceholder, num := false, -1
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return 0, errMalformed
		}
		keyEnd, err := skipString(d, i)
		if err != nil {
			return 0, err
		}
		key := d[i:keyEnd]
		i = skipSpace(d, keyEnd)
		if i >= len(d) || d[i] != ':' {
			return 0, errMalformed
		}
		i = skipSpace(d, i+1)
		valStart := i
		valEnd, err := s.value(i, depth)
		if err != nil {
			return 0, err
		}
		// Keys are compared decoded; the last duplicate wins, as in JSON.parse.
		if len(key) == len(`"_placeholder"`) || hasByte(key, '\\') {
			if stringEquals(key, "_placeholder") {
				isPlaceholder = string(d[valStart:valEnd]) == "true"
			}
		}
		if len(key) == len(`"num"`) || hasByte(key, '\\') {
			if stringEquals(key, "num") {
				num = parseIndex(d[valStart:valEnd])
			}
		}
		i = skipSpace(d, valEnd)
		if i >= len(d) {
			return 0, errMalformed
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
			continue
		case '}':
			i++
		default:
			return 0, errMalformed
		}
		break
	}
	if isPlaceholder {
		s.out = append(s.out[:mark], placeholder{start: start, end: i, num: num})
	}
	return i, nil
}

// parseIndex returns the attachment index written as the JSON number b, or
// -1 if b is not a number with a non-negative integer value below 1<<31.
// JavaScript compares numbers by value, so 1.0 and 1e0 are index 1 too.
func parseIndex(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			n = -1
			break
		}
		n = n*10 + int(c-'0')
		if n >= 1<<31 {
			return -1
		}
	}
	if n >= 0 {
		return n
	}
	if b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return -1 // not a number: a string, object, true, ...
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 && f != 0 || f >= 1<<31 || f != float64(int(f)) {
		return -1
	}
	return int(f)
}
