package main

// A WebSocket frame reader for the load generator (RFC 6455 §5.2), written
// for cost per frame: it parses frames in place in whatever one read
// returned, so one read syscall can carry many frames and a frame costs no
// allocation. Only a frame split across reads or a fragmented message is
// copied (into per-connection buffers that are kept while small).

import (
	"encoding/binary"
	"errors"
	"io"
)

const (
	opCont  = 0x0
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA

	// maxFrame bounds one frame's payload (the messages of the benchmark are
	// < 1 KB; this only stops a corrupt length from allocating).
	maxFrame = 16 << 20
)

var errFrameTooLarge = errors.New("websocket: frame too large")

// frameSize returns the total size (header + payload) of the frame that
// starts b, as far as b tells: while b is shorter than the header it returns
// the number of bytes needed to learn more, so the caller can gather exactly
// that many; once the header is complete, the frame's full size. hlen is the
// header length (0 until known).
func frameSize(b []byte) (hlen, size int, err error) {
	if len(b) < 2 {
		return 0, 2, nil
	}
	hlen = 2
	n := uint64(b[1] & 0x7f)
	switch n {
	case 126:
		hlen = 4
	case 127:
		hlen = 10
	}
	if b[1]&0x80 != 0 {
		hlen += 4 // masking key (servers do not mask, but accept it)
	}
	if len(b) < hlen {
		return 0, hlen, nil
	}
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		n = binary.BigEndian.Uint64(b[2:])
	}
	if n > maxFrame {
		return 0, 0, errFrameTooLarge
	}
	return hlen, hlen + int(n), nil
}

// frameSink receives what a frameReader parses. message's p (a whole text
// or binary message) is valid only during the call; returning true stops
// the reader (the rest of the input is dropped).
type frameSink interface {
	message(p []byte) (stop bool)
	ping(p []byte) // answered with a pong by the sink
}

// frameReader is one connection's parsing state between reads.
type frameReader struct {
	carry []byte // the start of a frame the previous read ended inside
	frag  []byte // payloads of a fragmented message so far
}

// errClosed is returned after a close frame (or a sink's stop).
var errClosed = io.EOF

// feed parses the bytes of one read. It returns errClosed once a close frame
// arrived or the sink asked to stop, or a protocol error.
func (r *frameReader) feed(data []byte, s frameSink) error {
	if len(r.carry) > 0 {
		// Complete the frame left over from the last read, taking from data
		// exactly the bytes it still needs.
		for {
			hlen, size, err := frameSize(r.carry)
			if err != nil {
				return err
			}
			if len(r.carry) < size { // (always so while the header is incomplete)
				if len(data) == 0 {
					return nil
				}
				k := min(size-len(r.carry), len(data))
				r.carry = append(r.carry, data[:k]...)
				data = data[k:]
				continue // size again: a completed header tells the full size
			}
			err = r.frame(r.carry[:size], hlen, s)
			if cap(r.carry) > 4096 {
				r.carry = nil // a large frame went by: do not keep its buffer
			} else {
				r.carry = r.carry[:0]
			}
			if err != nil {
				return err
			}
			break
		}
	}
	for len(data) > 0 {
		hlen, size, err := frameSize(data)
		if err != nil {
			return err
		}
		if len(data) < size {
			r.carry = append(r.carry[:0], data...)
			return nil
		}
		if err := r.frame(data[:size], hlen, s); err != nil {
			return err
		}
		data = data[size:]
	}
	return nil
}

// frame handles one complete frame f whose header is hlen bytes.
func (r *frameReader) frame(f []byte, hlen int, s frameSink) error {
	fin, op := f[0]&0x80 != 0, f[0]&0x0f
	p := f[hlen:]
	if f[1]&0x80 != 0 {
		mask := f[hlen-4 : hlen]
		for i := range p {
			p[i] ^= mask[i&3]
		}
	}
	switch op {
	case opPing:
		s.ping(p)
		return nil
	case opPong:
		return nil
	case opClose:
		return errClosed
	}
	if fin && len(r.frag) == 0 {
		if s.message(p) {
			return errClosed
		}
		return nil
	}
	r.frag = append(r.frag, p...)
	if !fin {
		return nil
	}
	stop := s.message(r.frag)
	if cap(r.frag) > 4096 {
		r.frag = nil
	} else {
		r.frag = r.frag[:0]
	}
	if stop {
		return errClosed
	}
	return nil
}
