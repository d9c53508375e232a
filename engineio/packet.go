package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// packetType is the Engine.IO packet type. On the wire it is one ASCII digit
// (text) or, in v3 binary encodings, one raw byte.
type packetType byte

const (
	packetOpen packetType = iota
	packetClose
	packetPing
	packetPong
	packetMessage
	packetUpgrade
	packetNoop
)

// recordSeparator joins packets in a v4 polling payload.
const recordSeparator = 0x1e

// packet is one decoded Engine.IO packet. For binary packets data holds the
// raw bytes; binary packets are always messages in v4.
type packet struct {
	typ    packetType
	data   []byte
	binary bool
}

// errParse is returned by every decoder for malformed input. The session that
// receives it closes with reason "parse error".
var errParse = errors.New("engineio: parse error")

func parseErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errParse}, args...)...)
}

// decodeTextPacket decodes one text-encoded packet as it appears in a
// WebSocket text frame or a polling payload: a type digit and a payload.
// In a polling payload a binary message is written "b"+base64; v3 adds the
// packet type digit after the "b".
func decodeTextPacket(s []byte, protocol int) (packet, error) {
	if len(s) == 0 {
		return packet{}, parseErrorf("empty packet")
	}
	if s[0] == 'b' {
		body := s[1:]
		typ := packetMessage
		if protocol == 3 {
			if len(body) == 0 || body[0] < '0' || body[0] > '6' {
				return packet{}, parseErrorf("bad binary packet type")
			}
			typ = packetType(body[0] - '0')
			body = body[1:]
		}
		data := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
		n, err := base64.StdEncoding.Decode(data, body)
		if err != nil {
			return packet{}, parseErrorf("bad base64: %v", err)
		}
		return packet{typ: typ, data: data[:n], binary: true}, nil
	}
	if s[0] < '0' || s[0] > '6' {
		return packet{}, parseErrorf("unknown packet type %q", s[0])
	}
	return packet{typ: packetType(s[0] - '0'), data: s[1:]}, nil
}

// decodePayloadV4 splits a v4 polling payload on the record separator.
// Decoding stops at the first bad packet, as in the reference; the packets
// before it are returned with the error.
func decodePayloadV4(body []byte) ([]packet, error) {
	out := make([]packet, 0, 1+bytes.Count(body, []byte{recordSeparator}))
	for {
		item, rest, more := bytes.Cut(body, []byte{recordSeparator})
		p, err := decodeTextPacket(item, 4)
		if err != nil {
			return out, err
		}
		out = append(out, p)
		if !more {
			return out, nil
		}
		body = rest
	}
}

// appendPacketV4Text appends the polling form of a packet in v4: a type digit
// and the payload, or "b" + base64 for a binary message.
func appendPacketV4Text(dst []byte, p packet) []byte {
	if p.binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, p.data)
	}
	dst = append(dst, '0'+byte(p.typ))
	return append(dst, p.data...)
}

// utf16Len counts the UTF-16 code units of s: the JavaScript string length
// that v3 polling framing uses. Invalid UTF-8 counts one unit a byte, as
// the replacement character would.
func utf16Len(s []byte) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		s = s[size:]
		if r >= 0x10000 && r != utf8.RuneError {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// v3TextPacket renders the string form of a v3 packet: the type digit and
// payload, or "b" + type digit + base64 for a binary packet (b64 clients).
func v3TextPacket(dst []byte, p packet) []byte {
	if p.binary {
		dst = append(dst, 'b', '0'+byte(p.typ))
		return base64.StdEncoding.AppendEncode(dst, p.data)
	}
	dst = append(dst, '0'+byte(p.typ))
	return append(dst, p.data...)
}

// appendPayloadV3String appends packets in v3 string framing:
// "<utf16 length>:<packet>" for each.
func appendPayloadV3String(dst []byte, ps []packet) []byte {
	var scratch []byte
	for _, p := range ps {
		scratch = v3TextPacket(scratch[:0], p)
		dst = strconv.AppendInt(dst, int64(utf16Len(scratch)), 10)
		dst = append(dst, ':')
		dst = append(dst, scratch...)
	}
	return dst
}

// appendPayloadV3Binary appends packets in v3 binary framing: for each packet
// a marker byte (0 string, 1 binary), the decimal digits of the length as raw
// byte values, 0xFF, then the packet. A binary packet starts with its type
// byte.
func appendPayloadV3Binary(dst []byte, ps []packet) []byte {
	var scratch []byte
	for _, p := range ps {
		var body []byte
		if p.binary {
			scratch = append(scratch[:0], byte(p.typ))
			scratch = append(scratch, p.data...)
			dst = append(dst, 1)
			body = scratch
		} else {
			scratch = append(scratch[:0], '0'+byte(p.typ))
			scratch = append(scratch, p.data...)
			dst = append(dst, 0)
			body = scratch
		}
		// Lengths count bytes here, strings included: the reference
		// UTF-8-encodes a string packet before measuring it.
		n := len(body)
		for _, d := range strconv.Itoa(n) {
			dst = append(dst, byte(d-'0'))
		}
		dst = append(dst, 0xff)
		dst = append(dst, body...)
	}
	return dst
}

// decodePayloadV3String decodes v3 string framing. Lengths count UTF-16
// units, so the decoder walks runes.
func decodePayloadV3String(body []byte) ([]packet, error) {
	var out []packet
	if len(body) == 0 {
		return nil, parseErrorf("empty payload")
	}
	for len(body) > 0 {
		colon := bytes.IndexByte(body, ':')
		if colon <= 0 || colon > 10 {
			return out, parseErrorf("bad length prefix")
		}
		n := 0
		for _, c := range body[:colon] {
			if c < '0' || c > '9' {
				return out, parseErrorf("bad length prefix")
			}
			n = n*10 + int(c-'0')
		}
		body = body[colon+1:]
		// Advance n UTF-16 units.
		i, units := 0, 0
		for units < n {
			if i >= len(body) {
				return out, parseErrorf("payload shorter than its length")
			}
			r, size := utf8.DecodeRune(body[i:])
			i += size
			if r >= 0x10000 && r != utf8.RuneError {
				units += 2
			} else {
				units++
			}
		}
		if units != n {
			return out, parseErrorf("length splits a character")
		}
		if n == 0 {
			// The reference skips empty packets ("0:").
			continue
		}
		p, err := decodeTextPacket(body[:i], 3)
		if err != nil {
			return out, err
		}
		out = append(out, p)
		body = body[i:]
	}
	return out, nil
}

// decodePayloadV3Binary decodes v3 binary framing (application/octet-stream).
func decodePayloadV3Binary(body []byte) ([]packet, error) {
	var out []packet
	if len(body) == 0 {
		return nil, parseErrorf("empty payload")
	}
	for len(body) > 0 {
		isString := body[0] == 0
		if body[0] > 1 {
			return out, parseErrorf("bad binary payload marker")
		}
		body = body[1:]
		n := 0
		digits := 0
		for {
			if len(body) == 0 {
				return out, parseErrorf("truncated length")
			}
			b := body[0]
			body = body[1:]
			if b == 0xff {
				break
			}
			if b > 9 || digits >= 10 {
				return out, parseErrorf("bad length digit")
			}
			n = n*10 + int(b)
			digits++
		}
		if digits == 0 || n == 0 {
			return out, parseErrorf("empty packet")
		}
		if n > len(body) {
			return out, parseErrorf("payload shorter than its length")
		}
		if isString {
			// String packets are UTF-8 and their length counts bytes.
			p, err := decodeTextPacket(body[:n], 3)
			if err != nil {
				return out, err
			}
			out = append(out, p)
			body = body[n:]
			continue
		}
		if body[0] > 6 {
			return out, parseErrorf("bad binary packet type")
		}
		out = append(out, packet{typ: packetType(body[0]), data: body[1:n], binary: true})
		body = body[n:]
	}
	return out, nil
}
