package parser

import (
	"encoding/json"
	"math"
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
	// An explicit stack instead of recursion keeps dst (often a stack
	// array of the caller) from escaping to the heap.
	var stackBuf [16]phFrame
	stack := stackBuf[:0]
	out := dst
	i := skipSpace(data, 0)
	for {
		// A value starts at i.
		if i >= len(data) {
			return out, errMalformed
		}
		var vs, ve int // bounds of the value just completed
		switch data[i] {
		case '{', '[':
			if len(stack) >= maxDepth {
				return out, errMalformed
			}
			obj := data[i] == '{'
			stack = append(stack, phFrame{start: i, mark: len(out), num: -1, obj: obj})
			j := skipSpace(data, i+1)
			if j < len(data) && (obj && data[j] == '}' || !obj && data[j] == ']') {
				stack = stack[:len(stack)-1]
				vs, ve = i, j+1
				break
			}
			if obj {
				var err error
				if j, err = readKey(data, j, &stack[len(stack)-1]); err != nil {
					return out, err
				}
			}
			i = j
			continue
		default:
			end, err := skipValue(data, i)
			if err != nil {
				return out, err
			}
			vs, ve = i, end
		}
		// A value [vs, ve) is complete: give it to its container, then
		// close containers as long as the input does.
		for {
			if len(stack) == 0 {
				return out, trailing(data, ve)
			}
			top := &stack[len(stack)-1]
			switch top.key {
			case keyPlaceholder:
				top.isPH = string(data[vs:ve]) == "true"
			case keyNum:
				top.num = parseIndex(data[vs:ve])
			}
			top.key = keyOther
			i = skipSpace(data, ve)
			if i >= len(data) {
				return out, errMalformed
			}
			if data[i] == ',' {
				i = skipSpace(data, i+1)
				if top.obj {
					var err error
					if i, err = readKey(data, i, top); err != nil {
						return out, err
					}
				}
				break // next value
			}
			if top.obj && data[i] != '}' || !top.obj && data[i] != ']' {
				return out, errMalformed
			}
			f := *top
			stack = stack[:len(stack)-1]
			vs, ve = f.start, i+1
			if f.isPH {
				out = append(out[:f.mark], placeholder{start: f.start, end: ve, num: f.num})
			}
		}
	}
}

const (
	keyOther = iota
	keyPlaceholder
	keyNum
)

// A phFrame is an open container in findPlaceholders.
type phFrame struct {
	start, mark int // where it starts; len(out) when it started
	num         int // last "num" member, parsed
	key         int // the member whose value comes next
	obj, isPH   bool
}

// readKey reads the object key at b[i] and the colon after it, records
// what the key is in f, and returns the index of the member value.
// Keys are compared decoded; the last duplicate wins, as in JSON.parse.
func readKey(b []byte, i int, f *phFrame) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errMalformed
	}
	end, err := skipString(b, i)
	if err != nil {
		return 0, err
	}
	key := b[i:end]
	switch {
	case (len(key) == len(`"_placeholder"`) || hasByte(key, '\\')) && stringEquals(key, "_placeholder"):
		f.key = keyPlaceholder
	case (len(key) == len(`"num"`) || hasByte(key, '\\')) && stringEquals(key, "num"):
		f.key = keyNum
	default:
		f.key = keyOther
	}
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return 0, errMalformed
	}
	return skipSpace(b, i+1), nil
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
		d := int(c - '0')
		if n > (math.MaxInt32-d)/10 {
			return -1 // beyond int32, checked before it could overflow a 32-bit int
		}
		n = n*10 + d
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
