package engineio

import (
	"encoding/binary"
	"sync"
)

// Message is one outgoing Engine.IO message, encoded lazily and at most once
// for each wire form it is written in (WebSocket v4 frame, v3 frame, polling
// segment). A broadcast builds one Message and hands the same pointer to
// every recipient session: the bytes are shared, never copied per recipient.
//
// A Message is immutable once created; the caller must not modify data after
// passing it to NewMessage.
type Message struct {
	p packet

	wsOnce  sync.Once
	wsFrame []byte // whole unmasked WebSocket frame, v4

	ws3Once  sync.Once
	ws3Frame []byte // whole WebSocket frame, v3 (binary frames carry a type byte)

	pollOnce sync.Once
	poll     []byte // v4 polling form: digit+payload or "b"+base64
}

// NewMessage returns a message packet. binary selects a binary message
// (a WebSocket binary frame; base64 on polling).
func NewMessage(data []byte, binary bool) *Message {
	return &Message{p: packet{typ: packetMessage, data: data, binary: binary}}
}

// Data returns the payload. It must not be modified.
func (m *Message) Data() []byte { return m.p.data }

// Binary reports whether m is a binary message.
func (m *Message) Binary() bool { return m.p.binary }

// size is what m counts against a session's write queue bound.
func (m *Message) size() int { return len(m.p.data) + 1 }

// Control packets are shared by every session.
var (
	pingMessage    = &Message{p: packet{typ: packetPing}}
	pongMessage    = &Message{p: packet{typ: packetPong}}
	noopMessage    = &Message{p: packet{typ: packetNoop}}
	closeMessage   = &Message{p: packet{typ: packetClose}}
	probeMessage   = &Message{p: packet{typ: packetPong, data: []byte("probe")}}
	upgradeMessage = &Message{p: packet{typ: packetUpgrade}}
)

func controlMessage(t packetType, data []byte) *Message {
	return &Message{p: packet{typ: t, data: data}}
}

// webSocketFrame returns the full frame for protocol 4 or 3.
func (m *Message) webSocketFrame(protocol int) []byte {
	if protocol == 3 {
		m.ws3Once.Do(func() {
			if m.p.binary {
				m.ws3Frame = appendFrame(nil, opBinary, []byte{byte(m.p.typ)}, m.p.data)
			} else {
				m.ws3Frame = appendFrame(nil, opText, []byte{'0' + byte(m.p.typ)}, m.p.data)
			}
		})
		return m.ws3Frame
	}
	m.wsOnce.Do(func() {
		if m.p.binary {
			m.wsFrame = appendFrame(nil, opBinary, nil, m.p.data)
		} else {
			m.wsFrame = appendFrame(nil, opText, []byte{'0' + byte(m.p.typ)}, m.p.data)
		}
	})
	return m.wsFrame
}

// pollingV4 returns the v4 polling form of m.
func (m *Message) pollingV4() []byte {
	m.pollOnce.Do(func() {
		m.poll = appendPacketV4Text(make([]byte, 0, 1+len(m.p.data)), m.p)
	})
	return m.poll
}

// WebSocket opcodes used by the server.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// appendFrame appends one final, unmasked WebSocket frame whose payload is
// prefix followed by payload. Server frames are never masked (RFC 6455 §5.1),
// so a frame built once can be written to any number of connections.
func appendFrame(dst []byte, opcode byte, prefix, payload []byte) []byte {
	n := len(prefix) + len(payload)
	if dst == nil {
		dst = make([]byte, 0, n+10)
	}
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, prefix...)
	return append(dst, payload...)
}

// closeFrame builds a WebSocket close frame with a status code and reason.
func closeFrame(code uint16, reason string) []byte {
	body := binary.BigEndian.AppendUint16(nil, code)
	return appendFrame(nil, opClose, body, []byte(reason))
}
