package clusterwire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

// Expected bytes below were produced by notepack.io 3.0.1's encode() on
// the equivalent JavaScript values.
var encodeCases = []struct {
	name string
	v    Value
	hex  string
}{
	{"0", Int(0), "00"},
	{"1", Int(1), "01"},
	{"127", Int(127), "7f"},
	{"128", Int(128), "cc80"},
	{"255", Int(255), "ccff"},
	{"256", Int(256), "cd0100"},
	{"65535", Int(65535), "cdffff"},
	{"65536", Int(65536), "ce00010000"},
	{"2^32-1", Int(1<<32 - 1), "ceffffffff"},
	{"2^32", Int(1 << 32), "cf0000000100000000"},
	{"2^53", Int(1 << 53), "cf0020000000000000"},
	{"2^63 uint", Uint(1 << 63), "cf8000000000000000"},
	{"2^64-1 uint", Uint(math.MaxUint64), "cfffffffffffffffff"},
	{"-1", Int(-1), "ff"},
	{"-32", Int(-32), "e0"},
	{"-33", Int(-33), "d0df"},
	{"-128", Int(-128), "d080"},
	{"-129", Int(-129), "d1ff7f"},
	{"-32768", Int(-32768), "d18000"},
	{"-32769", Int(-32769), "d2ffff7fff"},
	{"-2^31", Int(-1 << 31), "d280000000"},
	{"-2^31-1", Int(-1<<31 - 1), "d3ffffffff7fffffff"},
	{"-2^53", Int(-1 << 53), "d3ffe0000000000000"},
	{"-2^63", Int(math.MinInt64), "d38000000000000000"},
	// Floats: non-integers as float 64, integral ones as integers.
	{"1.5", Float(1.5), "cb3ff8000000000000"},
	{"-1.5", Float(-1.5), "cbbff8000000000000"},
	{"0.1", Float(0.1), "cb3fb999999999999a"},
	{"NaN", Float(math.NaN()), "cb7ff8000000000000"},
	{"Inf", Float(math.Inf(1)), "cb7ff0000000000000"},
	{"-Inf", Float(math.Inf(-1)), "cbfff0000000000000"},
	{"-0", Float(math.Copysign(0, -1)), "00"},
	{"5e-324", Float(5e-324), "cb0000000000000001"},
	{"1.0", Float(1), "01"},
	{"300.0", Float(300), "cd012c"},
	{"-3.0", Float(-3), "fd"},
	{"1e19", Float(1e19), "cf8ac7230489e80000"},
	{"2^63 float", Float(1 << 63), "cf8000000000000000"},
	{"-2^63 float", Float(-1 << 63), "d38000000000000000"},
	// notepack.io garbles integral numbers beyond 64 bits; we keep them.
	{"1e300 (deviation)", Float(1e300), "cb7e37e43c8800759c"},
	{"2^64 float (deviation)", Float(1 << 64), "cb43f0000000000000"},
	{"true", Bool(true), "c3"},
	{"false", Bool(false), "c2"},
	{"null", Nil(), "c0"},
	{"undefined", Undefined(), "c0"},
	{"str0", Str(""), "a0"},
	{"str31", Str(strings.Repeat("a", 31)), "bf" + strings.Repeat("61", 31)},
	{"str32", Str(strings.Repeat("a", 32)), "d920" + strings.Repeat("61", 32)},
	{"é", Str("é"), "a2c3a9"},
	{"✓", Str("✓"), "a3e29c93"},
	{"emoji", Str("😀"), "a4f09f9880"},
	{"date 0", Date(0), "d6ff00000000"},
	{"date 1000", Date(1000), "d6ff00000001"},
	{"date -1", Date(-1), "c70cff3b8b87c0ffffffffffffffff"},
	{"date 1.5e12+123", Date(1.5e12 + 123), "d7ff1d53530059682f00"},
	{"date 2^32 s", Date(1 << 32 * 1000), "d7ff0000000100000000"},
	{"date 2^34 s - 1 ms", Date(1<<34*1000 - 1), "d7ffee2e1f03ffffffff"},
	{"date 2^34 s", Date(1 << 34 * 1000), "c70cff000000000000000400000000"},
	{"date max", Date(8.64e15), "c70cff00000000000007dba8218000"},
	{"date min", Date(-8.64e15), "c70cff00000000fffff82457de8000"},
	{"invalid date", InvalidDate(), "c70cff000000000000000000000000"},
	{"bin0", Bin(nil), "c400"},
	{"bin3", Bin([]byte{1, 2, 3}), "c403010203"},
	{"arr0", Array(), "90"},
	{"map0", Map(), "80"},
	{"nested", Map(Member{"a", Array(Int(1), Map(Member{"b", Nil()}))}, Member{"c", Str("d")}), "82a161920181a162c0a163a164"},
	// undefined: omitted from maps, nil in arrays (notepack.io and JSON.stringify).
	{"undefined member", Map(Member{"a", Undefined()}, Member{"b", Int(1)}), "81a16201"},
	{"undefined element", Array(Undefined()), "91c0"},
}

func TestEncodeMsgpack(t *testing.T) {
	for _, c := range encodeCases {
		if got := hex.EncodeToString(EncodeMsgpack(c.v)); got != c.hex {
			t.Errorf("%s: got %s, want %s", c.name, got, c.hex)
		}
	}
}

// TestEncodeMsgpackSizes checks the header at each length boundary
// (prefixes and total lengths from notepack.io).
func TestEncodeMsgpackSizes(t *testing.T) {
	zeros := func(n int) []Value { return make([]Value, n) }
	mapOf := func(n int) Value {
		ms := make([]Member, n)
		for i := range ms {
			ms[i] = Member{Key: "k" + itoa(i), Value: Int(0)}
		}
		return Map(ms...)
	}
	arrayOf := func(n int) Value {
		es := zeros(n)
		for i := range es {
			es[i] = Int(0)
		}
		return Array(es...)
	}
	cases := []struct {
		v      Value
		prefix string
		length int
	}{
		{Str(strings.Repeat("a", 255)), "d9ff61616161", 257},
		{Str(strings.Repeat("a", 256)), "da0100616161", 259},
		{Str(strings.Repeat("a", 65535)), "daffff616161", 65538},
		{Str(strings.Repeat("a", 65536)), "db0001000061", 65541},
		{Bin(make([]byte, 255)), "c4ff00000000", 257},
		{Bin(make([]byte, 256)), "c50100000000", 259},
		{Bin(make([]byte, 65535)), "c5ffff000000", 65538},
		{Bin(make([]byte, 65536)), "c60001000000", 65541},
		{arrayOf(15), "9f0000000000", 16},
		{arrayOf(16), "dc0010000000", 19},
		{arrayOf(65535), "dcffff000000", 65538},
		{arrayOf(65536), "dd0001000000", 65541},
		{mapOf(15), "8fa26b3000a2", 66},
		{mapOf(16), "de0010a26b30", 73},
		{mapOf(65535), "deffffa26b30", 513173},
		{mapOf(65536), "df00010000a2", 513183},
	}
	for _, c := range cases {
		b := EncodeMsgpack(c.v)
		if got := hex.EncodeToString(b[:6]); got != c.prefix || len(b) != c.length {
			t.Errorf("%v of %d: got %s… (%d bytes), want %s… (%d bytes)", c.v.Kind(), c.v.Len(), got, len(b), c.prefix, c.length)
		}
		v, err := DecodeMsgpack(b)
		if err != nil || !v.Equal(c.v) {
			t.Errorf("%v of %d: decode: %v", c.v.Kind(), c.v.Len(), err)
		}
	}
}

func itoa(i int) string { return jsScalarString(Int(int64(i))) }

// TestDecodeMsgpackRoundTrip decodes every encoder case back.
func TestDecodeMsgpackRoundTrip(t *testing.T) {
	for _, c := range encodeCases {
		if c.name == "invalid date" {
			continue // notepack's zero timestamp 96 decodes as the epoch
		}
		b, _ := hex.DecodeString(c.hex)
		v, err := DecodeMsgpack(b)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if again := EncodeMsgpack(v); !bytes.Equal(again, b) {
			t.Errorf("%s: re-encoded %x, want %x", c.name, again, b)
		}
	}
}

func TestDecodeMsgpack(t *testing.T) {
	cases := []struct {
		hex  string
		want Value
	}{
		// Every integer width is accepted.
		{"cc05", Int(5)},
		{"cd0005", Int(5)},
		{"ce00000005", Int(5)},
		{"cf0000000000000005", Int(5)},
		{"cfffffffffffffffff", Uint(math.MaxUint64)},
		{"d0fb", Int(-5)},
		{"d1fffb", Int(-5)},
		{"d2fffffffb", Int(-5)},
		{"d3fffffffffffffffb", Int(-5)},
		{"d30000000000000007", Int(7)}, // Appendix F case 1
		// float 32 is widened.
		{"ca3fc00000", Float(1.5)}, // Appendix F case 1
		{"ca7fc00000", Float(math.NaN())},
		// str 8/16/32 for short strings, bin 16/32 for short binary.
		{"d903616263", Str("abc")},
		{"da0003616263", Str("abc")},
		{"db00000003616263", Str("abc")},
		{"c5000201ff", Bin([]byte{1, 0xff})},
		{"c60000000201ff", Bin([]byte{1, 0xff})},
		{"dc000101", Array(Int(1))},
		{"dd0000000101", Array(Int(1))},
		{"de0001a16101", Map(Member{"a", Int(1)})},
		{"df00000001a16101", Map(Member{"a", Int(1)})},
		// Invalid UTF-8 is replaced as Node.js's Buffer.toString does.
		{"a3e282ff", Str("\ufffd\ufffd")},
		{"a2c0af", Str("\ufffd\ufffd")},
		{"a3eda080", Str("\ufffd\ufffd\ufffd")},
		// Keys are converted with String().
		{"8201a16102a162", Map(Member{"1", Str("a")}, Member{"2", Str("b")})},
		{"82c0c3c2c0", Map(Member{"null", Bool(true)}, Member{"false", Nil()})},
		{"81cb3ff8000000000000c0", Map(Member{"1.5", Nil()})},
		{"81c4026869c0", Map(Member{"hi", Nil()})},
		{"81d782ade4d430d6de47be12", Map(Member{"-126,\ufffd\ufffd\ufffd0\ufffd\ufffdG\ufffd", Int(18)})}, // ext key: [type, Buffer]
		{"8193c0a161c3c0", Map(Member{",a,true", Nil()})},
		{"8180c0", Map(Member{"[object Object]", Nil()})},
		// Duplicate keys are kept in order; Get returns the last one.
		{"82a16101a16102", Map(Member{"a", Int(1)}, Member{"a", Int(2)})},
		// Timestamps (extension -1).
		{"d6ff00000001", Date(1000)},                   // Appendix F case 4
		{"d6ffffffffff", Date(4294967295000)},          // timestamp 32 is unsigned
		{"d7ff1d53530059682f00", Date(1.5e12 + 123)},   // timestamp 64
		{"d7ff0000000100000000", Date(1 << 32 * 1000)}, // 34-bit seconds
		{"d7ff003d090000000000", Date(1)},              // 1e6 ns
		{"d7ff0000000100000000", Date(1 << 32 * 1000)}, // 34-bit seconds
		{"d7ff003d090000000000", Date(1)},              // 1e6 ns
		{"d7fffffffffc00000000", Date(1073)},           // ns up to 2^30-1 is not checked, as in notepack.io
		{"c70cff3b8b87c0ffffffffffffffff", Date(-1)},
		{"c70cff00000000000007dba8218000", Date(8.64e15)},
		{"c70cff00000000000007dba8218001", InvalidDate()},
		{"c70cff000000000000000000000000", Date(0)},
		// Sub-millisecond nanoseconds are truncated toward zero, as new Date() does.
		{"c70cff000f423fffffffffffffffff", Date(-999)},
		// Legacy notepack extension 0: undefined, date in ms, ArrayBuffer.
		{"92d40000c0", Array(Undefined(), Nil())},
		{"82a161d40000a162c0", Map(Member{"a", Undefined()}, Member{"b", Nil()})},
		{"d700ffffffffffffffff", Date(-1)},
		{"d70000000000000003e8", Date(1000)},
		{"c70300010203", Bin([]byte{1, 2, 3})},
		{"c8000300010203", Bin([]byte{1, 2, 3})},
		{"c900000003000102 03", Bin([]byte{1, 2, 3})},
		// Other extensions give [type, binary], as in notepack.io.
		{"d50102aa", Array(Int(1), Bin([]byte{2, 0xaa}))},
		{"d4ff07", Array(Int(-1), Bin([]byte{7}))},
		{"c80001ff01", Array(Int(-1), Bin([]byte{1}))}, // only ext 8 carries timestamp 96
		{"c9000000017f01", Array(Int(127), Bin([]byte{1}))},
		{"d805" + strings.Repeat("00", 16), Array(Int(5), Bin(make([]byte, 16)))},
	}
	for _, c := range cases {
		h := strings.ReplaceAll(c.hex, " ", "")
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", c.hex, err)
		}
		v, err := DecodeMsgpack(b)
		if err != nil {
			t.Errorf("%s: %v", c.hex, err)
			continue
		}
		if !v.Equal(c.want) {
			t.Errorf("%s: got %v, want %v", c.hex, v, c.want)
		}
	}
	dup, _ := DecodeMsgpack([]byte{0x82, 0xa1, 'a', 1, 0xa1, 'a', 2})
	if got := dup.Get("a"); !got.Equal(Int(2)) {
		t.Errorf("Get of a duplicated key: %v, want the last value", got)
	}
}

func TestDecodeMsgpackErrors(t *testing.T) {
	cases := []string{
		"",                  // empty
		"c1",                // never used
		"a3616263ff",        // trailing byte
		"a361",              // short str
		"d9",                // missing length
		"da00",              // short length
		"c403",              // short bin
		"93",                // array of 3 with nothing
		"dd7fffffff01",      // huge claimed array
		"ddffffffff",        // huge claimed array
		"df7fffffff01",      // huge claimed map
		"dbffffffff",        // huge claimed str
		"c6ffffffff",        // huge claimed bin
		"c9ffffffff00",      // huge claimed ext
		"81",                // map without members
		"81a161",            // map member without value
		"81d6ff00000000c0",  // date key
		"c705ff0000000000",  // timestamp 96 of 5 bytes
		"d6ff000000",        // short fixext
		"cb3ff8",            // short float
		"cf00",              // short uint 64
		"92c0",              // short array
		"9f" + "c0",         // short fixarray
		"8f" + "a161c0",     // short fixmap
		"c7",                // ext without length
		"c701",              // ext without type
		"d4",                // fixext without type
		"dc00",              // short array 16 length
		"de0001a161",        // map 16 short
		"ca000000",          // short float 32
		"d20000",            // short int 32
		"c8ffff00" + "0102", // short ext 16
		"df00000002a161c0",  // map 32 short
		"dc0002c0",          // array 16 short
		"c70cff00000000",    // short timestamp 96
		"d7ff0000",          // short timestamp 64
		"d8ff00",            // short fixext 16
		"a1",                // fixstr without byte
		"bf" + "61",         // fixstr 31 with one byte
		"91" + "91" + "91",  // nested, truncated
		"c4ff" + "00",       // bin 8 short
		"c5ffff",            // bin 16 without data
		"cd00",              // short uint 16
		"ce000000",          // short uint 32
		"d1ff",              // short int 16
		"d3ffffffffffffff",  // short int 64
		"d0",                // short int 8
		"cc",                // short uint 8
		"d9ff" + "61",       // str 8 short
	}
	for _, h := range cases {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if v, err := DecodeMsgpack(b); err == nil {
			t.Errorf("%s: decoded %v, want an error", h, v)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v does not wrap ErrMalformed", h, err)
		}
	}
}

func TestDecodeMsgpackDepth(t *testing.T) {
	deep := bytes.Repeat([]byte{0x91}, maxDepth)
	deep = append(deep, 0xc0)
	if _, err := DecodeMsgpack(deep); err != nil {
		t.Errorf("nesting of %d: %v", maxDepth, err)
	}
	deeper := append([]byte{0x91}, deep...)
	if _, err := DecodeMsgpack(deeper); err == nil {
		t.Errorf("nesting of %d decoded", maxDepth+1)
	}
	deepMap := bytes.Repeat([]byte{0x81, 0xa0}, maxDepth+1)
	deepMap = append(deepMap, 0xc0)
	if _, err := DecodeMsgpack(deepMap); err == nil {
		t.Errorf("map nesting of %d decoded", maxDepth+1)
	}
}

// TestDecodeMsgpackAllocation checks that a claimed length larger than the
// input fails before allocating.
func TestDecodeMsgpackAllocation(t *testing.T) {
	for _, h := range []string{"dd7fffffff", "df7fffffff", "db7fffffff", "c67fffffff", "c97fffffff01"} {
		b, _ := hex.DecodeString(h)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			if _, err := DecodeMsgpack(b); err == nil {
				t.Fatalf("%s decoded", h)
			}
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 10*1024 { // the error values only
			t.Errorf("%s: %d bytes allocated by 10 decodes", h, n)
		}
	}
}

func TestDecodeMsgpackSharesInput(t *testing.T) {
	b := []byte{0xc4, 0x02, 1, 2}
	v, err := DecodeMsgpack(b)
	if err != nil {
		t.Fatal(err)
	}
	b[2] = 9
	if v.AsBytes()[0] != 9 {
		t.Error("binary does not share the input")
	}
	if cap(v.AsBytes()) != 2 {
		t.Errorf("binary capacity %d reaches past its bytes", cap(v.AsBytes()))
	}
}
