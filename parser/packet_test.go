package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// decodeAll feeds a text message and its attachments to a fresh decoder.
func decodeAll(t testing.TB, text string, atts ...[]byte) (*Packet, error) {
	t.Helper()
	var d Decoder
	p, err := d.Add([]byte(text), false)
	if err != nil {
		return nil, err
	}
	for i, a := range atts {
		if p != nil {
			t.Fatalf("Add(%q) completed before attachment %d", text, i)
		}
		p, err = d.Add(a, true)
		if err != nil {
			return nil, err
		}
	}
	if p == nil {
		t.Fatalf("Add(%q) with %d attachments: packet still pending", text, len(atts))
	}
	return p, nil
}

func id(n uint64) func(*Packet) {
	return func(p *Packet) { p.ID, p.HasID = n, true }
}

var att1 = [][]byte{{1, 2, 3}}
var att2 = [][]byte{{1, 2, 3}, {4, 5, 6}}

// roundTripTests are packets whose text must survive decode and encode
// byte for byte. They come from the protocol notes (§2.1, §2.3, §2.4) and
// the strings of the official socket.io-protocol test suite (§3.3).
var roundTripTests = []struct {
	text string
	atts [][]byte
	want Packet
	opt  func(*Packet)
}{
	// §2.1 examples
	{text: `2["foo"]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`["foo"]`)}},
	{text: `2/admin,["bar"]`, want: Packet{Type: Event, Namespace: "/admin", Data: raw(`["bar"]`)}},
	{text: `212["foo"]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`["foo"]`)}, opt: id(12)},
	{text: `3/admin,13["bar"]`, want: Packet{Type: Ack, Namespace: "/admin", Data: raw(`["bar"]`)}, opt: id(13)},
	{text: `51-["baz",{"_placeholder":true,"num":0}]`, atts: att1,
		want: Packet{Type: BinaryEvent, Namespace: "/", Data: raw(`["baz",{"_placeholder":true,"num":0}]`), Attachments: att1}},
	{text: `61-15["bar",{"_placeholder":true,"num":0}]`, atts: att1,
		want: Packet{Type: BinaryAck, Namespace: "/", Data: raw(`["bar",{"_placeholder":true,"num":0}]`), Attachments: att1}, opt: id(15)},
	{text: `1/admin,`, want: Packet{Type: Disconnect, Namespace: "/admin"}},
	{text: `4/random,{"message":"Invalid namespace"}`, want: Packet{Type: ConnectError, Namespace: "/random", Data: raw(`{"message":"Invalid namespace"}`)}},
	{text: `0{"sid":"abc"}`, want: Packet{Type: Connect, Namespace: "/", Data: raw(`{"sid":"abc"}`)}},
	// §3.3 socket.io-protocol suite, client → server (engine prefix removed)
	{text: `0`, want: Packet{Type: Connect, Namespace: "/"}},
	{text: `0{"token":"123"}`, want: Packet{Type: Connect, Namespace: "/", Data: raw(`{"token":"123"}`)}},
	{text: `0/custom,`, want: Packet{Type: Connect, Namespace: "/custom"}},
	{text: `0/custom,{"token":"abc"}`, want: Packet{Type: Connect, Namespace: "/custom", Data: raw(`{"token":"abc"}`)}},
	{text: `1`, want: Packet{Type: Disconnect, Namespace: "/"}},
	{text: `1/custom,`, want: Packet{Type: Disconnect, Namespace: "/custom"}},
	{text: `2["message",1,"2",{"3":[true]}]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`["message",1,"2",{"3":[true]}]`)}},
	{text: `52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, atts: att2,
		want: Packet{Type: BinaryEvent, Namespace: "/", Data: raw(`["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: att2}},
	{text: `2456["message-with-ack",1,"2",{"3":[false]}]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`["message-with-ack",1,"2",{"3":[false]}]`)}, opt: id(456)},
	{text: `52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, atts: att2,
		want: Packet{Type: BinaryEvent, Namespace: "/", Data: raw(`["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: att2}, opt: id(789)},
	// §3.3 server → client
	{text: `0/custom,{"sid":"x"}`, want: Packet{Type: Connect, Namespace: "/custom", Data: raw(`{"sid":"x"}`)}},
	{text: `2["auth",{}]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`["auth",{}]`)}},
	{text: `2/custom,["auth",{"token":"abc"}]`, want: Packet{Type: Event, Namespace: "/custom", Data: raw(`["auth",{"token":"abc"}]`)}},
	{text: `2["message-back",1,"2",{"3":[true]}]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`["message-back",1,"2",{"3":[true]}]`)}},
	{text: `3456[1,"2",{"3":[false]}]`, want: Packet{Type: Ack, Namespace: "/", Data: raw(`[1,"2",{"3":[false]}]`)}, opt: id(456)},
	{text: `62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, atts: att2,
		want: Packet{Type: BinaryAck, Namespace: "/", Data: raw(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: att2}, opt: id(789)},
	// §2.3 / §2.6 / §2.7 observed
	{text: `0{"sid":"s","pid":"p"}`, want: Packet{Type: Connect, Namespace: "/", Data: raw(`{"sid":"s","pid":"p"}`)}},
	{text: `4/private,{"message":"not authorized","data":{"why":"token"}}`, want: Packet{Type: ConnectError, Namespace: "/private", Data: raw(`{"message":"not authorized","data":{"why":"token"}}`)}},
	{text: `0/private?token=abc,`, want: Packet{Type: Connect, Namespace: "/private?token=abc"}},
	{text: `51-["bin-back",{"_placeholder":true,"num":0},"Q83xJ50"]`, atts: [][]byte{{1, 2, 3}},
		want: Packet{Type: BinaryEvent, Namespace: "/", Data: raw(`["bin-back",{"_placeholder":true,"num":0},"Q83xJ50"]`), Attachments: [][]byte{{1, 2, 3}}}},
	// Edge cases of the grammar.
	{text: `50-["x"]`, want: Packet{Type: BinaryEvent, Namespace: "/", Data: raw(`["x"]`)}},
	{text: `2[1]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`[1]`)}},
	{text: `2[-1.5,"a"]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`[-1.5,"a"]`)}},
	{text: `3[]`, want: Packet{Type: Ack, Namespace: "/", Data: raw(`[]`)}},
	{text: `30[]`, want: Packet{Type: Ack, Namespace: "/", Data: raw(`[]`)}, opt: id(0)},
	{text: `318446744073709551615[]`, want: Packet{Type: Ack, Namespace: "/", Data: raw(`[]`)}, opt: id(1<<64 - 1)},
	{text: `4"oops"`, want: Packet{Type: ConnectError, Namespace: "/", Data: raw(`"oops"`)}},
	{text: `2 [ "spaced" , 1 ] `, want: Packet{Type: Event, Namespace: "/", Data: raw(` [ "spaced" , 1 ] `)}},
	{text: `2/a b,["x"]`, want: Packet{Type: Event, Namespace: "/a b", Data: raw(`["x"]`)}},
	{text: `2["\u003chtml\u003e & <b>"]`, want: Packet{Type: Event, Namespace: "/", Data: raw(`["\u003chtml\u003e & <b>"]`)}},
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestRoundTrip(t *testing.T) {
	for _, tt := range roundTripTests {
		want := tt.want
		if tt.opt != nil {
			tt.opt(&want)
		}
		got, err := decodeAll(t, tt.text, tt.atts...)
		if err != nil {
			t.Errorf("decode(%q) error: %v", tt.text, err)
			continue
		}
		if !packetsEqual(got, &want) {
			t.Errorf("decode(%q) = %+v, want %+v", tt.text, got, &want)
		}
		text, atts, err := Encode(got)
		if err != nil {
			t.Errorf("Encode(decode(%q)) error: %v", tt.text, err)
			continue
		}
		if string(text) != tt.text {
			t.Errorf("Encode(decode(%q)) = %q", tt.text, text)
		}
		if !attachmentsEqual(atts, tt.atts) {
			t.Errorf("Encode(decode(%q)) attachments = %v, want %v", tt.text, atts, tt.atts)
		}
		// Encoding the expected packet gives the same text too.
		text, _, err = Encode(&want)
		if err != nil || string(text) != tt.text {
			t.Errorf("Encode(%+v) = %q, %v; want %q", &want, text, err, tt.text)
		}
	}
}

// TestNamespaceWithoutComma covers the suite's "40/custom" and "40/random"
// forms: the namespace runs to the end of the message. Encoding writes the
// comma.
func TestNamespaceWithoutComma(t *testing.T) {
	for _, tt := range []struct{ in, nsp, out string }{
		{"0/custom", "/custom", "0/custom,"},
		{"1/custom", "/custom", "1/custom,"},
		{"0/random", "/random", "0/random,"},
		{"0/", "/", "0"},
		{"0/,", "/", "0"},
		{"0/,{}", "/", "0{}"},
		{"0/x,7", "/x", "0/x,7"},
	} {
		p, err := decodeAll(t, tt.in)
		if err != nil {
			t.Errorf("decode(%q) error: %v", tt.in, err)
			continue
		}
		if p.Namespace != tt.nsp {
			t.Errorf("decode(%q).Namespace = %q, want %q", tt.in, p.Namespace, tt.nsp)
		}
		text, _, _ := Encode(p)
		if string(text) != tt.out {
			t.Errorf("Encode(decode(%q)) = %q, want %q", tt.in, text, tt.out)
		}
	}
}

func TestEncode(t *testing.T) {
	for _, tt := range []struct {
		p    Packet
		want string
		atts int
	}{
		{Packet{Type: Connect, Namespace: "/random"}, "0/random,", 0},
		{Packet{Type: Connect}, "0", 0},
		{Packet{Type: Connect, Namespace: "/", Data: ConnectPayload("abc", "")}, `0{"sid":"abc"}`, 0},
		{Packet{Type: ConnectError, Namespace: "/random", Data: raw(`{"message":"Invalid namespace"}`)}, `4/random,{"message":"Invalid namespace"}`, 0},
		// An Event or Ack with attachments goes out as its binary type.
		{Packet{Type: Event, Data: raw(`["a",{"_placeholder":true,"num":0}]`), Attachments: att1}, `51-["a",{"_placeholder":true,"num":0}]`, 1},
		{Packet{Type: Ack, ID: 7, HasID: true, Namespace: "/n", Data: raw(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: att2},
			`62-/n,7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, 2},
		{Packet{Type: BinaryEvent, Data: raw(`["a"]`)}, `50-["a"]`, 0},
	} {
		text, atts, err := Encode(&tt.p)
		if err != nil || string(text) != tt.want || len(atts) != tt.atts {
			t.Errorf("Encode(%+v) = %q, %d attachments, %v; want %q, %d", tt.p, text, len(atts), err, tt.want, tt.atts)
		}
		// AppendText appends.
		b, err := tt.p.AppendText([]byte("4"))
		if err != nil || string(b) != "4"+tt.want {
			t.Errorf("AppendText(%q) = %q, %v", "4", b, err)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, p := range []Packet{
		{Type: 7, Data: raw(`[]`)},
		{Type: 255},
		{Type: Event, Namespace: "admin", Data: raw(`["x"]`)},
		{Type: Event, Namespace: "/a,b", Data: raw(`["x"]`)},
		{Type: Connect, Attachments: att1},
		{Type: ConnectError, Data: raw(`"x"`), Attachments: att1},
	} {
		if text, _, err := Encode(&p); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("Encode(%+v) = %q, %v; want ErrInvalidPacket", p, text, err)
		}
	}
}

func TestValidate(t *testing.T) {
	good := []Packet{
		{Type: Connect},
		{Type: Event, Data: raw(`["x"]`)},
		{Type: Event, Data: raw(`["x",{"_placeholder":true,"num":0}]`), Attachments: att1},
		{Type: Ack, HasID: true, Data: raw(`[]`)},
	}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", p, err)
		}
	}
	bad := []Packet{
		{Type: Event},
		{Type: Event, Data: raw(`["connect"]`)},
		{Type: Event, Data: raw(`["x",{"_placeholder":true,"num":1}]`), Attachments: att1},
		{Type: Disconnect, Data: raw(`{}`)},
		{Type: Ack, Data: raw(`{}`)},
		{Type: 9},
	}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", p)
		}
	}
}

func TestTypeString(t *testing.T) {
	want := []string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK", "Type(7)"}
	for i, w := range want {
		if got := Type(i).String(); got != w {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, w)
		}
	}
	if !BinaryAck.IsBinary() || Ack.IsBinary() || !BinaryEvent.IsEvent() || !BinaryAck.IsAck() || Event.IsAck() {
		t.Error("Type predicates are wrong")
	}
}

func TestPacketString(t *testing.T) {
	p := Packet{Type: Event, Data: raw(`["a",{"_placeholder":true,"num":0}]`), Attachments: att1}
	if got, want := p.String(), `51-["a",{"_placeholder":true,"num":0}] +1 attachments`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (&Packet{Type: 8}).String(); !strings.HasPrefix(got, "<invalid packet") {
		t.Errorf("String() of invalid packet = %q", got)
	}
}

func TestEventNameAndArgs(t *testing.T) {
	for _, tt := range []struct {
		text string
		atts [][]byte
		name string
		ok   bool
		args []string
	}{
		{`2["foo"]`, nil, "foo", true, []string{}},
		{`2["foo",1,"2",{"3":[true]}]`, nil, "foo", true, []string{`1`, `"2"`, `{"3":[true]}`}},
		{`2[ "a\"b" , [1, 2] ,null ]`, nil, `a"b`, true, []string{`[1, 2]`, `null`}},
		{`2["\u0066oo",true]`, nil, "foo", true, []string{`true`}},
		{`2[42,"x"]`, nil, "42", true, []string{`"x"`}},
		{`2[-1e3]`, nil, "-1e3", true, []string{}},
		{`3[1,"2"]`, nil, "", false, []string{`1`, `"2"`}},
		{`3 [ ] `, nil, "", false, []string{}},
		{`51-["b",{"_placeholder":true,"num":0}]`, att1, "b", true, []string{`{"_placeholder":true,"num":0}`}},
	} {
		p, err := decodeAll(t, tt.text, tt.atts...)
		if err != nil {
			t.Fatalf("decode(%q): %v", tt.text, err)
		}
		name, ok := p.EventName()
		if name != tt.name || ok != tt.ok {
			t.Errorf("EventName(%q) = %q, %v; want %q, %v", tt.text, name, ok, tt.name, tt.ok)
		}
		args, err := p.Args()
		if err != nil {
			t.Errorf("Args(%q) error: %v", tt.text, err)
			continue
		}
		var got []string
		for _, a := range args {
			got = append(got, string(a.JSON))
			if len(a.Attachments) != len(tt.atts) {
				t.Errorf("Args(%q): attachments = %d, want %d", tt.text, len(a.Attachments), len(tt.atts))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.args) {
			t.Errorf("Args(%q) = %q, want %q", tt.text, got, tt.args)
		}
	}
	for _, p := range []*Packet{{Type: Connect, Data: raw(`{}`)}, {Type: Disconnect}} {
		if _, ok := p.EventName(); ok {
			t.Errorf("EventName(%v) ok", p)
		}
		if _, err := p.Args(); err == nil {
			t.Errorf("Args(%v) no error", p)
		}
	}
}

func TestSplitArray(t *testing.T) {
	got, err := SplitArray([]byte(` [1, "a,]", {"b":[2,3]} , [] ,"\"]"]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`1`, `"a,]"`, `{"b":[2,3]}`, `[]`, `"\"]"`}
	if len(got) != len(want) {
		t.Fatalf("SplitArray = %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("SplitArray[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	for _, bad := range []string{``, `{}`, `[1,`, `[1 2]`, `[1]x`, `"[]"`, `[`, `["a]`} {
		if _, err := SplitArray([]byte(bad)); err == nil {
			t.Errorf("SplitArray(%q) = nil error", bad)
		}
	}
}

func packetsEqual(a, b *Packet) bool {
	return a.Type == b.Type && a.Namespace == b.Namespace && a.HasID == b.HasID && a.ID == b.ID &&
		bytes.Equal(a.Data, b.Data) && attachmentsEqual(a.Attachments, b.Attachments)
}

func attachmentsEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
