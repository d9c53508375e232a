package clusterwire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/herald-rt/herald/parser"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDataToMsgpackAppendixA converts the event data of Appendix A's
// broadcasts, as Herald's parser builds it, to the captured msgpack.
func TestDataToMsgpackAppendixA(t *testing.T) {
	cases := []struct {
		name string
		args []any
		hex  string
	}{
		{"hi", []any{1}, "92a2686901"},
		{"room-msg", []any{"x"}, "92a8726f6f6d2d6d7367a178"},
		{"multi", []any{true}, "92a56d756c7469c3"},
		{"flags", []any{1.5, -3, 300, nil}, "95a5666c616773cb3ff8000000000000fdcd012cc0"},
		{"from-emitter", []any{map[string]any{"a": 1}}, "92ac66726f6d2d656d697474657281a16101"},
		{"bin", []any{[]byte{1, 2, 3}}, "92a362696ec403010203"},
		{"unicode", []any{"héllo✓", json.RawMessage(`{"nested":[1,{"k":null}]}`)}, "93a7756e69636f6465a968c3a96c6c6fe29c9381a66e657374656492" + "0181a16bc0"},
		{"sse", []any{json.RawMessage(`{"a":1}`)}, "92a373736581a16101"},
	}
	for _, c := range cases {
		data, atts, err := parser.MarshalEvent(c.name, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DataToMsgpack(nil, data, atts)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if want := mustHex(t, c.hex); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", c.name, got, want)
		}
		// And back.
		data2, atts2, err := MsgpackToData(got)
		if err != nil {
			t.Errorf("%s: back: %v", c.name, err)
			continue
		}
		if !bytes.Equal(data2, data) || !slices.EqualFunc(atts2, atts, bytes.Equal) {
			t.Errorf("%s: back: %s %x, want %s %x", c.name, data2, atts2, data, atts)
		}
	}
}

// TestMsgpackToDataDate decodes step 05 of Appendix A: binary becomes an
// attachment, the Date its ISO string.
func TestMsgpackToDataDate(t *testing.T) {
	data, atts, err := MsgpackToData(mustHex(t, "93a362696ec40301020381a164d6ff00000000"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `["bin",{"_placeholder":true,"num":0},{"d":"1970-01-01T00:00:00.000Z"}]`; string(data) != want {
		t.Errorf("data %s, want %s", data, want)
	}
	if len(atts) != 1 || !bytes.Equal(atts[0], []byte{1, 2, 3}) {
		t.Errorf("attachments %x", atts)
	}
	// The packet is valid for Herald's parser, and a client gets the Buffer.
	pkt := &parser.Packet{Type: parser.Event, Data: data, Attachments: atts}
	if err := pkt.Validate(); err != nil {
		t.Error(err)
	}
	if got := pkt.String(); got != `51-["bin",{"_placeholder":true,"num":0},{"d":"1970-01-01T00:00:00.000Z"}] +1 attachments` {
		t.Errorf("packet %s", got)
	}
	// Appendix F case 4: bin8 and timestamp 32.
	data, atts, err = MsgpackToData(mustHex(t, "93a26734c402cafed6ff00000001"))
	if err != nil || string(data) != `["g4",{"_placeholder":true,"num":0},"1970-01-01T00:00:01.000Z"]` || !bytes.Equal(atts[0], []byte{0xca, 0xfe}) {
		t.Errorf("case 4: %s %x %v", data, atts, err)
	}
	// NaN and infinities become null, as JSON.stringify writes them.
	data, _, _ = MsgpackToData(mustHex(t, "93cb7ff8000000000000cb7ff0000000000000ca7f800000"))
	if string(data) != `[null,null,null]` {
		t.Errorf("NaN/Inf: %s", data)
	}
}

func TestPlaceholders(t *testing.T) {
	a, b := []byte("A"), []byte("B")
	// Depth-first renumbering: the attachments follow the document order.
	v, err := DataToValue(json.RawMessage(`[{"x":{"_placeholder":true,"num":1}},{"num":0,"_placeholder":true}]`), [][]byte{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if want := Array(Map(Member{"x", Bin(b)}), Bin(a)); !v.Equal(want) {
		t.Errorf("got %v, want %v", v, want)
	}
	data, atts := ValueToData(v)
	if string(data) != `[{"x":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]` || !slices.EqualFunc(atts, [][]byte{b, a}, bytes.Equal) {
		t.Errorf("back: %s %q", data, atts)
	}
	// Without attachments a placeholder is an ordinary object.
	v, err = DataToValue(json.RawMessage(`[{"_placeholder":true,"num":0}]`), nil)
	if err != nil || v.Elems()[0].Kind() != KindMap {
		t.Errorf("no attachments: %v %v", v, err)
	}
	// _placeholder must be exactly true.
	v, err = DataToValue(json.RawMessage(`[{"_placeholder":1,"num":0}]`), [][]byte{a})
	if err != nil || v.Elems()[0].Kind() != KindMap {
		t.Errorf("_placeholder 1: %v %v", v, err)
	}
	for _, bad := range []string{
		`[{"_placeholder":true,"num":1}]`,
		`[{"_placeholder":true,"num":-1}]`,
		`[{"_placeholder":true,"num":0.5}]`,
		`[{"_placeholder":true,"num":"0"}]`,
		`[{"_placeholder":true}]`,
	} {
		if _, err := DataToValue(json.RawMessage(bad), [][]byte{a}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if v, err := DataToValue(nil, nil); err != nil || !v.IsUndefined() {
		t.Errorf("empty data: %v %v", v, err)
	}
	if data, atts := ValueToData(Undefined()); data != nil || atts != nil {
		t.Errorf("undefined: %s %v", data, atts)
	}
}

func TestFirstArg(t *testing.T) {
	cases := []struct{ in, first string }{
		{`["ack-from-c1"]`, `"ack-from-c1"`},
		{` [ {"a":[1,2]} , 3 ]`, `{"a":[1,2]}`},
		{`[{"_placeholder":true,"num":0}]`, `{"_placeholder":true,"num":0}`},
	}
	for _, c := range cases {
		got, ok := FirstArg(json.RawMessage(c.in))
		if !ok || string(got) != c.first {
			t.Errorf("%s: %s %v", c.in, got, ok)
		}
	}
	for _, in := range []string{`[]`, `{}`, ``, `[`, `"x"`} {
		if got, ok := FirstArg(json.RawMessage(in)); ok {
			t.Errorf("%s: %s", in, got)
		}
	}
	if got := string(ArgsOf(json.RawMessage(`"x"`))); got != `["x"]` {
		t.Errorf("ArgsOf: %s", got)
	}
	if got := string(ArgsOf(nil)); got != `[]` {
		t.Errorf("ArgsOf(nil): %s", got)
	}
}
