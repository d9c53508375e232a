package clusterwire

import (
	"encoding/hex"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeJSON parses one JSON text (RFC 8259, as JSON.parse accepts it)
// into a Value, keeping object members in order.
//
// Numbers without a fraction or exponent that fit in an int64 or uint64
// give integers, exactly; other numbers give floats (±Inf when they
// overflow, as in JavaScript). Invalid UTF-8 and lone surrogate escapes
// become U+FFFD. Nesting is limited to 10000 levels. Errors wrap
// [ErrMalformed].
func DecodeJSON(data []byte) (Value, error) {
	p := jsonParser{b: data}
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.space()
	if p.off != len(p.b) {
		return Value{}, malformed("json: trailing data at offset %d", p.off)
	}
	return v, nil
}

type jsonParser struct {
	b   []byte
	off int
	// Placeholder substitution (DataToValue): attachments to substitute,
	// and whether placeholders are recognised at all.
	atts     [][]byte
	withAtts bool
}

func (p *jsonParser) space() {
	for p.off < len(p.b) {
		switch p.b[p.off] {
		case ' ', '\t', '\n', '\r':
			p.off++
		default:
			return
		}
	}
}

func (p *jsonParser) errorf(what string) error {
	return malformed("json: %s at offset %d", what, p.off)
}

func (p *jsonParser) literal(lit string, v Value) (Value, error) {
	if len(p.b)-p.off < len(lit) || string(p.b[p.off:p.off+len(lit)]) != lit {
		return Value{}, p.errorf("invalid literal")
	}
	p.off += len(lit)
	return v, nil
}

func (p *jsonParser) value(depth int) (Value, error) {
	p.space()
	if p.off >= len(p.b) {
		return Value{}, p.errorf("unexpected end of input")
	}
	switch c := p.b[p.off]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return Str(s), err
	case c == 't':
		return p.literal("true", Bool(true))
	case c == 'f':
		return p.literal("false", Bool(false))
	case c == 'n':
		return p.literal("null", Nil())
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return Value{}, p.errorf("unexpected character")
}

func (p *jsonParser) array(depth int) (Value, error) {
	if depth >= maxDepth {
		return Value{}, p.errorf("nesting too deep")
	}
	p.off++ // [
	var elems []Value
	p.space()
	if p.off < len(p.b) && p.b[p.off] == ']' {
		p.off++
		return Array(), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		elems = append(elems, v)
		p.space()
		if p.off >= len(p.b) {
			return Value{}, p.errorf("unexpected end of input")
		}
		switch p.b[p.off] {
		case ',':
			p.off++
		case ']':
			p.off++
			return Array(elems...), nil
		default:
			return Value{}, p.errorf("expected , or ]")
		}
	}
}

func (p *jsonParser) object(depth int) (Value, error) {
	if depth >= maxDepth {
		return Value{}, p.errorf("nesting too deep")
	}
	p.off++ // {
	var members []Member
	p.space()
	if p.off < len(p.b) && p.b[p.off] == '}' {
		p.off++
		return Map(), nil
	}
	for {
		p.space()
		if p.off >= len(p.b) || p.b[p.off] != '"' {
			return Value{}, p.errorf("expected object key")
		}
		k, err := p.string()
		if err != nil {
			return Value{}, err
		}
		p.space()
		if p.off >= len(p.b) || p.b[p.off] != ':' {
			return Value{}, p.errorf("expected :")
		}
		p.off++
		v, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		members = append(members, Member{Key: k, Value: v})
		p.space()
		if p.off >= len(p.b) {
			return Value{}, p.errorf("unexpected end of input")
		}
		switch p.b[p.off] {
		case ',':
			p.off++
		case '}':
			p.off++
			obj := Map(members...)
			if p.withAtts {
				return p.placeholder(obj)
			}
			return obj, nil
		default:
			return Value{}, p.errorf("expected , or }")
		}
	}
}

// placeholder replaces obj by its attachment if it is a socket.io binary
// placeholder: _placeholder is true (socket.io-parser's test). Its num
// must then index the attachments.
func (p *jsonParser) placeholder(obj Value) (Value, error) {
	if ph := obj.Get("_placeholder"); ph.kind != KindBool || ph.bits == 0 {
		return obj, nil
	}
	num, ok := obj.Get("num").AsInt()
	if !ok || num < 0 || num >= int64(len(p.atts)) {
		return Value{}, malformed("illegal attachments: placeholder %v with %d attachments", obj.Get("num"), len(p.atts))
	}
	return Bin(p.atts[num]), nil
}

func (p *jsonParser) string() (string, error) {
	p.off++ // opening quote
	start := p.off
	// Fast path: no escapes, valid UTF-8.
	for p.off < len(p.b) {
		c := p.b[p.off]
		if c == '"' {
			s := p.b[start:p.off]
			p.off++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return decodeUTF8(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in string")
		}
		p.off++
	}
	buf := append([]byte(nil), p.b[start:p.off]...)
	for p.off < len(p.b) {
		c := p.b[p.off]
		switch {
		case c == '"':
			p.off++
			return decodeUTF8(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.off++
			continue
		}
		// Escape.
		if p.off+1 >= len(p.b) {
			return "", p.errorf("unexpected end of input")
		}
		e := p.b[p.off+1]
		p.off += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if r < 0xdc00 && p.off+1 < len(p.b) && p.b[p.off] == '\\' && p.b[p.off+1] == 'u' {
					save := p.off
					p.off += 2
					lo, ok := p.hex4()
					if !ok {
						return "", p.errorf("invalid \\u escape")
					}
					if r2 = utf16.DecodeRune(r, lo); r2 == utf8.RuneError {
						p.off = save // lone high surrogate: the next escape stands alone
					}
				}
				r = r2
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("invalid escape")
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.b)-p.off < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.off : p.off+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.off += 4
	return r, true
}

func (p *jsonParser) number() (Value, error) {
	start := p.off
	if p.b[p.off] == '-' {
		p.off++
	}
	digits := func() int {
		n := 0
		for p.off < len(p.b) && p.b[p.off] >= '0' && p.b[p.off] <= '9' {
			p.off++
			n++
		}
		return n
	}
	intStart := p.off
	n := digits()
	if n == 0 || n > 1 && p.b[intStart] == '0' {
		return Value{}, p.errorf("invalid number")
	}
	integer := true
	if p.off < len(p.b) && p.b[p.off] == '.' {
		p.off++
		if digits() == 0 {
			return Value{}, p.errorf("invalid number")
		}
		integer = false
	}
	if p.off < len(p.b) && (p.b[p.off] == 'e' || p.b[p.off] == 'E') {
		p.off++
		if p.off < len(p.b) && (p.b[p.off] == '+' || p.b[p.off] == '-') {
			p.off++
		}
		if digits() == 0 {
			return Value{}, p.errorf("invalid number")
		}
		integer = false
	}
	text := string(p.b[start:p.off])
	if integer {
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return Int(i), nil
		}
		if u, err := strconv.ParseUint(text, 10, 64); err == nil {
			return Uint(u), nil
		}
	}
	f, _ := strconv.ParseFloat(text, 64) // ±Inf on overflow, as JSON.parse
	return Float(f), nil
}

// EncodeJSON returns v as JSON.stringify writes the JavaScript value v
// stands for. See [AppendJSON].
func EncodeJSON(v Value) []byte {
	return AppendJSON(make([]byte, 0, 64), v)
}

// AppendJSON appends v to dst as JSON.stringify would write it and returns
// the extended buffer: no whitespace, map members in order with undefined
// members left out, undefined array elements as null, numbers as
// JavaScript prints them (integers exactly, NaN and ±Inf as null, -0 as
// 0), strings escaped as JSON.stringify does (no HTML escaping), dates as
// toISOString() (null if invalid), and binary as Node.js's Buffer.toJSON:
// {"type":"Buffer","data":[...]}. A top-level undefined gives null.
func AppendJSON(dst []byte, v Value) []byte {
	return appendJSON(dst, v, nil)
}

// appendJSON writes v; with atts non-nil, binary values become socket.io
// placeholders numbered in depth-first order and are appended to *atts.
func appendJSON(dst []byte, v Value, atts *[][]byte) []byte {
	switch v.kind {
	case KindUndefined, KindNil:
		return append(dst, "null"...)
	case KindBool:
		return strconv.AppendBool(dst, v.bits != 0)
	case KindInt:
		return strconv.AppendInt(dst, int64(v.bits), 10)
	case KindUint:
		return strconv.AppendUint(dst, v.bits, 10)
	case KindFloat:
		f := math.Float64frombits(v.bits)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...)
		}
		return appendJSNumber(dst, f)
	case KindString:
		return appendJSONString(dst, v.str)
	case KindBinary:
		if atts != nil {
			dst = append(dst, `{"_placeholder":true,"num":`...)
			dst = strconv.AppendInt(dst, int64(len(*atts)), 10)
			*atts = append(*atts, v.bin)
			return append(dst, '}')
		}
		dst = append(dst, `{"type":"Buffer","data":[`...)
		for i, c := range v.bin {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(dst, uint64(c), 10)
		}
		return append(dst, "]}"...)
	case KindArray:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, e, atts)
		}
		return append(dst, ']')
	case KindMap:
		dst = append(dst, '{')
		first := true
		for _, m := range v.obj {
			if m.Value.kind == KindUndefined {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, m.Key)
			dst = append(dst, ':')
			dst = appendJSON(dst, m.Value, atts)
		}
		return append(dst, '}')
	case KindDate:
		ms, ok := v.DateMillis()
		if !ok {
			return append(dst, "null"...)
		}
		dst = append(dst, '"')
		dst = appendISODate(dst, ms)
		return append(dst, '"')
	}
	return append(dst, "null"...)
}

// appendJSNumber appends a finite f as JavaScript's Number.prototype.
// toString does: the shortest round-trip digits, in exponent form below
// 1e-6 and from 1e21 on.
func appendJSNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // also -0
	}
	abs := math.Abs(f)
	if abs < 1e-6 || abs >= 1e21 {
		start := len(dst)
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// Go writes e-07; JavaScript writes e-7.
		n := len(dst)
		if n-start >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// jsScalarString returns String(v) in JavaScript for a scalar v.
func jsScalarString(v Value) string {
	switch v.kind {
	case KindUndefined:
		return "undefined"
	case KindNil:
		return "null"
	case KindBool:
		return strconv.FormatBool(v.bits != 0)
	case KindInt:
		return strconv.FormatInt(int64(v.bits), 10)
	case KindUint:
		return strconv.FormatUint(v.bits, 10)
	case KindFloat:
		f := math.Float64frombits(v.bits)
		switch {
		case math.IsNaN(f):
			return "NaN"
		case math.IsInf(f, 1):
			return "Infinity"
		case math.IsInf(f, -1):
			return "-Infinity"
		}
		return string(appendJSNumber(nil, f))
	case KindString:
		return v.str
	}
	return ""
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as JSON.stringify does: only ", \ and
// control characters are escaped (\b \f \n \r \t or \u00xx). Invalid
// UTF-8 (which no decoder of this package produces) is replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = decodeUTF8([]byte(s))
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// FormatISODate formats a JavaScript time value (milliseconds since the
// Unix epoch) as Date.prototype.toISOString does:
// 1970-01-01T00:00:00.000Z, with a six-digit signed year outside 0–9999.
func FormatISODate(ms int64) string {
	return string(appendISODate(nil, ms))
}

func appendISODate(dst []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	year := t.Year()
	switch {
	case year < 0:
		dst = append(dst, '-')
		dst = appendPadded(dst, -year, 6)
	case year > 9999:
		dst = append(dst, '+')
		dst = appendPadded(dst, year, 6)
	default:
		dst = appendPadded(dst, year, 4)
	}
	dst = append(dst, '-')
	dst = appendPadded(dst, int(t.Month()), 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, t.Day(), 2)
	dst = append(dst, 'T')
	dst = appendPadded(dst, t.Hour(), 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, t.Minute(), 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, t.Second(), 2)
	dst = append(dst, '.')
	dst = appendPadded(dst, t.Nanosecond()/1e6, 3)
	return append(dst, 'Z')
}

func appendPadded(dst []byte, n, width int) []byte {
	var buf [20]byte
	s := strconv.AppendInt(buf[:0], int64(n), 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// appendView writes the debugging view of Value.String: JSON with binary
// as "<bin HEX>", dates as ISO strings and undefined spelled out.
func appendView(dst []byte, v Value) []byte {
	switch v.kind {
	case KindUndefined:
		return append(dst, "undefined"...)
	case KindBinary:
		dst = append(dst, `"<bin `...)
		dst = hex.AppendEncode(dst, v.bin)
		return append(dst, `>"`...)
	case KindArray:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendView(dst, e)
		}
		return append(dst, ']')
	case KindMap:
		dst = append(dst, '{')
		for i, m := range v.obj {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, m.Key)
			dst = append(dst, ':')
			dst = appendView(dst, m.Value)
		}
		return append(dst, '}')
	case KindDate:
		if _, ok := v.DateMillis(); !ok {
			return append(dst, `"Invalid Date"`...)
		}
	}
	return appendJSON(dst, v, nil)
}
