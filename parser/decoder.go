package parser

import (
	"bytes"
	"encoding/json"
)

// DefaultMaxAttachments is the attachment limit used when
// [Decoder.MaxAttachments] is zero. It matches socket.io-parser.
const DefaultMaxAttachments = 10

// A Decoder turns the Engine.IO messages of one connection into packets.
// A binary packet spans several messages: its text header first, then one
// binary message per attachment.
//
// The zero value is ready to use. A Decoder must not be used by several
// goroutines at once.
type Decoder struct {
	// MaxAttachments is the largest attachment count accepted in a binary
	// packet header. If zero, DefaultMaxAttachments (10) is used. If
	// negative, binary packets with attachments are rejected.
	MaxAttachments int

	// Version selects the protocol rules. If zero, Version5 is used.
	// Version4 (Engine.IO v3 clients) accepts any JSON value as a
	// CONNECT_ERROR payload; every other rule is the same, as in the
	// reference server, which decodes both versions with one parser.
	Version Version

	pending *Packet // binary packet waiting for attachments
	want    int     // attachments pending needs in total
	nsp     string  // last namespace decoded, reused to avoid allocating
}

func (d *Decoder) maxAttachments() int {
	switch {
	case d.MaxAttachments == 0:
		return DefaultMaxAttachments
	case d.MaxAttachments < 0:
		return 0
	}
	return d.MaxAttachments
}

// Add decodes one Engine.IO message: binary reports whether it was a
// binary message. It returns the completed packet, or nil while a binary
// packet still waits for attachments.
//
// Add takes ownership of msg: the returned packet's Data, Namespace bytes
// and Attachments share its memory, so the caller must not reuse msg.
//
// An error wraps [ErrInvalidPacket]; the caller must then close the
// connection. Add resets the decoder on error. The rules are those of
// socket.io-parser 4.x:
//
//   - The type digit must be 0..6.
//   - Binary types need a decimal attachment count followed by '-', at
//     most MaxAttachments ([ErrTooManyAttachments]; checked before
//     anything is allocated).
//   - If the next byte is '/', the namespace runs to the first ',' (which
//     is consumed) or to the end of the message: "40/custom" is valid.
//   - A run of digits is the ack id; it must fit in a uint64.
//   - The rest is the payload, which must be valid JSON if present:
//     CONNECT: absent or an object; DISCONNECT: absent; EVENT and
//     BINARY_EVENT: an array whose first element is a number or a string
//     that is not reserved ([IsReservedEvent]); ACK and BINARY_ACK: an
//     array; CONNECT_ERROR: a string or an object.
//   - A text message while attachments are outstanding is an error
//     ([ErrUnexpectedText]), and so is a binary message when none is
//     expected ([ErrUnexpectedBinary]).
//   - When the last attachment arrives, every placeholder must index one
//     of them ([ErrIllegalAttachments]).
//
// The namespace is not otherwise checked (it may contain spaces, or a
// query string in protocol v4): the server looks it up and answers unknown
// ones with CONNECT_ERROR.
//
// Deliberate differences from socket.io-parser, which lets these through
// to misbehave later: an empty message, an empty attachment count
// ("5-[...]"), and an EVENT, ACK or CONNECT_ERROR without payload are
// errors, and a placeholder num must be an integer.
func (d *Decoder) Add(msg []byte, binary bool) (*Packet, error) {
	if binary {
		if d.pending == nil {
			return nil, ErrUnexpectedBinary
		}
		p := d.pending
		p.Attachments = append(p.Attachments, msg)
		if len(p.Attachments) < d.want {
			return nil, nil
		}
		d.Reset()
		if err := checkPlaceholders(p.Data, len(p.Attachments)); err != nil {
			return nil, err
		}
		return p, nil
	}
	if d.pending != nil {
		d.Reset()
		return nil, ErrUnexpectedText
	}
	p, n, err := d.parse(msg)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		d.pending, d.want = p, n
		p.Attachments = make([][]byte, 0, min(n, 16))
		return nil, nil
	}
	return p, nil
}

// Reset drops a partially received binary packet.
func (d *Decoder) Reset() {
	d.pending, d.want = nil, 0
}

// Pending reports whether a binary packet waits for attachments.
func (d *Decoder) Pending() bool { return d.pending != nil }

// parse decodes a text message. n is the attachment count of a binary
// packet.
func (d *Decoder) parse(msg []byte) (p *Packet, n int, err error) {
	if len(msg) == 0 {
		return nil, 0, errorf(ErrInvalidPacket, "empty message")
	}
	t := Type(msg[0] - '0')
	if !t.Valid() {
		return nil, 0, errorf(ErrUnknownType, "%q", msg[0])
	}
	i := 1
	if t.IsBinary() {
		start, limit := i, d.maxAttachments()
		for ; i < len(msg) && msg[i] >= '0' && msg[i] <= '9'; i++ {
			digit := int(msg[i] - '0')
			if n > limit/10 || n*10 > limit-digit {
				return nil, 0, ErrTooManyAttachments
			}
			n = n*10 + digit
		}
		if i == start || i >= len(msg) || msg[i] != '-' {
			return nil, 0, ErrIllegalAttachments
		}
		i++
	}
	nsp := "/"
	if i < len(msg) && msg[i] == '/' {
		end := bytes.IndexByte(msg[i:], ',')
		if end < 0 {
			end = len(msg) - i
		}
		nsp = d.namespace(msg[i : i+end])
		i += end
		if i < len(msg) {
			i++ // the comma
		}
	}
	var id uint64
	hasID := false
	for ; i < len(msg) && msg[i] >= '0' && msg[i] <= '9'; i++ {
		digit := uint64(msg[i] - '0')
		if id > (1<<64-1-digit)/10 {
			return nil, 0, ErrInvalidAckID
		}
		id = id*10 + digit
		hasID = true
	}
	data := msg[i:len(msg):len(msg)]
	if len(data) == 0 {
		data = nil
	}
	if err := validatePayload(t, data, d.Version); err != nil {
		return nil, 0, err
	}
	return &Packet{Type: t, Namespace: nsp, ID: id, HasID: hasID, Data: data}, n, nil
}

// namespace returns b as a string, reusing the previous one when equal:
// a connection mostly talks on one or two namespaces.
func (d *Decoder) namespace(b []byte) string {
	if string(b) == "/" {
		return "/"
	}
	if string(b) != d.nsp {
		d.nsp = string(b)
	}
	return d.nsp
}

var reservedEvents = [...]string{
	"connect",        // client side
	"connect_error",  // client side
	"disconnect",     // both sides
	"disconnecting",  // server side
	"newListener",    // Node.js EventEmitter
	"removeListener", // Node.js EventEmitter
}

// IsReservedEvent reports whether name has a special meaning in Socket.IO
// and cannot be the name of an event on the wire.
func IsReservedEvent(name string) bool {
	for _, r := range reservedEvents {
		if name == r {
			return true
		}
	}
	return false
}

// isReservedLiteral reports whether the JSON string literal lit decodes to
// a reserved event name, without allocating in the common case.
func isReservedLiteral(lit []byte) bool {
	if len(lit) >= 2 && hasByte(lit[1:len(lit)-1], '\\') {
		name, ok := unquote(lit)
		return ok && IsReservedEvent(name)
	}
	for _, r := range reservedEvents {
		if stringEquals(lit, r) {
			return true
		}
	}
	return false
}

// validatePayload checks data against the shape type t requires.
func validatePayload(t Type, data []byte, v Version) error {
	if len(data) == 0 {
		switch t {
		case Connect, Disconnect:
			return nil
		}
		return errorf(ErrInvalidPayload, "%v packet without payload", t)
	}
	if t == Disconnect {
		return errorf(ErrInvalidPayload, "DISCONNECT packet with payload")
	}
	if !json.Valid(data) {
		return errorf(ErrInvalidPayload, "not valid JSON")
	}
	first := data[skipSpace(data, 0)] // valid JSON is not all whitespace
	switch t {
	case Connect:
		if first != '{' {
			return errorf(ErrInvalidPayload, "CONNECT payload is not an object")
		}
	case ConnectError:
		if first != '{' && first != '"' && v != Version4 {
			return errorf(ErrInvalidPayload, "CONNECT_ERROR payload is neither an object nor a string")
		}
	case Ack, BinaryAck:
		if first != '[' {
			return errorf(ErrInvalidPayload, "%v payload is not an array", t)
		}
	case Event, BinaryEvent:
		start, end, ok := firstElement(data)
		if !ok {
			return errorf(ErrInvalidPayload, "%v payload is not a non-empty array", t)
		}
		switch c := data[start]; {
		case c == '"':
			if lit := data[start:end]; isReservedLiteral(lit) {
				name, _ := unquote(lit)
				return errorf(ErrInvalidPayload, "%q is a reserved event name", name)
			}
		case c == '-' || c >= '0' && c <= '9':
		default:
			return errorf(ErrInvalidPayload, "event name is neither a string nor a number")
		}
	}
	return nil
}

// checkPlaceholders checks that every placeholder in data indexes one of n
// attachments.
func checkPlaceholders(data []byte, n int) error {
	var buf [8]placeholder
	phs, err := findPlaceholders(data, buf[:0])
	if err != nil {
		return err
	}
	for _, ph := range phs {
		if ph.num < 0 || ph.num >= n {
			return ErrIllegalAttachments
		}
	}
	return nil
}
