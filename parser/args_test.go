package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// stdJSON encodes v as encoding/json with HTML escaping off.
func stdJSON(t testing.TB, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding/json(%#v): %v", v, err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// TestMarshalArgsMatchesEncodingJSON checks that values without binary,
// fast path or not, are written exactly as encoding/json writes them.
func TestMarshalArgsMatchesEncodingJSON(t *testing.T) {
	type inner struct {
		N int     `json:"n"`
		F float64 `json:"f,omitempty"`
	}
	type outer struct {
		Name  string
		Tags  []string `json:"tags"`
		In    *inner   `json:"in,omitempty"`
		Skip  string   `json:"-"`
		Any   any
		inner // promoted fields
		hide  int
	}
	values := []any{
		nil, true, false, "", "plain", `quote " backslash \ slash /`,
		"<html> & 'single'", "\x00\x01\x1f\x7f\b\f\n\r\t", "\u2028\u2029 é 日本 🎉",
		"bad utf8 \xff\xfe end", string([]byte{0xe2, 0x82}),
		0, -1, int64(math.MaxInt64), int64(math.MinInt64), uint64(math.MaxUint64), int8(-8), uint16(65535), uintptr(7),
		0.0, -0.0, 1.5, 1e20, 1e21, 1e-6, 1e-7, 123456789.123, math.MaxFloat64, math.SmallestNonzeroFloat64,
		float32(1.1), float32(1e21), float32(1e-7), float32(3.4e38),
		[]any{}, []any{1, "a", nil, []any{true}}, map[string]any{}, map[string]any{"b": 1, "a": []any{"x"}, "é": nil, "<": ">"},
		[]any(nil), map[string]any(nil),
		json.RawMessage(`{"a":1}`),
		[]string{"a", "b"}, map[string]int{"z": 1, "a": 2}, [2]int{1, 2}, []int(nil),
		outer{Name: "n", Tags: []string{"t"}, In: &inner{N: 1}, Skip: "x", Any: map[string]any{"k": 1.5}, inner: inner{N: 2, F: 3}, hide: 4},
		&outer{}, time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), json.Number("12.5"),
		map[int]string{2: "b", 10: "a"},
	}
	for _, v := range values {
		got, atts, err := MarshalArgs(v)
		if err != nil {
			t.Errorf("MarshalArgs(%#v) error: %v", v, err)
			continue
		}
		if want := "[" + stdJSON(t, v) + "]"; string(got) != want {
			t.Errorf("MarshalArgs(%#v) = %s, want %s", v, got, want)
		}
		if len(atts) != 0 {
			t.Errorf("MarshalArgs(%#v) attachments = %d", v, len(atts))
		}
	}
	// Several args and an event name.
	got, _, err := MarshalEvent("ev<>", 1, "2", map[string]any{"3": []any{true}})
	if want := `["ev<>",1,"2",{"3":[true]}]`; err != nil || string(got) != want {
		t.Errorf("MarshalEvent = %s, %v; want %s", got, err, want)
	}
	got, _, err = MarshalArgs()
	if err != nil || string(got) != "[]" {
		t.Errorf("MarshalArgs() = %s, %v", got, err)
	}
	got, _, err = MarshalEvent("x")
	if err != nil || string(got) != `["x"]` {
		t.Errorf(`MarshalEvent("x") = %s, %v`, got, err)
	}
}

func TestMarshalArgsErrors(t *testing.T) {
	cyclic := []any{nil}
	cyclic[0] = cyclic
	type node struct {
		Data []byte
		Next *node
	}
	loop := &node{Data: []byte{1}}
	loop.Next = loop
	for _, v := range []any{
		math.NaN(), math.Inf(1), float32(math.Inf(-1)),
		json.RawMessage(`{`), json.RawMessage(`1 2`),
		cyclic, loop,
		make(chan int), func() {},
		Arg{JSON: raw(`[`), Attachments: att1},
		Arg{JSON: raw(`{"_placeholder":true,"num":3}`), Attachments: att1},
		map[string]any{"a": []any{math.NaN()}},
	} {
		if data, _, err := MarshalArgs(v); err == nil {
			t.Errorf("MarshalArgs(%T) = %s, nil error", v, data)
		}
	}
}

type blob []byte

type withBinary struct {
	Name  string            `json:"name"`
	Data  []byte            `json:"data"`
	Nil   []byte            `json:"nil"`
	Blob  blob              `json:"blob,omitempty"`
	Map   map[string][]byte `json:"map"`
	Any   any               `json:"any"`
	Ptr   *withBinary       `json:"ptr,omitempty"`
	Raw   json.RawMessage   `json:"raw"`
	Skip  []byte            `json:"-"`
	Arg   Arg               `json:"arg"`
	Array [2][]byte         `json:"array"`
	embedded
}

type embedded struct {
	Emb []byte `json:"emb"`
}

func ph(n int) string { return `{"_placeholder":true,"num":` + itoa(n) + `}` }

func TestMarshalArgsBinary(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	newValue := func() withBinary {
		return withBinary{
			Name:     "n",
			Data:     b("data"),
			Blob:     blob("blob"),
			Map:      map[string][]byte{"z": b("mz"), "a": b("ma"), "n": nil},
			Any:      []any{b("any0"), map[string]any{"k": b("any1")}},
			Ptr:      &withBinary{Data: b("inner")},
			Raw:      json.RawMessage(`{"raw":"verbatim"}`),
			Skip:     b("skip"),
			Arg:      Arg{JSON: raw(`{"x":{"_placeholder":true,"num":1}}`), Attachments: [][]byte{b("no"), b("arg")}},
			Array:    [2][]byte{b("arr0"), nil},
			embedded: embedded{Emb: b("emb")},
		}
	}
	v := newValue()
	data, atts, err := MarshalArgs("first", b("top"), v, []any{b("last")})
	if err != nil {
		t.Fatal(err)
	}
	want := `["first",` + ph(0) + `,{"name":"n","data":` + ph(1) + `,"nil":null,"blob":` + ph(2) +
		`,"map":{"a":` + ph(3) + `,"n":null,"z":` + ph(4) + `},"any":[` + ph(5) + `,{"k":` + ph(6) + `}]` +
		`,"ptr":{"name":"","data":` + ph(7) + `,"nil":null,"map":null,"any":null,"raw":null,"arg":null,"array":[null,null],"emb":null}` +
		`,"raw":{"raw":"verbatim"},"arg":{"x":` + ph(8) + `},"array":[` + ph(9) + `,null],"emb":` + ph(10) + `},[` + ph(11) + `]]`
	if string(data) != want {
		t.Errorf("MarshalArgs =\n%s\nwant\n%s", data, want)
	}
	wantAtts := []string{"top", "data", "blob", "ma", "mz", "any0", "any1", "inner", "arg", "arr0", "emb", "last"}
	if len(atts) != len(wantAtts) {
		t.Fatalf("attachments = %q, want %q", atts, wantAtts)
	}
	for i, w := range wantAtts {
		if string(atts[i]) != w {
			t.Errorf("attachment %d = %q, want %q", i, atts[i], w)
		}
	}
	if !reflect.DeepEqual(v, newValue()) {
		t.Errorf("MarshalArgs modified its argument: %#v", v)
	}
	// Buffers are not copied.
	if &atts[1][0] != &v.Data[0] {
		t.Error("attachment was copied")
	}
}

func TestMarshalArgsBinaryFastPath(t *testing.T) {
	data, atts, err := MarshalEvent("e", []byte{}, []byte(nil), map[string]any{"b": []byte{2}, "a": []any{[]byte{1}}}, []byte{3})
	want := `["e",` + ph(0) + `,null,{"a":[` + ph(1) + `],"b":` + ph(2) + `},` + ph(3) + `]`
	if err != nil || string(data) != want {
		t.Fatalf("MarshalEvent = %s, %v; want %s", data, err, want)
	}
	if len(atts) != 4 || len(atts[0]) != 0 || atts[1][0] != 1 || atts[2][0] != 2 || atts[3][0] != 3 {
		t.Errorf("attachments = %v", atts)
	}
}

// TestEcho covers the suite's binary echo: the received args, passed back
// as Args, reproduce the placeholders exactly (§3.3).
func TestEcho(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		ack     bool
	}{
		{`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			`52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, false},
		{`52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, true},
		{`2["message",1,"2",{"3":[true]}]`, `2["message-back",1,"2",{"3":[true]}]`, false},
		{`2456["message-with-ack",1,"2",{"3":[false]}]`, `3456[1,"2",{"3":[false]}]`, true},
		{`2/custom,["message", 1.0, {"b":1,"a":2}, "\u00e9"]`, `2/custom,["message-back",1.0,{"b":1,"a":2},"\u00e9"]`, false},
		// Unusual key order and spacing in placeholders survive too.
		{`52-["message",{ "num":0, "_placeholder":true },[{"_placeholder":true,"num":1}]]`,
			`52-["message-back",{ "num":0, "_placeholder":true },[{"_placeholder":true,"num":1}]]`, false},
	} {
		atts := [][]byte{{1, 2, 3}, {4, 5, 6}}
		if !strings.HasPrefix(tt.in, "52") {
			atts = nil
		}
		p, err := decodeAll(t, tt.in, atts...)
		if err != nil {
			t.Fatalf("decode(%q): %v", tt.in, err)
		}
		args, err := p.Args()
		if err != nil {
			t.Fatal(err)
		}
		anyArgs := make([]any, len(args))
		for i, a := range args {
			anyArgs[i] = a
		}
		var out *Packet
		if tt.ack {
			out, err = NewAck(p.Namespace, p.ID, anyArgs...)
		} else {
			out, err = NewEvent(p.Namespace, "message-back", anyArgs...)
		}
		if err != nil {
			t.Fatal(err)
		}
		text, outAtts, err := Encode(out)
		if err != nil || string(text) != tt.out {
			t.Errorf("echo of %q = %q, %v; want %q", tt.in, text, err, tt.out)
		}
		if !attachmentsEqual(outAtts, atts) {
			t.Errorf("echo of %q attachments = %v, want %v", tt.in, outAtts, atts)
		}
	}
}

// TestArgRenumbering re-sends arguments out of order and mixed with new
// binary values: placeholders get new numbers, buffers follow.
func TestArgRenumbering(t *testing.T) {
	p, err := decodeAll(t, `53-["m",{"_placeholder":true,"num":2},{"a":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]`,
		[]byte("A"), []byte("B"), []byte("C"))
	if err != nil {
		t.Fatal(err)
	}
	args, _ := p.Args()
	data, atts, err := MarshalArgs([]byte("new"), args[1], map[string]any{"x": args[0]}, args[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `[` + ph(0) + `,{"a":[` + ph(1) + `,` + ph(2) + `]},{"x":` + ph(3) + `},` + ph(4) + `]`
	if string(data) != want {
		t.Errorf("MarshalArgs = %s, want %s", data, want)
	}
	if got := string(bytes.Join(atts, []byte(","))); got != "new,A,B,C,C" {
		t.Errorf("attachments = %s", got)
	}
	// Inside a struct, through encoding/json.
	type wrap struct {
		A Arg  `json:"a"`
		P *Arg `json:"p"`
		I any  `json:"i"`
	}
	data, atts, err = MarshalArgs(wrap{A: args[1], P: &args[0], I: args[0]})
	want = `[{"a":{"a":[` + ph(0) + `,` + ph(1) + `]},"p":` + ph(2) + `,"i":` + ph(3) + `}]`
	if err != nil || string(data) != want {
		t.Errorf("MarshalArgs(struct) = %s, %v; want %s", data, err, want)
	}
	if got := string(bytes.Join(atts, []byte(","))); got != "A,B,C,C" {
		t.Errorf("attachments = %s", got)
	}
	// Outside MarshalArgs, an Arg with placeholders refuses to marshal.
	if _, err := json.Marshal(args[0]); err == nil {
		t.Error("json.Marshal(Arg with placeholder) = nil error")
	}
	if b, err := json.Marshal(Arg{JSON: raw(`[1]`), Attachments: att1}); err != nil || string(b) != `[1]` {
		t.Errorf("json.Marshal(Arg without placeholder) = %s, %v", b, err)
	}
	if b, err := json.Marshal(Arg{}); err != nil || string(b) != `null` {
		t.Errorf("json.Marshal(Arg{}) = %s, %v", b, err)
	}
}

func TestArgBytes(t *testing.T) {
	for _, tt := range []struct {
		json string
		atts [][]byte
		want string
		ok   bool
	}{
		{`{"_placeholder":true,"num":1}`, [][]byte{[]byte("a"), []byte("b")}, "b", true},
		{` {"_placeholder":true,"num":0} `, att1, "\x01\x02\x03", true},
		{`{"_placeholder":true,"num":1}`, att1, "", false},
		{`{"_placeholder":true,"num":0}`, nil, "", false},
		{`[{"_placeholder":true,"num":0}]`, att1, "", false},
		{`"x"`, att1, "", false},
	} {
		b, ok := Arg{JSON: raw(tt.json), Attachments: tt.atts}.Bytes()
		if ok != tt.ok || string(b) != tt.want {
			t.Errorf("Arg(%s).Bytes() = %q, %v; want %q, %v", tt.json, b, ok, tt.want, tt.ok)
		}
	}
}

func TestUnmarshalArg(t *testing.T) {
	atts := [][]byte{[]byte("zero"), []byte("one"), []byte("two")}
	type target struct {
		Name  string            `json:"name"`
		Data  []byte            `json:"data"`
		Blob  blob              `json:"blob"`
		Any   any               `json:"any"`
		Map   map[string]any    `json:"map"`
		Bytes map[string][]byte `json:"bytes"`
		List  []any             `json:"list"`
		Ptr   *target           `json:"ptr"`
		embedded
	}
	in := `{"name":"n","data":` + ph(0) + `,"blob":` + ph(1) + `,"any":` + ph(2) +
		`,"map":{"k":` + ph(0) + `,"n":[1,` + ph(1) + `]},"bytes":{"b":` + ph(2) + `},"list":[` + ph(1) + `,"s"]` +
		`,"ptr":{"data":` + ph(2) + `,"any":{"deep":` + ph(0) + `}},"emb":` + ph(1) + `}`
	var got target
	if err := UnmarshalArg(raw(in), atts, &got); err != nil {
		t.Fatal(err)
	}
	want := target{
		Name: "n", Data: atts[0], Blob: atts[1], Any: atts[2],
		Map:      map[string]any{"k": atts[0], "n": []any{1.0, atts[1]}},
		Bytes:    map[string][]byte{"b": atts[2]},
		List:     []any{atts[1], "s"},
		Ptr:      &target{Data: atts[2], Any: map[string]any{"deep": atts[0]}},
		embedded: embedded{Emb: atts[1]},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnmarshalArg =\n%#v\nwant\n%#v", got, want)
	}

	// Into any: the whole tree.
	var v any
	if err := UnmarshalArg(raw(`[`+ph(2)+`,{"a":`+ph(0)+`},"x"]`), atts, &v); err != nil {
		t.Fatal(err)
	}
	if wantAny := []any{atts[2], map[string]any{"a": atts[0]}, "x"}; !reflect.DeepEqual(v, wantAny) {
		t.Errorf("UnmarshalArg(any) = %#v, want %#v", v, wantAny)
	}
	// A single binary value.
	var b []byte
	if err := UnmarshalArg(raw(ph(1)), atts, &b); err != nil || string(b) != "one" {
		t.Errorf("UnmarshalArg([]byte) = %q, %v", b, err)
	}
	if err := UnmarshalArg(raw(ph(1)), atts, &v); err != nil || !reflect.DeepEqual(v, atts[1]) {
		t.Errorf("UnmarshalArg(any) = %#v, %v", v, err)
	}
	// Targets that cannot hold a buffer see the placeholder object.
	var plain struct{ N int }
	if err := UnmarshalArg(raw(`{"N":3,"x":`+ph(0)+`}`), atts, &plain); err != nil || plain.N != 3 {
		t.Errorf("UnmarshalArg(plain struct) = %+v, %v", plain, err)
	}
	// Without attachments, placeholders are plain objects.
	v = nil
	if err := UnmarshalArg(raw(ph(0)), nil, &v); err != nil || !reflect.DeepEqual(v, map[string]any{"_placeholder": true, "num": 0.0}) {
		t.Errorf("UnmarshalArg(no attachments) = %#v, %v", v, err)
	}
	// Bad indexes.
	if err := UnmarshalArg(raw(ph(3)), atts, &v); !errors.Is(err, ErrIllegalAttachments) {
		t.Errorf("UnmarshalArg(num 3) = %v, want ErrIllegalAttachments", err)
	}
	// json.Unmarshal's errors come through.
	if err := UnmarshalArg(raw(`{`), atts, &v); err == nil {
		t.Error("UnmarshalArg(malformed) = nil error")
	}
	if err := UnmarshalArg(raw(ph(0)), atts, v); err == nil {
		t.Error("UnmarshalArg(non-pointer) = nil error")
	}
	// Arg.Unmarshal.
	var s []any
	if err := (Arg{JSON: raw(`[` + ph(0) + `]`), Attachments: atts}).Unmarshal(&s); err != nil || !reflect.DeepEqual(s, []any{atts[0]}) {
		t.Errorf("Arg.Unmarshal = %#v, %v", s, err)
	}
}

// TestBinaryRoundTrip sends Go values with binary at depth through
// MarshalEvent, Encode, the Decoder and UnmarshalArg.
func TestBinaryRoundTrip(t *testing.T) {
	type file struct {
		Name    string         `json:"name"`
		Content []byte         `json:"content"`
		Meta    map[string]any `json:"meta"`
		Parts   [][]byte       `json:"parts"`
	}
	in := file{
		Name:    "a.bin",
		Content: []byte{0, 1, 2, 255},
		Meta:    map[string]any{"thumb": []byte{9, 9}, "size": 4.0, "tags": []any{"x", []byte{7}}},
		Parts:   [][]byte{{1}, {}, {2, 3}},
	}
	p, err := NewEvent("/files", "upload", in, []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	text, atts, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(text, []byte("57-/files,[")) {
		t.Fatalf("Encode = %s", text)
	}
	got, err := decodeAll(t, string(text), atts...)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := got.EventName(); name != "upload" {
		t.Errorf("event name %q", name)
	}
	args, err := got.Args()
	if err != nil || len(args) != 2 {
		t.Fatalf("Args = %v, %v", args, err)
	}
	var out file
	if err := args[0].Unmarshal(&out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip = %#v, want %#v", out, in)
	}
	if b, ok := args[1].Bytes(); !ok || string(b) != "second" {
		t.Errorf("second arg = %q, %v", b, ok)
	}
}

func TestNewEvent(t *testing.T) {
	if _, err := NewEvent("/", "disconnect"); !errors.Is(err, ErrReservedEvent) {
		t.Errorf("NewEvent(disconnect) = %v, want ErrReservedEvent", err)
	}
	p, err := NewEvent("", "hello", "world")
	if err != nil {
		t.Fatal(err)
	}
	p.ID, p.HasID = 5, true
	if text, _, _ := Encode(p); string(text) != `25["hello","world"]` {
		t.Errorf("Encode = %s", text)
	}
	p, err = NewAck("/a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if text, _, _ := Encode(p); string(text) != `3/a,0[]` {
		t.Errorf("Encode = %s", text)
	}
}

func TestVersionHelpers(t *testing.T) {
	if name, q := SplitNamespace("/private?token=abc&x=1"); name != "/private" || q != "token=abc&x=1" {
		t.Errorf("SplitNamespace = %q, %q", name, q)
	}
	if name, q := SplitNamespace("/"); name != "/" || q != "" {
		t.Errorf("SplitNamespace = %q, %q", name, q)
	}
	if got := string(ConnectPayload("abc", "")); got != `{"sid":"abc"}` {
		t.Errorf("ConnectPayload = %s", got)
	}
	if got := string(ConnectPayload("a\"b", "p")); got != `{"sid":"a\"b","pid":"p"}` {
		t.Errorf("ConnectPayload = %s", got)
	}
	for _, tt := range []struct {
		v    Version
		msg  string
		data string
		want string
	}{
		{Version5, "Invalid namespace", "", `{"message":"Invalid namespace"}`},
		{Version5, "not authorized", `{"why":"token"}`, `{"message":"not authorized","data":{"why":"token"}}`},
		{Version5, "x", `null`, `{"message":"x","data":null}`},
		{Version4, "not authorized", `{"why":"token"}`, `{"why":"token"}`},
		{Version4, "not authorized", ``, `"not authorized"`},
		{Version4, "m", `null`, `"m"`},
		{Version4, "m", `0`, `"m"`},
		{Version4, "m", `""`, `"m"`},
		{Version4, "m", `false`, `"m"`},
		{Version4, "m", `1`, `1`},
		{Version4, "<m>", `[]`, `[]`},
		{Version4, "<m>", ``, `"<m>"`},
	} {
		got, err := ConnectErrorPayload(tt.v, tt.msg, raw(tt.data))
		if err != nil || string(got) != tt.want {
			t.Errorf("ConnectErrorPayload(%v, %q, %s) = %s, %v; want %s", tt.v, tt.msg, tt.data, got, err, tt.want)
		}
	}
	if _, err := ConnectErrorPayload(Version5, "m", raw(`{`)); err == nil {
		t.Error("ConnectErrorPayload(invalid data) = nil error")
	}
	if Version4.String() != "v4" || Protocol != Version5 {
		t.Error("Version constants")
	}
}

// TestAppendStringMatchesEncodingJSON checks every byte and some runes.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	var cases []string
	for c := range 256 {
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	cases = append(cases, "\u2028", "\u2029", "\u202f", "\U0010ffff", "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xe2\x82")
	for _, s := range cases {
		if got, want := string(appendString(nil, s)), stdJSON(t, s); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("héllo\n\"\\<>&\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString(nil, s)), stdJSON(t, s); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func FuzzAppendFloat(f *testing.F) {
	f.Add(1.5)
	f.Add(1e21)
	f.Add(1e-7)
	f.Fuzz(func(t *testing.T, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		got, _ := appendFloat(nil, x, 64)
		if want := stdJSON(t, x); string(got) != want {
			t.Errorf("appendFloat(%v) = %s, want %s", x, got, want)
		}
		got, _ = appendFloat(nil, float64(float32(x)), 32)
		if want := stdJSON(t, float32(x)); string(got) != want {
			t.Errorf("appendFloat(float32 %v) = %s, want %s", float32(x), got, want)
		}
	})
}

func TestUnmarshalArgMapOfStructs(t *testing.T) {
	type item struct {
		V any `json:"v"`
	}
	atts := [][]byte{[]byte("a"), []byte("b")}
	var m map[string]item
	if err := UnmarshalArg(raw(`{"x":{"v":`+ph(1)+`},"y":{"v":"s"}}`), atts, &m); err != nil {
		t.Fatal(err)
	}
	if want := map[string]item{"x": {V: atts[1]}, "y": {V: "s"}}; !reflect.DeepEqual(m, want) {
		t.Errorf("UnmarshalArg = %#v, want %#v", m, want)
	}
	var arr [2]any
	if err := UnmarshalArg(raw(`[`+ph(0)+`,`+ph(1)+`]`), atts, &arr); err != nil || !reflect.DeepEqual(arr, [2]any{atts[0], atts[1]}) {
		t.Errorf("UnmarshalArg(array) = %#v, %v", arr, err)
	}
}
