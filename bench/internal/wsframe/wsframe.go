// Package wsframe is what the benchmark's WebSocket clients (bench/suite,
// bench/loadgen) share: encoding a client frame.
package wsframe

import (
	"encoding/binary"
	"math/rand/v2"
)

// AppendMasked appends one final client frame with opcode op and payload p
// to buf, masked with a random key as RFC 6455 §5.3 requires of clients.
func AppendMasked(buf []byte, op byte, p []byte) []byte {
	buf = append(buf, 0x80|op)
	switch n := len(p); {
	case n < 126:
		buf = append(buf, 0x80|byte(n))
	case n <= 0xffff:
		buf = append(buf, 0x80|126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, 0x80|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	buf = append(buf, mask[:]...)
	start := len(buf)
	buf = append(buf, p...)
	for i := range buf[start:] {
		buf[start+i] ^= mask[i&3]
	}
	return buf
}
