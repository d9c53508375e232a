package engineio

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Seeds from the protocol notes and the reference transcripts.
var (
	openJSON   = `{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	v3OpenSeed = fmt.Sprintf("%d:0%s", len(openJSON)+1, openJSON)
	v3BinSeed  = append(append([]byte{0x00, 0x05, 0x06, 0xff}, sioBinaryEvent...), 0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03)

	textSeeds = []string{
		"", "abc", "4hello", "4hello\x1ebAQIDBA==", "4test1\x1e4test2\x1e4test3",
		"0" + openJSON, "1", "2", "2probe", "3", "3probe", "5", "6", "b", "bAQID", "b4AQID",
		"4é😀", "4\xff\xfe", "\x1e", "4a\x1e", "\x1e4a", "bAQ=D", "b!!", "7", "b2",
		`42["hello","world","abcd"]`, `451-["bin-back",{"_placeholder":true,"num":0},"Q83xJ50"]`,
	}
	v3StringSeeds = []string{
		"", "0:", "1:2", "1:3", "6:2probe", "6:b4AQID", "113:0{...}", v3OpenSeed,
		"2:40" + `26:42["hello","world","abcd"]`, "2:4é", "3:4😀", "2:4😀", "x:4", "-1:4",
		"12345678901:4", "1:4" + "9:4", "1:b", "1:6" + "6:b4AQID" + "1:1",
	}
)

// decodeAgain re-encodes packets with enc and decodes them with dec, failing
// unless the same packets come back without error.
func roundTrip(t *testing.T, name string, ps []packet, enc func([]packet) []byte, dec func([]byte) ([]packet, error)) {
	t.Helper()
	if len(ps) == 0 {
		return
	}
	wire := enc(ps)
	again, err := dec(wire)
	if err != nil {
		t.Fatalf("%s: re-encoded %s as %q, which does not decode: %v", name, fmtPackets(ps), wire, err)
	}
	if !samePackets(again, ps) {
		t.Fatalf("%s: %s -> %q -> %s", name, fmtPackets(ps), wire, fmtPackets(again))
	}
	// The encoding is canonical: encoding the result again gives the same bytes.
	if wire2 := enc(again); !bytes.Equal(wire2, wire) {
		t.Fatalf("%s: encoding is not stable: %q then %q", name, wire, wire2)
	}
}

func checkPacketShape(t *testing.T, ps []packet, protocol int) {
	t.Helper()
	for _, p := range ps {
		if p.typ > packetNoop {
			t.Fatalf("decoded packet type %d", p.typ)
		}
		if protocol == 4 && p.binary && p.typ != packetMessage {
			t.Fatalf("v4 binary packet of type %d", p.typ)
		}
	}
}

func encodeV4(ps []packet) []byte {
	var out []byte
	for i, p := range ps {
		if i > 0 {
			out = append(out, recordSeparator)
		}
		out = appendPacketV4Text(out, p)
	}
	return out
}

func FuzzDecodePayloadV4(f *testing.F) {
	for _, s := range textSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(nil), data...)
		ps, err := decodePayloadV4(data)
		if !bytes.Equal(in, data) {
			t.Fatal("decodePayloadV4 modified its input")
		}
		checkPacketShape(t, ps, 4)
		if err != nil && len(ps) > bytes.Count(data, []byte{recordSeparator}) {
			t.Fatalf("error %v with all %d packets decoded", err, len(ps))
		}
		if err == nil && len(ps) != bytes.Count(data, []byte{recordSeparator})+1 {
			t.Fatalf("%d packets from %d separators", len(ps), bytes.Count(data, []byte{recordSeparator}))
		}
		// What was decoded (all, or the prefix before an error) round-trips.
		roundTrip(t, "v4 payload", ps, encodeV4, decodePayloadV4)
	})
}

func FuzzDecodePayloadV3String(f *testing.F) {
	for _, s := range v3StringSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := decodePayloadV3String(data)
		checkPacketShape(t, ps, 3)
		// "0:" segments are empty packets the reference skips; anything
		// else that decodes yields packets.
		if err == nil && len(ps) == 0 && strings.Trim(string(data), "0:") != "" {
			t.Fatalf("no packets and no error from %q", data)
		}
		roundTrip(t, "v3 string payload", ps,
			func(ps []packet) []byte { return appendPayloadV3String(nil, ps) }, decodePayloadV3String)
	})
}

func FuzzDecodePayloadV3Binary(f *testing.F) {
	f.Add(v3BinSeed)
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x01, 0xff, '2'})
	f.Add([]byte{0x01, 0x01, 0xff, 0x04})
	f.Add([]byte{0x01, 0x03, 0xff, 0x04})
	f.Add([]byte{0x02, 0x01, 0xff, '4'})
	f.Add(append([]byte{0x00, 0x03, 0xff}, "4é"...))
	f.Add(append([]byte{0x00, 0x05, 0xff}, "4😀"...))
	f.Add([]byte{0x00, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0xff})
	f.Add(append([]byte{0x00, 0x06, 0xff}, "b4AQID"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := decodePayloadV3Binary(data)
		checkPacketShape(t, ps, 3)
		if err == nil && len(ps) == 0 && len(data) > 0 {
			t.Fatalf("no packets and no error from % x", data)
		}
		roundTrip(t, "v3 binary payload", ps,
			func(ps []packet) []byte { return appendPayloadV3Binary(nil, ps) }, decodePayloadV3Binary)
	})
}

func FuzzDecodeTextPacket(f *testing.F) {
	for _, s := range textSeeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, v3 bool) {
		protocol := 4
		if v3 {
			protocol = 3
		}
		p, err := decodeTextPacket(data, protocol)
		if err != nil {
			return
		}
		checkPacketShape(t, []packet{p}, protocol)
		if !p.binary && !bytes.Equal(append([]byte{'0' + byte(p.typ)}, p.data...), data) {
			t.Fatalf("text packet %s does not match its input %q", fmtPackets([]packet{p}), data)
		}
		enc := func(ps []packet) []byte { return appendPacketV4Text(nil, ps[0]) }
		if protocol == 3 {
			enc = func(ps []packet) []byte { return v3TextPacket(nil, ps[0]) }
		}
		dec := func(b []byte) ([]packet, error) {
			p, err := decodeTextPacket(b, protocol)
			return []packet{p}, err
		}
		roundTrip(t, fmt.Sprintf("v%d text packet", protocol), []packet{p}, enc, dec)
	})
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(byte(opText), []byte(s), false)
	}
	f.Add(byte(opBinary), []byte{1, 2, 3, 4}, false)
	f.Add(byte(opBinary), []byte{}, false)
	f.Add(byte(opBinary), []byte{4, 1, 2, 3}, true)
	f.Add(byte(opBinary), []byte{7}, true)
	f.Add(byte(opBinary), []byte{}, true)
	f.Add(byte(opText), []byte("4hi"), true)
	f.Fuzz(func(t *testing.T, op byte, data []byte, v3 bool) {
		protocol := 4
		if v3 {
			protocol = 3
		}
		op = opText + op%2 // text or binary
		p, err := decodeFrame(op, data, protocol)
		if err != nil {
			return
		}
		checkPacketShape(t, []packet{p}, protocol)
		if (op == opBinary) != p.binary {
			t.Fatalf("op %d decoded as binary=%v", op, p.binary)
		}
		// Encode as the server would and read the frame back.
		m := &Message{p: p}
		frame := m.webSocketFrame(protocol)
		h, err := ws.ReadHeader(bytes.NewReader(frame))
		if err != nil {
			t.Fatalf("server frame % x: %v", frame, err)
		}
		if h.Masked || !h.Fin || byte(h.OpCode) != op {
			t.Fatalf("server frame header %+v for op %d", h, op)
		}
		payload := frame[len(frame)-int(h.Length):]
		if ws.HeaderSize(h)+int(h.Length) != len(frame) {
			t.Fatalf("frame length %d, header says %d+%d", len(frame), ws.HeaderSize(h), h.Length)
		}
		again, err := decodeFrame(op, payload, protocol)
		if err != nil || !samePackets([]packet{again}, []packet{p}) {
			t.Fatalf("%s -> % x -> %s, %v", fmtPackets([]packet{p}), frame, fmtPackets([]packet{again}), err)
		}
	})
}

// discardConn is a net.Conn that swallows writes: the reader answers pings
// and closes through it.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (discardConn) LocalAddr() net.Addr              { return nil }
func (discardConn) RemoteAddr() net.Addr             { return nil }

// FuzzReadMessage feeds raw bytes to the WebSocket frame reader.
func FuzzReadMessage(f *testing.F) {
	frame := func(op ws.OpCode, fin bool, p string) []byte {
		var b bytes.Buffer
		ws.WriteFrame(&b, ws.MaskFrame(ws.NewFrame(op, fin, []byte(p))))
		return b.Bytes()
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	f.Add(frame(ws.OpText, true, "4hello"))
	f.Add(frame(ws.OpBinary, true, "\x01\x02"))
	f.Add(cat(frame(ws.OpText, false, "4he"), frame(ws.OpPing, true, "x"), frame(ws.OpContinuation, true, "llo")))
	f.Add(frame(ws.OpClose, true, "\x03\xe8"))
	f.Add(frame(ws.OpText, true, "4"+string(bytes.Repeat([]byte("a"), 200))))
	f.Add(frame(ws.OpContinuation, true, "4"))
	f.Add(frame(ws.OpText, true, "\xff"))
	f.Add([]byte{0x81, 0x05, '4', 'h', 'e', 'l', 'o'}) // unmasked
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 100
		c := &wsConn{conn: discardConn{}, rd: bytes.NewReader(data)}
		for i := 0; i < 8; i++ {
			op, msg, err := c.readMessage(max, time.Second)
			if err != nil {
				return
			}
			if len(msg) > max {
				t.Fatalf("message of %d bytes over the %d limit", len(msg), max)
			}
			if op == opText && !utf8.Valid(msg) {
				t.Fatalf("invalid UTF-8 text message %q", msg)
			}
			if op == opContinuation || op >= opClose {
				t.Fatalf("readMessage returned opcode %d", op)
			}
		}
	})
}
