package clusterwire

import (
	"bytes"
	"math"
	"time"
)

// Kind is the type of a [Value]: the JavaScript types a message decoded by
// notepack.io or JSON.parse can hold, plus the integer/float split that Go
// needs.
type Kind uint8

// Value kinds. The zero Value is [KindUndefined].
const (
	// KindUndefined is JavaScript's undefined: the zero Value, the decoded
	// form of notepack's legacy fixext1 type 0. Like notepack.io and
	// JSON.stringify, encoders omit a map member whose value is undefined
	// and write null for an undefined array element. Message fields use it
	// for "absent".
	KindUndefined Kind = iota
	KindNil
	KindBool
	// KindInt is an integer that fits in an int64.
	KindInt
	// KindUint is an integer above math.MaxInt64 (smaller ones are KindInt).
	KindUint
	// KindFloat is a float64 (float32 is widened on decode). The msgpack
	// encoder writes an integral float that fits in an int64 or uint64 as
	// an integer, as notepack.io does for every JavaScript number.
	KindFloat
	KindString
	KindBinary
	KindArray
	KindMap
	// KindDate is a JavaScript Date: milliseconds since the Unix epoch
	// within ±8.64e15, or an invalid date. It is the msgpack timestamp
	// extension (type −1) and notepack's legacy fixext8 type 0.
	KindDate
)

var kindNames = [...]string{"undefined", "nil", "bool", "int", "uint", "float", "string", "binary", "array", "map", "date"}

// String returns the kind's name, such as "map".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// maxDateMillis is the largest magnitude of a valid JavaScript time value
// (ECMAScript TimeClip).
const maxDateMillis = 8.64e15

// invalidDate is the bits of a KindDate Value holding an invalid date; no
// valid time value reaches math.MinInt64.
const invalidDate = 1 << 63 // uint64 bits of math.MinInt64

// A Value is one MessagePack (or JSON) value with the meaning notepack.io
// gives it. Maps keep their members in wire order, duplicates included
// (JavaScript keeps the last value of a duplicated key, see [Value.Get]).
//
// Values are immutable once built: constructors do not copy the slices
// they are given, and accessors return them without copying.
type Value struct {
	kind Kind
	bits uint64 // bool, int64, uint64, float64 bits, date millis
	str  string
	bin  []byte
	arr  []Value
	obj  []Member
}

// A Member is one key/value pair of a map Value.
type Member struct {
	Key   string
	Value Value
}

// Undefined returns the undefined Value (the zero Value).
func Undefined() Value { return Value{} }

// Nil returns the null Value.
func Nil() Value { return Value{kind: KindNil} }

// Bool returns a boolean Value.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.bits = 1
	}
	return v
}

// Int returns an integer Value.
func Int(i int64) Value { return Value{kind: KindInt, bits: uint64(i)} }

// Uint returns an integer Value; it is a KindInt when u fits in an int64.
func Uint(u uint64) Value {
	if u <= math.MaxInt64 {
		return Value{kind: KindInt, bits: u}
	}
	return Value{kind: KindUint, bits: u}
}

// Float returns a float Value. Every NaN is stored as JavaScript's NaN
// (0x7ff8000000000000).
func Float(f float64) Value {
	if f != f {
		return Value{kind: KindFloat, bits: canonicalNaN}
	}
	return Value{kind: KindFloat, bits: math.Float64bits(f)}
}

// canonicalNaN is the NaN V8 writes.
const canonicalNaN = 0x7ff8000000000000

// Str returns a string Value.
func Str(s string) Value { return Value{kind: KindString, str: s} }

// Bin returns a binary Value (a Node.js Buffer). It does not copy b.
func Bin(b []byte) Value {
	if b == nil {
		b = []byte{}
	}
	return Value{kind: KindBinary, bin: b}
}

// Array returns an array Value. It does not copy elems.
func Array(elems ...Value) Value {
	if elems == nil {
		elems = []Value{}
	}
	return Value{kind: KindArray, arr: elems}
}

// Map returns a map Value with members in the given order. It does not
// copy members.
func Map(members ...Member) Value {
	if members == nil {
		members = []Member{}
	}
	return Value{kind: KindMap, obj: members}
}

// Date returns a date Value for a JavaScript time value in milliseconds
// since the Unix epoch. As in JavaScript (new Date(ms)), a value beyond
// ±8.64e15 gives an invalid date.
func Date(ms int64) Value {
	if ms > maxDateMillis || ms < -maxDateMillis {
		return InvalidDate()
	}
	return Value{kind: KindDate, bits: uint64(ms)}
}

// InvalidDate returns the date Value of new Date(NaN).
func InvalidDate() Value { return Value{kind: KindDate, bits: invalidDate} }

// Time returns the date Value of t, truncated to the millisecond.
func Time(t time.Time) Value { return Date(t.UnixMilli()) }

// dateFromFloat mirrors new Date(x) for a float time value: TimeClip
// rejects non-finite and out-of-range values and truncates toward zero.
func dateFromFloat(ms float64) Value {
	if math.IsNaN(ms) || math.Abs(ms) > maxDateMillis {
		return InvalidDate()
	}
	return Date(int64(ms)) // conversion truncates toward zero
}

// Kind returns the kind of v.
func (v Value) Kind() Kind { return v.kind }

// IsUndefined reports whether v is undefined (absent).
func (v Value) IsUndefined() bool { return v.kind == KindUndefined }

// AsBool returns the boolean of a KindBool Value, false otherwise.
func (v Value) AsBool() bool { return v.kind == KindBool && v.bits != 0 }

// Truthy reports whether v is truthy in JavaScript: false for undefined,
// null, false, 0, NaN and "", true otherwise (dates, even invalid ones,
// are objects).
func (v Value) Truthy() bool {
	switch v.kind {
	case KindUndefined, KindNil:
		return false
	case KindBool:
		return v.bits != 0
	case KindInt, KindUint:
		return v.bits != 0
	case KindFloat:
		f := math.Float64frombits(v.bits)
		return f != 0 && !math.IsNaN(f)
	case KindString:
		return v.str != ""
	}
	return true
}

// AsInt returns v as an int64 when it is an integer (or an integral float)
// that fits.
func (v Value) AsInt() (int64, bool) {
	switch v.kind {
	case KindInt:
		return int64(v.bits), true
	case KindFloat:
		f := math.Float64frombits(v.bits)
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			return int64(f), true
		}
	}
	return 0, false
}

// AsFloat returns a number Value as a float64 (the JavaScript number it
// decodes to). ok is false for other kinds.
func (v Value) AsFloat() (f float64, ok bool) {
	switch v.kind {
	case KindInt:
		return float64(int64(v.bits)), true
	case KindUint:
		return float64(v.bits), true
	case KindFloat:
		return math.Float64frombits(v.bits), true
	}
	return 0, false
}

// IsNumber reports whether v is a KindInt, KindUint or KindFloat.
func (v Value) IsNumber() bool {
	return v.kind == KindInt || v.kind == KindUint || v.kind == KindFloat
}

// AsString returns the string of a KindString Value ("" otherwise).
func (v Value) AsString() string { return v.str }

// AsBytes returns the bytes of a KindBinary Value (nil otherwise).
func (v Value) AsBytes() []byte { return v.bin }

// Elems returns the elements of a KindArray Value (nil otherwise).
func (v Value) Elems() []Value { return v.arr }

// Members returns the members of a KindMap Value (nil otherwise).
func (v Value) Members() []Member { return v.obj }

// Len returns the number of elements or members of an array or map, the
// byte length of a string or binary, and 0 otherwise.
func (v Value) Len() int {
	switch v.kind {
	case KindArray:
		return len(v.arr)
	case KindMap:
		return len(v.obj)
	case KindString:
		return len(v.str)
	case KindBinary:
		return len(v.bin)
	}
	return 0
}

// Get returns the value of key in a map Value. As in JavaScript, the last
// of duplicated keys wins. It returns the undefined Value when v is not a
// map or has no such key.
func (v Value) Get(key string) Value {
	for i := len(v.obj) - 1; i >= 0; i-- {
		if v.obj[i].Key == key {
			return v.obj[i].Value
		}
	}
	return Value{}
}

// DateMillis returns the time value of a valid KindDate Value.
func (v Value) DateMillis() (ms int64, ok bool) {
	if v.kind != KindDate || v.bits == invalidDate {
		return 0, false
	}
	return int64(v.bits), true
}

// Time returns a valid KindDate Value as a UTC time.Time.
func (v Value) Time() (time.Time, bool) {
	ms, ok := v.DateMillis()
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

// HasBinary reports whether v holds a binary value at any depth, as
// socket.io's hasBinary does (dates do not count).
func (v Value) HasBinary() bool {
	switch v.kind {
	case KindBinary:
		return true
	case KindArray:
		for _, e := range v.arr {
			if e.HasBinary() {
				return true
			}
		}
	case KindMap:
		for _, m := range v.obj {
			if m.Value.HasBinary() {
				return true
			}
		}
	}
	return false
}

// Equal reports whether v and w are the same value: same kind, same
// contents, map members in the same order. Floats compare by bits, so NaN
// equals NaN and 0 differs from -0.
func (v Value) Equal(w Value) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case KindUndefined, KindNil:
		return true
	case KindString:
		return v.str == w.str
	case KindBinary:
		return bytes.Equal(v.bin, w.bin)
	case KindArray:
		if len(v.arr) != len(w.arr) {
			return false
		}
		for i := range v.arr {
			if !v.arr[i].Equal(w.arr[i]) {
				return false
			}
		}
		return true
	case KindMap:
		if len(v.obj) != len(w.obj) {
			return false
		}
		for i := range v.obj {
			if v.obj[i].Key != w.obj[i].Key || !v.obj[i].Value.Equal(w.obj[i].Value) {
				return false
			}
		}
		return true
	}
	return v.bits == w.bits
}

// String returns a JSON-like view of v for logs and tests: binary as
// "<bin HEX>", dates as ISO strings, undefined as "undefined".
func (v Value) String() string {
	return string(appendView(nil, v))
}
