package clusterwire

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// Expected strings below are JSON.stringify's output in Node.js 20.

func TestAppendJSONNumbers(t *testing.T) {
	in := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 0.1, 1e21, 1e20, 123456789012345680000, 1e-6, 1e-7, 1.5e-7, -1e-7,
		5e-324, 1.7976931348623157e308, 1 << 53, 1<<53 + 2, 0.000001234, 1e300, -1.5e300, 123.456, 100, 1e6,
		math.NaN(), math.Inf(1), math.Inf(-1)}
	want := `[0,0,1,-1,1.5,0.1,1e+21,100000000000000000000,123456789012345680000,0.000001,1e-7,1.5e-7,-1e-7,` +
		`5e-324,1.7976931348623157e+308,9007199254740992,9007199254740994,0.000001234,1e+300,-1.5e+300,123.456,100,1000000,` +
		`null,null,null]`
	elems := make([]Value, len(in))
	for i, f := range in {
		elems[i] = Float(f)
	}
	if got := string(EncodeJSON(Array(elems...))); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Integers are written exactly, beyond 2^53 too.
	if got := string(EncodeJSON(Array(Int(math.MinInt64), Uint(math.MaxUint64), Int(9007199254740993)))); got != `[-9223372036854775808,18446744073709551615,9007199254740993]` {
		t.Errorf("integers: %s", got)
	}
}

func TestAppendJSONStrings(t *testing.T) {
	s := "a\"b\\c\n\t\r\b\f\u0001\u001f\u007f</script>\u2028\u2029é😀"
	want := `["a\"b\\c\n\t\r\b\f\u0001\u001f` + "\u007f</script>\u2028\u2029é😀" + `"]`
	if got := string(EncodeJSON(Array(Str(s)))); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendJSONDates(t *testing.T) {
	ms := []int64{0, -1, 253402300799999, 253402300800000, -62167219200000, -62167219200001, 8.64e15, -8.64e15}
	want := `["1970-01-01T00:00:00.000Z","1969-12-31T23:59:59.999Z","9999-12-31T23:59:59.999Z","+010000-01-01T00:00:00.000Z",` +
		`"0000-01-01T00:00:00.000Z","-000001-12-31T23:59:59.999Z","+275760-09-13T00:00:00.000Z","-271821-04-20T00:00:00.000Z",null]`
	elems := make([]Value, 0, len(ms)+1)
	for _, m := range ms {
		elems = append(elems, Date(m))
	}
	elems = append(elems, InvalidDate())
	if got := string(EncodeJSON(Array(elems...))); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := FormatISODate(1795362085258); got != "2026-11-22T15:41:25.258Z" {
		t.Errorf("FormatISODate: %s", got)
	}
}

func TestAppendJSONOther(t *testing.T) {
	v := Map(
		Member{"u", Undefined()},
		Member{"a", Array(Undefined(), Nil(), Bool(true), Bin([]byte{1, 255}))},
		Member{"m", Map()},
		Member{"e", Array()},
	)
	want := `{"a":[null,null,true,{"type":"Buffer","data":[1,255]}],"m":{},"e":[]}`
	if got := string(EncodeJSON(v)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := string(EncodeJSON(Undefined())); got != "null" {
		t.Errorf("undefined: %s", got)
	}
}

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		in   string
		want Value
	}{
		{`1`, Int(1)},
		{` -0 `, Int(0)},
		{`1.0`, Float(1)},
		{`1e2`, Float(100)},
		{`-1.5E-3`, Float(-0.0015)},
		{`9223372036854775807`, Int(math.MaxInt64)},
		{`9223372036854775808`, Uint(1 << 63)},
		{`18446744073709551615`, Uint(math.MaxUint64)},
		{`18446744073709551616`, Float(1 << 64)},
		{`-9223372036854775809`, Float(-(1 << 63))},
		{`1e400`, Float(math.Inf(1))},
		{`"\ud83d\ude00\u00e9\/\"\\\b\f\n\r\t"`, Str("😀é/\"\\\b\f\n\r\t")},
		{`"\ud800"`, Str("\ufffd")},
		{`"\udc00\ud800x"`, Str("\ufffd\ufffdx")},
		{`"\ud800\u0041"`, Str("\ufffdA")},
		{"\"\xff\"", Str("\ufffd")},
		{`{"b":1,"a":[true,false,null],"b":{}}`, Map(Member{"b", Int(1)}, Member{"a", Array(Bool(true), Bool(false), Nil())}, Member{"b", Map()})},
		{"[ 1 ,\t2\r\n]", Array(Int(1), Int(2))},
		{`{"_placeholder":true,"num":0}`, Map(Member{"_placeholder", Bool(true)}, Member{"num", Int(0)})},
	}
	for _, c := range cases {
		v, err := DecodeJSON([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !v.Equal(c.want) {
			t.Errorf("%s: got %v, want %v", c.in, v, c.want)
		}
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	for _, in := range []string{"", " ", "[", "[1,]", "{", `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1,}`, "01", "1.", ".5", "-", "+1", "1e",
		"1e+", `"abc`, `"\x"`, `"\u12"`, "\"a\nb\"", "tru", "nul", "[1 2]", `{"a":1 "b":2}`, "1 2", "NaN", "[]]", `"\ud800\u12"`} {
		if v, err := DecodeJSON([]byte(in)); err == nil {
			t.Errorf("%q: decoded %v, want an error", in, v)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: error %v does not wrap ErrMalformed", in, err)
		}
	}
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := DecodeJSON([]byte(deep)); err != nil {
		t.Errorf("nesting of %d: %v", maxDepth, err)
	}
	if _, err := DecodeJSON([]byte("[" + deep + "]")); err == nil {
		t.Errorf("nesting of %d decoded", maxDepth+1)
	}
}

// TestJSONAgreesWithEncodingJSON checks DecodeJSON/EncodeJSON against
// encoding/json on ordinary documents.
func TestJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"headers":{"host":"127.0.0.1:3102","x":"a\u003cb"},"n":[1,-2,3.25,1e-7,true,null],"s":"héllo✓"}`,
		`[[],{},"",0,-0.5,1e21]`,
	} {
		v, err := DecodeJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(EncodeJSON(v), &b); err != nil {
			t.Fatal(err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s:\n got %s\nwant %s", in, jb, ja)
		}
	}
}
