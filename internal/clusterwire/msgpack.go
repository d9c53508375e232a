package clusterwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every decoding error of this package.
var ErrMalformed = errors.New("clusterwire: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// maxDepth bounds the nesting of decoded values, as parser does for JSON.
const maxDepth = 10000

// EncodeMsgpack returns the MessagePack encoding of v, byte for byte what
// notepack.io 3.0.1 writes for the JavaScript value v stands for (§8 of
// the reference):
//
//   - integers (and integral floats within int64/uint64) in the smallest
//     of positive fixint, uint 8/16/32/64, negative fixint, int 8/16/32/64;
//     -0 as 0;
//   - other floats, NaN and ±Inf as float 64;
//   - strings as fixstr/str 8/16/32, binary as bin 8/16/32;
//   - arrays as fixarray/array 16/32, an undefined element as nil;
//   - maps as fixmap/map 16/32 in member order, skipping undefined members;
//   - dates as the timestamp extension −1: timestamp 32 when the
//     milliseconds are 0 and the seconds fit in 32 bits, timestamp 64 up
//     to 2^34 seconds, timestamp 96 otherwise (and for an invalid date,
//     with zero fields, as notepack does for NaN);
//   - a top-level undefined as nil.
func EncodeMsgpack(v Value) []byte {
	return AppendMsgpack(make([]byte, 0, 64), v)
}

// AppendMsgpack appends the MessagePack encoding of v (see
// [EncodeMsgpack]) to dst and returns the extended buffer.
func AppendMsgpack(dst []byte, v Value) []byte {
	switch v.kind {
	case KindUndefined, KindNil:
		return append(dst, 0xc0)
	case KindBool:
		if v.bits != 0 {
			return append(dst, 0xc3)
		}
		return append(dst, 0xc2)
	case KindInt:
		return appendMsgpackInt(dst, int64(v.bits))
	case KindUint:
		return appendMsgpackUint(dst, v.bits)
	case KindFloat:
		return appendMsgpackNumber(dst, math.Float64frombits(v.bits))
	case KindString:
		return appendMsgpackStr(dst, v.str)
	case KindBinary:
		return appendMsgpackBin(dst, v.bin)
	case KindArray:
		dst = appendMsgpackArrayHeader(dst, len(v.arr))
		for _, e := range v.arr {
			dst = AppendMsgpack(dst, e)
		}
		return dst
	case KindMap:
		n := 0
		for _, m := range v.obj {
			if m.Value.kind != KindUndefined {
				n++
			}
		}
		dst = appendMsgpackMapHeader(dst, n)
		for _, m := range v.obj {
			if m.Value.kind != KindUndefined {
				dst = appendMsgpackStr(dst, m.Key)
				dst = AppendMsgpack(dst, m.Value)
			}
		}
		return dst
	case KindDate:
		return appendMsgpackDate(dst, v)
	}
	return append(dst, 0xc0)
}

func appendMsgpackUint(dst []byte, u uint64) []byte {
	switch {
	case u < 0x80:
		return append(dst, byte(u))
	case u < 0x100:
		return append(dst, 0xcc, byte(u))
	case u < 0x10000:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(u))
	case u < 0x100000000:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), u)
}

func appendMsgpackInt(dst []byte, i int64) []byte {
	if i >= 0 {
		return appendMsgpackUint(dst, uint64(i))
	}
	switch {
	case i >= -0x20:
		return append(dst, byte(i))
	case i >= -0x80:
		return append(dst, 0xd0, byte(i))
	case i >= -0x8000:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(i))
	case i >= -0x80000000:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(i))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(i))
}

// appendMsgpackNumber writes a JavaScript number as notepack.io does:
// integral values as integers, the rest as float 64. Integral values
// beyond the int64/uint64 range, which notepack garbles, are written as
// float 64.
func appendMsgpackNumber(dst []byte, f float64) []byte {
	if f == math.Trunc(f) { // false for NaN; true for ±Inf
		switch {
		case f >= 0 && f < 1<<64:
			return appendMsgpackUint(dst, uint64(f))
		case f < 0 && f >= -(1<<63):
			return appendMsgpackInt(dst, int64(f))
		}
	}
	bits := math.Float64bits(f)
	if f != f {
		bits = canonicalNaN
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcb), bits)
}

func appendMsgpackStr(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 0x20:
		dst = append(dst, 0xa0|byte(n))
	case n < 0x100:
		dst = append(dst, 0xd9, byte(n))
	case n < 0x10000:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

func appendMsgpackBin(dst []byte, b []byte) []byte {
	n := len(b)
	switch {
	case n < 0x100:
		dst = append(dst, 0xc4, byte(n))
	case n < 0x10000:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}

func appendMsgpackArrayHeader(dst []byte, n int) []byte {
	switch {
	case n < 0x10:
		return append(dst, 0x90|byte(n))
	case n < 0x10000:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
}

func appendMsgpackMapHeader(dst []byte, n int) []byte {
	switch {
	case n < 0x10:
		return append(dst, 0x80|byte(n))
	case n < 0x10000:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
}

func appendMsgpackDate(dst []byte, v Value) []byte {
	ms, ok := v.DateMillis()
	if !ok {
		// notepack.io on new Date(NaN): timestamp 96 with every field 0.
		return append(dst, 0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	s := ms / 1000
	if ms%1000 < 0 {
		s-- // floor
	}
	ns := uint32((ms - s*1000) * 1e6)
	switch {
	case s >= 0 && s < 1<<34:
		if ns == 0 && s < 1<<32 {
			return binary.BigEndian.AppendUint32(append(dst, 0xd6, 0xff), uint32(s))
		}
		return binary.BigEndian.AppendUint64(append(dst, 0xd7, 0xff), uint64(ns)<<34|uint64(s))
	}
	dst = binary.BigEndian.AppendUint32(append(dst, 0xc7, 0x0c, 0xff), ns)
	return binary.BigEndian.AppendUint64(dst, uint64(s))
}

// DecodeMsgpack decodes one MessagePack value that must fill b, as
// notepack.io 3.0.1 would, into a Value:
//
//   - every integer width is accepted (uint 64 above math.MaxInt64 gives a
//     KindUint), float 32 is widened to float64;
//   - str is decoded as UTF-8, invalid sequences replaced by U+FFFD as
//     Node.js does; bin gives a KindBinary sharing b's memory;
//   - map keys are strings; numeric, boolean, nil and binary keys are
//     converted as JavaScript's String() would, other keys are an error;
//   - the timestamp extension −1 (timestamp 32 and 64 as fixext 4/8,
//     timestamp 96 as ext 8) gives a KindDate with millisecond precision,
//     invalid beyond ±8.64e15 ms, as JavaScript's Date;
//   - notepack's legacy ext type 0 forms: fixext 1 is undefined, fixext 8
//     is a date in milliseconds, ext 8/16/32 is an ArrayBuffer (binary);
//   - any other extension gives the array [type, binary], as notepack.io.
//
// A length larger than the rest of the input is an error before anything
// is allocated, nesting is limited to 10000 levels, and trailing bytes are
// an error. Errors wrap [ErrMalformed].
func DecodeMsgpack(b []byte) (Value, error) {
	d := msgpackDecoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return Value{}, err
	}
	if d.off != len(b) {
		return Value{}, malformed("%d trailing bytes", len(b)-d.off)
	}
	return v, nil
}

type msgpackDecoder struct {
	b   []byte
	off int
}

func (d *msgpackDecoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, malformed("msgpack: unexpected end of input at offset %d", d.off)
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p, nil
}

func (d *msgpackDecoder) uint(n int) (uint64, error) {
	p, err := d.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	}
	return binary.BigEndian.Uint64(p), nil
}

func (d *msgpackDecoder) value(depth int) (Value, error) {
	if d.off >= len(d.b) {
		return Value{}, malformed("msgpack: unexpected end of input at offset %d", d.off)
	}
	c := d.b[d.off]
	d.off++
	switch {
	case c < 0x80:
		return Int(int64(c)), nil
	case c < 0x90:
		return d.mapOf(int(c&0x0f), depth)
	case c < 0xa0:
		return d.arrayOf(int(c&0x0f), depth)
	case c < 0xc0:
		return d.str(int(c & 0x1f))
	case c >= 0xe0:
		return Int(int64(int8(c))), nil
	}
	switch c {
	case 0xc0:
		return Nil(), nil
	case 0xc2:
		return Bool(false), nil
	case 0xc3:
		return Bool(true), nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.uint(1 << (c - 0xc4))
		if err != nil {
			return Value{}, err
		}
		p, err := d.take(int(min(n, math.MaxInt32+1)))
		if err != nil {
			return Value{}, err
		}
		return Bin(p), nil
	case 0xc7, 0xc8, 0xc9:
		n, err := d.uint(1 << (c - 0xc7))
		if err != nil {
			return Value{}, err
		}
		t, err := d.uint(1)
		if err != nil {
			return Value{}, err
		}
		p, err := d.take(int(min(n, math.MaxInt32+1)))
		if err != nil {
			return Value{}, err
		}
		return extValue(c, int8(t), p)
	case 0xca:
		u, err := d.uint(4)
		return Float(float64(math.Float32frombits(uint32(u)))), err
	case 0xcb:
		u, err := d.uint(8)
		return Float(math.Float64frombits(u)), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		return Uint(u), err
	case 0xd0:
		u, err := d.uint(1)
		return Int(int64(int8(u))), err
	case 0xd1:
		u, err := d.uint(2)
		return Int(int64(int16(u))), err
	case 0xd2:
		u, err := d.uint(4)
		return Int(int64(int32(u))), err
	case 0xd3:
		u, err := d.uint(8)
		return Int(int64(u)), err
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		t, err := d.uint(1)
		if err != nil {
			return Value{}, err
		}
		p, err := d.take(1 << (c - 0xd4))
		if err != nil {
			return Value{}, err
		}
		return extValue(c, int8(t), p)
	case 0xd9, 0xda, 0xdb:
		n, err := d.uint(1 << (c - 0xd9))
		if err != nil {
			return Value{}, err
		}
		return d.str(int(min(n, math.MaxInt32+1)))
	case 0xdc, 0xdd:
		n, err := d.uint(2 << (c - 0xdc))
		if err != nil {
			return Value{}, err
		}
		return d.arrayOf(int(min(n, math.MaxInt32+1)), depth)
	case 0xde, 0xdf:
		n, err := d.uint(2 << (c - 0xde))
		if err != nil {
			return Value{}, err
		}
		return d.mapOf(int(min(n, math.MaxInt32+1)), depth)
	}
	return Value{}, malformed("msgpack: invalid byte 0x%02x at offset %d", c, d.off-1)
}

func (d *msgpackDecoder) str(n int) (Value, error) {
	p, err := d.take(n)
	if err != nil {
		return Value{}, err
	}
	return Str(decodeUTF8(p)), nil
}

func (d *msgpackDecoder) arrayOf(n, depth int) (Value, error) {
	if depth >= maxDepth {
		return Value{}, malformed("msgpack: nesting deeper than %d", maxDepth)
	}
	if n > len(d.b)-d.off { // each element takes at least one byte
		return Value{}, malformed("msgpack: array of %d elements in %d bytes", n, len(d.b)-d.off)
	}
	elems := make([]Value, n)
	for i := range elems {
		e, err := d.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		elems[i] = e
	}
	return Array(elems...), nil
}

func (d *msgpackDecoder) mapOf(n, depth int) (Value, error) {
	if depth >= maxDepth {
		return Value{}, malformed("msgpack: nesting deeper than %d", maxDepth)
	}
	if n > (len(d.b)-d.off)/2 { // each member takes at least two bytes
		return Value{}, malformed("msgpack: map of %d members in %d bytes", n, len(d.b)-d.off)
	}
	members := make([]Member, n)
	for i := range members {
		k, err := d.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		key, err := mapKey(k)
		if err != nil {
			return Value{}, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		members[i] = Member{Key: key, Value: v}
	}
	return Map(members...), nil
}

// mapKey converts a decoded map key to the property name JavaScript uses
// (String(key)). Only date keys, whose string depends on the time zone,
// are refused.
func mapKey(k Value) (string, error) {
	s, ok := appendKeyString(nil, k, false)
	if !ok {
		return "", malformed("msgpack: map key of kind %v", k.kind)
	}
	return string(s), nil
}

// appendKeyString appends String(v); inArray selects Array.prototype.join's
// conversion of elements, where null and undefined are empty.
func appendKeyString(dst []byte, v Value, inArray bool) ([]byte, bool) {
	switch v.kind {
	case KindString:
		return append(dst, v.str...), true
	case KindBinary:
		return append(dst, decodeUTF8(v.bin)...), true // Buffer.prototype.toString
	case KindNil, KindUndefined:
		if inArray {
			return dst, true
		}
	case KindArray:
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendKeyString(dst, e, true); !ok {
				return dst, false
			}
		}
		return dst, true
	case KindMap:
		return append(dst, "[object Object]"...), true
	case KindDate:
		return dst, false
	}
	return append(dst, jsScalarString(v)...), true
}

// extValue decodes an extension as notepack.io 3.0.1 does. c is the
// format byte, t the type, p the data.
func extValue(c byte, t int8, p []byte) (Value, error) {
	switch t {
	case 0:
		switch c {
		case 0xd4: // legacy undefined
			return Value{}, nil
		case 0xd7: // legacy date: signed milliseconds
			ms := int64(binary.BigEndian.Uint64(p))
			return Date(ms), nil
		case 0xc7, 0xc8, 0xc9: // legacy ArrayBuffer
			return Bin(p), nil
		}
	case -1:
		switch c {
		case 0xd6: // timestamp 32
			return Date(int64(binary.BigEndian.Uint32(p)) * 1000), nil
		case 0xd7: // timestamp 64
			u := binary.BigEndian.Uint64(p)
			s, ns := u&(1<<34-1), u>>34
			return dateFromFloat(float64(float64(s)*1e3) + float64(ns)/1e6), nil
		case 0xc7: // timestamp 96
			if len(p) != 12 {
				return Value{}, malformed("msgpack: timestamp 96 of %d bytes", len(p))
			}
			ns := binary.BigEndian.Uint32(p)
			s := int64(binary.BigEndian.Uint64(p[4:]))
			return dateFromFloat(float64(float64(s)*1e3) + float64(ns)/1e6), nil
		}
	}
	return Array(Int(int64(t)), Bin(p)), nil
}

// decodeUTF8 converts b to a string as Node.js's Buffer.toString("utf8")
// (the WHATWG decoder) does: each maximal invalid subpart becomes U+FFFD.
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			out = append(out, c)
			i++
			continue
		}
		// Expected length and the allowed range of the second byte.
		need, lo, hi := 0, byte(0x80), byte(0xbf)
		switch {
		case c >= 0xc2 && c <= 0xdf:
			need = 1
		case c == 0xe0:
			need, lo = 2, 0xa0
		case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
			need = 2
		case c == 0xed:
			need, hi = 2, 0x9f
		case c == 0xf0:
			need, lo = 3, 0x90
		case c >= 0xf1 && c <= 0xf3:
			need = 3
		case c == 0xf4:
			need, hi = 3, 0x8f
		default:
			out = utf8.AppendRune(out, utf8.RuneError)
			i++
			continue
		}
		j := i + 1
		ok := true
		for k := 0; k < need; k++ {
			if j >= len(b) || b[j] < lo || b[j] > hi {
				ok = false
				break
			}
			lo, hi = 0x80, 0xbf
			j++
		}
		if ok {
			out = append(out, b[i:j]...)
		} else {
			out = utf8.AppendRune(out, utf8.RuneError)
		}
		i = j
	}
	return string(out)
}
