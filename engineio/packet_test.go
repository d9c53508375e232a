package engineio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const sioBinaryEvent = `451-["bin-back",{"_placeholder":true,"num":0},"Q83xJ50"]` // 56 characters

func txt(t packetType, data string) packet { return packet{typ: t, data: []byte(data)} }
func bin(t packetType, data ...byte) packet {
	if data == nil {
		data = []byte{}
	}
	return packet{typ: t, data: data, binary: true}
}

// samePackets compares packets treating nil and empty data alike.
func samePackets(a, b []packet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].typ != b[i].typ || a[i].binary != b[i].binary || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

func fmtPackets(ps []packet) string {
	var b strings.Builder
	for _, p := range ps {
		if p.binary {
			fmt.Fprintf(&b, "[%d bin %x]", p.typ, p.data)
		} else {
			fmt.Fprintf(&b, "[%d %q]", p.typ, p.data)
		}
	}
	return b.String()
}

func TestDecodeTextPacket(t *testing.T) {
	tests := []struct {
		in       string
		protocol int
		want     packet
		err      bool
	}{
		{"0{}", 4, txt(packetOpen, "{}"), false},
		{"1", 4, txt(packetClose, ""), false},
		{"2probe", 4, txt(packetPing, "probe"), false},
		{"3", 4, txt(packetPong, ""), false},
		{"4hello", 4, txt(packetMessage, "hello"), false},
		{"5", 4, txt(packetUpgrade, ""), false},
		{"6", 4, txt(packetNoop, ""), false},
		{"4\x00\xff", 4, txt(packetMessage, "\x00\xff"), false},
		{"bAQIDBA==", 4, bin(packetMessage, 1, 2, 3, 4), false},
		{"b", 4, bin(packetMessage), false},
		{"b4AQID", 3, bin(packetMessage, 1, 2, 3), false},
		{"b2", 3, bin(packetPing), false},
		{"b4AQID", 4, packet{}, true}, // "4AQID" is not valid padded base64
		{"", 4, packet{}, true},
		{"7", 4, packet{}, true},
		{"abc", 4, packet{}, true},
		{"/", 4, packet{}, true},
		{"b!!", 4, packet{}, true},
		{"bAQ", 4, packet{}, true},
		{"b", 3, packet{}, true},
		{"b7AQ==", 3, packet{}, true},
		{"bxAQ==", 3, packet{}, true},
	}
	for _, tt := range tests {
		got, err := decodeTextPacket([]byte(tt.in), tt.protocol)
		if tt.err {
			if err == nil {
				t.Errorf("decodeTextPacket(%q, %d) = %s, want an error", tt.in, tt.protocol, fmtPackets([]packet{got}))
			} else if !errors.Is(err, errParse) {
				t.Errorf("decodeTextPacket(%q, %d) error %v does not wrap errParse", tt.in, tt.protocol, err)
			}
			continue
		}
		if err != nil || !samePackets([]packet{got}, []packet{tt.want}) {
			t.Errorf("decodeTextPacket(%q, %d) = %s, %v; want %s", tt.in, tt.protocol,
				fmtPackets([]packet{got}), err, fmtPackets([]packet{tt.want}))
		}
	}
}

func TestDecodePayloadV4(t *testing.T) {
	tests := []struct {
		in   string
		want []packet
		err  bool
	}{
		{"4hello", []packet{txt(4, "hello")}, false},
		{"4hello\x1ebAQIDBA==", []packet{txt(4, "hello"), bin(4, 1, 2, 3, 4)}, false},
		{"4test1\x1e4test2\x1e4test3", []packet{txt(4, "test1"), txt(4, "test2"), txt(4, "test3")}, false},
		{"2\x1e3\x1e6", []packet{txt(2, ""), txt(3, ""), txt(6, "")}, false},
		{"1", []packet{txt(1, "")}, false},
		// Decoding stops at the first bad packet; earlier ones are returned.
		{"4a\x1eabc\x1e4b", []packet{txt(4, "a")}, true},
		{"4a\x1e", []packet{txt(4, "a")}, true},
		{"\x1e4a", []packet{}, true},
		{"", []packet{}, true},
		{"abc", []packet{}, true},
	}
	for _, tt := range tests {
		got, err := decodePayloadV4([]byte(tt.in))
		if (err != nil) != tt.err || !samePackets(got, tt.want) {
			t.Errorf("decodePayloadV4(%q) = %s, %v; want %s, error %v", tt.in, fmtPackets(got), err, fmtPackets(tt.want), tt.err)
		}
	}
}

func TestAppendPacketV4Text(t *testing.T) {
	tests := []struct {
		p    packet
		want string
	}{
		{txt(4, "hello"), "4hello"},
		{txt(2, ""), "2"},
		{txt(3, "probe"), "3probe"},
		{bin(4, 1, 2, 3, 4), "bAQIDBA=="},
		{bin(4), "b"},
		{txt(0, `{"sid":"x"}`), `0{"sid":"x"}`},
	}
	for _, tt := range tests {
		if got := string(appendPacketV4Text([]byte("pre"), tt.p)); got != "pre"+tt.want {
			t.Errorf("appendPacketV4Text(%s) = %q, want %q", fmtPackets([]packet{tt.p}), got, "pre"+tt.want)
		}
	}
}

func TestUTF16Len(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"é", 1},
		{"€", 1},
		{"😀", 2},
		{"4é😀", 4},
		{"\xff", 1},
		{"\xff\xfe", 2},
		{"\xf0\x9f\x98", 3}, // truncated 4-byte sequence: one unit a byte
		{"\uFFFD", 1},
		{"\U0010FFFF", 2},
	}
	for _, tt := range tests {
		if got := utf16Len([]byte(tt.in)); got != tt.want {
			t.Errorf("utf16Len(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestPayloadV3String(t *testing.T) {
	tests := []struct {
		wire string
		ps   []packet
	}{
		{"1:2", []packet{txt(2, "")}},
		{"1:3", []packet{txt(3, "")}},
		{"6:2probe", []packet{txt(2, "probe")}},
		{"2:4é", []packet{txt(4, "é")}},
		{"3:4😀", []packet{txt(4, "😀")}},
		{"4:4é😀", []packet{txt(4, "é😀")}},
		{"2:40" + "26:42[\"hello\",\"world\",\"abcd\"]", []packet{txt(4, "0"), txt(4, `2["hello","world","abcd"]`)}},
		{"6:b4AQID", []packet{bin(4, 1, 2, 3)}},
		{"1:6" + "6:b4AQID" + "1:1", []packet{txt(6, ""), bin(4, 1, 2, 3), txt(1, "")}},
		{"57:" + sioBinaryEvent + "!", []packet{txt(4, sioBinaryEvent[1:]+"!")}},
	}
	for _, tt := range tests {
		got, err := decodePayloadV3String([]byte(tt.wire))
		if err != nil || !samePackets(got, tt.ps) {
			t.Errorf("decodePayloadV3String(%q) = %s, %v; want %s", tt.wire, fmtPackets(got), err, fmtPackets(tt.ps))
		}
		if enc := string(appendPayloadV3String(nil, tt.ps)); enc != tt.wire {
			t.Errorf("appendPayloadV3String(%s) = %q, want %q", fmtPackets(tt.ps), enc, tt.wire)
		}
	}

	// The handshake shape "<n>:0{...}".
	open := `0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	wire := fmt.Sprintf("%d:%s", len(open), open)
	if got := string(appendPayloadV3String(nil, []packet{txt(0, open[1:])})); got != wire {
		t.Errorf("open payload = %q, want %q", got, wire)
	}
	if !strings.HasPrefix(wire, "101:0{") {
		t.Errorf("open payload %q", wire)
	}

	bad := []string{
		"", ":", "1:", "2:4", "x:4", "-1:4", "1:7", "1:a", "1", "4hello",
		"2:4😀",          // the length splits the surrogate pair
		"12345678901:4", // length prefix too long
		"1:4" + "9:4",   // second packet shorter than its length
		"6:b4AQI!",
		"1:b",
	}
	for _, in := range bad {
		if got, err := decodePayloadV3String([]byte(in)); err == nil {
			t.Errorf("decodePayloadV3String(%q) = %s, want an error", in, fmtPackets(got))
		} else if !errors.Is(err, errParse) {
			t.Errorf("decodePayloadV3String(%q) error %v does not wrap errParse", in, err)
		}
	}
	// Packets before the bad one are returned.
	got, err := decodePayloadV3String([]byte("1:2" + "1:z"))
	if err == nil || !samePackets(got, []packet{txt(2, "")}) {
		t.Errorf("decodePayloadV3String(1:21:z) = %s, %v; want [ping], error", fmtPackets(got), err)
	}
}

func TestPayloadV3Binary(t *testing.T) {
	// Observed from the reference server: a Socket.IO binary event and its
	// attachment.
	want := append([]byte{0x00, 0x05, 0x06, 0xff}, sioBinaryEvent...)
	want = append(want, 0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03)
	ps := []packet{txt(4, sioBinaryEvent[1:]), bin(4, 1, 2, 3)}
	if got := appendPayloadV3Binary(nil, ps); !bytes.Equal(got, want) {
		t.Errorf("appendPayloadV3Binary = % x\nwant                       % x", got, want)
	}
	got, err := decodePayloadV3Binary(want)
	if err != nil || !samePackets(got, ps) {
		t.Errorf("decodePayloadV3Binary(observed) = %s, %v; want %s", fmtPackets(got), err, fmtPackets(ps))
	}

	tests := []struct {
		wire []byte
		ps   []packet
	}{
		{[]byte{0x00, 0x01, 0xff, '2'}, []packet{txt(2, "")}},
		{append([]byte{0x00, 0x01, 0x01, 0xff}, "4hello, you"...), []packet{txt(4, "hello, you")}},
		// Binary lengths count bytes, type byte included.
		{[]byte{0x01, 0x01, 0xff, 0x04}, []packet{bin(4)}},
		{append([]byte{0x01, 0x01, 0x00, 0x00, 0xff, 0x04}, bytes.Repeat([]byte{9}, 99)...),
			[]packet{bin(4, bytes.Repeat([]byte{9}, 99)...)}},
	}
	for _, tt := range tests {
		if got := appendPayloadV3Binary(nil, tt.ps); !bytes.Equal(got, tt.wire) {
			t.Errorf("appendPayloadV3Binary(%s) = % x, want % x", fmtPackets(tt.ps), got, tt.wire)
		}
		got, err := decodePayloadV3Binary(tt.wire)
		if err != nil || !samePackets(got, tt.ps) {
			t.Errorf("decodePayloadV3Binary(% x) = %s, %v; want %s", tt.wire, fmtPackets(got), err, fmtPackets(tt.ps))
		}
	}

	bad := [][]byte{
		nil,
		{0x02, 0x01, 0xff, '4'},  // bad marker
		{0x00, 0x01},             // no 0xff
		{0x00, 0xff, '4'},        // no digits
		{0x00, 0x00, 0xff},       // zero length
		{0x00, 0x0a, 0xff, '4'},  // digit > 9
		{0x00, 0x05, 0xff, '4'},  // shorter than its length
		{0x01, 0x03, 0xff, 0x04}, // shorter than its length
		{0x01, 0x01, 0xff, 0x07}, // bad type byte
		{0x00, 0x01, 0xff, 'x'},  // bad string packet
		{0x00, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0xff}, // 11 digits
	}
	for _, in := range bad {
		if got, err := decodePayloadV3Binary(in); err == nil {
			t.Errorf("decodePayloadV3Binary(% x) = %s, want an error", in, fmtPackets(got))
		}
	}
}

// In v3 binary framing the reference utf8-encodes string packets and counts
// their length in bytes (parser-v3 encodePacket(p, true, true) then
// packet.length; decodePayloadAsBinary slices msgLength bytes), unlike string
// framing, which counts UTF-16 units.
func TestPayloadV3BinaryNonASCII(t *testing.T) {
	tests := []struct {
		wire []byte
		ps   []packet
	}{
		{append([]byte{0x00, 0x03, 0xff}, "4é"...), []packet{txt(4, "é")}},
		{append([]byte{0x00, 0x05, 0xff}, "4😀"...), []packet{txt(4, "😀")}},
		{append(append([]byte{0x00, 0x08, 0xff}, "4é😀x"...), 0x01, 0x02, 0xff, 0x04, 0x09),
			[]packet{txt(4, "é😀x"), bin(4, 9)}},
	}
	for _, tt := range tests {
		if got := appendPayloadV3Binary(nil, tt.ps); !bytes.Equal(got, tt.wire) {
			t.Errorf("appendPayloadV3Binary(%s) = % x, want % x", fmtPackets(tt.ps), got, tt.wire)
		}
		got, err := decodePayloadV3Binary(tt.wire)
		if err != nil || !samePackets(got, tt.ps) {
			t.Errorf("decodePayloadV3Binary(% x) = %s, %v; want %s", tt.wire, fmtPackets(got), err, fmtPackets(tt.ps))
		}
	}
}

// The reference accepts "0:" (an empty payload, what its encoder writes for
// no packets) and skips zero-length packets (parser-v3 decodePayload:
// "if (msg.length)").
func TestPayloadV3StringEmpty(t *testing.T) {
	for _, in := range []string{"0:", "0:1:2"} {
		got, err := decodePayloadV3String([]byte(in))
		want := []packet{}
		if in == "0:1:2" {
			want = []packet{txt(2, "")}
		}
		if err != nil || !samePackets(got, want) {
			t.Errorf("decodePayloadV3String(%q) = %s, %v; want %s, nil", in, fmtPackets(got), err, fmtPackets(want))
		}
	}
}

func TestMessageForms(t *testing.T) {
	text := NewMessage([]byte("hé"), false)
	if string(text.pollingV4()) != "4hé" {
		t.Errorf("pollingV4 = %q", text.pollingV4())
	}
	if got, want := text.webSocketFrame(4), append([]byte{0x81, 4}, "4hé"...); !bytes.Equal(got, want) {
		t.Errorf("v4 text frame = % x, want % x", got, want)
	}
	if got, want := text.webSocketFrame(3), append([]byte{0x81, 4}, "4hé"...); !bytes.Equal(got, want) {
		t.Errorf("v3 text frame = % x, want % x", got, want)
	}
	b := NewMessage([]byte{1, 2, 3}, true)
	if !b.Binary() || !bytes.Equal(b.Data(), []byte{1, 2, 3}) {
		t.Errorf("Binary() = %v, Data() = %v", b.Binary(), b.Data())
	}
	if string(b.pollingV4()) != "bAQID" {
		t.Errorf("binary pollingV4 = %q", b.pollingV4())
	}
	if got, want := b.webSocketFrame(4), []byte{0x82, 3, 1, 2, 3}; !bytes.Equal(got, want) {
		t.Errorf("v4 binary frame = % x, want % x", got, want)
	}
	if got, want := b.webSocketFrame(3), []byte{0x82, 4, 4, 1, 2, 3}; !bytes.Equal(got, want) {
		t.Errorf("v3 binary frame = % x, want % x", got, want)
	}
	// Built once and shared.
	if &b.webSocketFrame(4)[0] != &b.webSocketFrame(4)[0] {
		t.Error("webSocketFrame re-encoded")
	}
	if string(pingMessage.pollingV4()) != "2" || string(probeMessage.pollingV4()) != "3probe" ||
		string(noopMessage.pollingV4()) != "6" || string(closeMessage.pollingV4()) != "1" ||
		string(upgradeMessage.pollingV4()) != "5" || string(pongMessage.pollingV4()) != "3" {
		t.Error("control message forms")
	}
}

func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		f := appendFrame(nil, opText, []byte{'4'}, payload)
		total := n + 1
		var hdr []byte
		switch {
		case total < 126:
			hdr = []byte{0x81, byte(total)}
		case total <= 0xffff:
			hdr = binary.BigEndian.AppendUint16([]byte{0x81, 126}, uint16(total))
		default:
			hdr = binary.BigEndian.AppendUint64([]byte{0x81, 127}, uint64(total))
		}
		if !bytes.Equal(f[:len(hdr)], hdr) || len(f) != len(hdr)+total || f[len(hdr)] != '4' {
			t.Errorf("appendFrame(%d+1 bytes): header % x, length %d; want header % x, length %d",
				n, f[:min(len(f), 10)], len(f), hdr, len(hdr)+total)
		}
	}
	if got, want := closeFrame(1009, "big"), []byte{0x88, 5, 0x03, 0xf1, 'b', 'i', 'g'}; !bytes.Equal(got, want) {
		t.Errorf("closeFrame = % x, want % x", got, want)
	}
}

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		op       byte
		data     string
		protocol int
		want     packet
		err      bool
	}{
		{opText, "4hello", 4, txt(4, "hello"), false},
		{opText, "2probe", 4, txt(2, "probe"), false},
		{opText, "5", 4, txt(5, ""), false},
		{opBinary, "\x01\x02", 4, bin(4, 1, 2), false},
		{opBinary, "", 4, bin(4), false},
		{opBinary, "\x04\x01\x02", 3, bin(4, 1, 2), false},
		{opBinary, "\x02", 3, bin(2), false},
		{opText, "4hi", 3, txt(4, "hi"), false},
		{opBinary, "", 3, packet{}, true},
		{opBinary, "\x07", 3, packet{}, true},
		{opText, "abc", 4, packet{}, true},
		{opText, "", 4, packet{}, true},
		{opText, "bAQID", 4, packet{}, true},
		{opText, "b4AQID", 3, packet{}, true},
	}
	for _, tt := range tests {
		got, err := decodeFrame(tt.op, []byte(tt.data), tt.protocol)
		if tt.err {
			if err == nil {
				t.Errorf("decodeFrame(%d, %q, %d) = %s, want an error", tt.op, tt.data, tt.protocol, fmtPackets([]packet{got}))
			}
			continue
		}
		if err != nil || !samePackets([]packet{got}, []packet{tt.want}) {
			t.Errorf("decodeFrame(%d, %q, %d) = %s, %v; want %s", tt.op, tt.data, tt.protocol,
				fmtPackets([]packet{got}), err, fmtPackets([]packet{tt.want}))
		}
	}
}

// v3 polling over the wire: binary framing for binary-capable clients,
// "b<type><base64>" for b64 clients, and octet-stream POSTs.
func TestPollingV3Binary(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true}, nil)

	sid, _ := e.handshake("EIO=3&transport=polling")
	s := e.session(sid)
	s.Send(NewMessage([]byte(sioBinaryEvent[1:]), false), NewMessage([]byte{1, 2, 3}, true))
	r := e.mustRequest("GET", v3Query(sid), "")
	want := append([]byte{0x00, 0x05, 0x06, 0xff}, sioBinaryEvent...)
	want = append(want, 0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03)
	if r.body != string(want) {
		t.Errorf("v3 binary GET = % x\nwant             % x", r.body, want)
	}
	if got := r.header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type = %q, want application/octet-stream", got)
	}
	// Non-ASCII text next to binary: the length counts UTF-8 bytes (see
	// TestPayloadV3BinaryNonASCII).
	s.Send(NewMessage([]byte("é"), false), NewMessage([]byte{5}, true))
	r = e.mustRequest("GET", v3Query(sid), "")
	if want := []byte{0x00, 0x03, 0xff, '4', 0xc3, 0xa9, 0x01, 0x02, 0xff, 0x04, 0x05}; r.body != string(want) {
		t.Errorf("v3 binary GET with non-ASCII text = % x\nwant                              % x", r.body, want)
	}
	// Text only: string framing, UTF-16 lengths.
	s.Send(NewMessage([]byte("é😀"), false))
	if r := e.mustRequest("GET", v3Query(sid), ""); r.body != "4:4é😀" {
		t.Errorf("v3 text GET = %q, want %q", r.body, "4:4é😀")
	}

	// b64 at handshake: binary as "b4"+base64 in string framing.
	sid64, _ := e.handshake("EIO=3&transport=polling&b64=1")
	s64 := e.session(sid64)
	s64.Send(NewMessage([]byte{1, 2, 3}, true))
	r = e.mustRequest("GET", "EIO=3&transport=polling&b64=1&sid="+sid64, "")
	if r.body != "6:b4AQID" {
		t.Errorf("v3 b64 GET = %q, want 6:b4AQID", r.body)
	}
	if got := r.header.Get("Content-Type"); got != "text/plain; charset=UTF-8" {
		t.Errorf("b64 Content-Type = %q", got)
	}
}

func TestPollingV3Post(t *testing.T) {
	rec := &received{}
	e := newEnv(t, Config{AllowEIO3: true}, recordingEcho(rec))
	sid, _ := e.handshake("EIO=3&transport=polling")
	// Octet-stream POSTs are v3 binary framing.
	body := string([]byte{0x00, 0x02, 0xff, '4', 'a', 0x01, 0x04, 0xff, 0x04, 9, 8, 7})
	if r := e.mustRequest("POST", v3Query(sid), body, "Content-Type", "application/octet-stream"); r.status != 200 || r.body != "ok" {
		t.Fatalf("octet-stream POST = %d %q", r.status, r.body)
	}
	// String framing with UTF-16 lengths and a base64 binary packet.
	if r := e.mustRequest("POST", v3Query(sid), "3:4😀6:b4AQID", "Content-Type", "text/plain;charset=UTF-8"); r.status != 200 || r.body != "ok" {
		t.Fatalf("string POST = %d %q", r.status, r.body)
	}
	wantMsgs := []string{"t:a", "b:090807", "t:😀", "b:010203"}
	if got := rec.get(); !reflect.DeepEqual(got, wantMsgs) {
		t.Errorf("OnMessage got %q, want %q", got, wantMsgs)
	}
	// Bad framing closes the session.
	e.mustRequest("POST", v3Query(sid), "2:4😀", "Content-Type", "text/plain;charset=UTF-8")
	if got := waitClosed(t, e.session(sid)); got != ReasonParseError {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonParseError)
	}
}
