package parser

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Type is a Socket.IO packet type, written on the wire as one decimal digit.
type Type byte

// Packet types.
const (
	Connect      Type = 0
	Disconnect   Type = 1
	Event        Type = 2
	Ack          Type = 3
	ConnectError Type = 4
	BinaryEvent  Type = 5
	BinaryAck    Type = 6
)

var typeNames = [...]string{
	Connect:      "CONNECT",
	Disconnect:   "DISCONNECT",
	Event:        "EVENT",
	Ack:          "ACK",
	ConnectError: "CONNECT_ERROR",
	BinaryEvent:  "BINARY_EVENT",
	BinaryAck:    "BINARY_ACK",
}

// String returns the protocol name of t, such as "BINARY_EVENT".
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the seven packet types.
func (t Type) Valid() bool { return t <= BinaryAck }

// IsBinary reports whether t is [BinaryEvent] or [BinaryAck], the types
// whose header carries an attachment count.
func (t Type) IsBinary() bool { return t == BinaryEvent || t == BinaryAck }

// IsEvent reports whether t is [Event] or [BinaryEvent].
func (t Type) IsEvent() bool { return t == Event || t == BinaryEvent }

// IsAck reports whether t is [Ack] or [BinaryAck].
func (t Type) IsAck() bool { return t == Ack || t == BinaryAck }

// A Packet is one Socket.IO packet.
//
// Packets returned by [Decoder.Add] share memory with the messages given to
// it. A Packet must not be modified while it is being encoded, and it may be
// encoded by several goroutines at once.
type Packet struct {
	Type Type

	// Namespace is the namespace name, starting with '/'. The empty string
	// means "/". The decoder always sets it; for a protocol v4 CONNECT it
	// may carry a query string (see [SplitNamespace]).
	Namespace string

	// ID is the ack id, meaningful only when HasID is true. A plain uint64
	// plus a flag keeps the struct free of pointers to allocate.
	ID    uint64
	HasID bool

	// Data is the JSON payload, byte for byte as it arrived or as it will
	// be sent, with binary values replaced by placeholders. Empty means no
	// payload.
	Data json.RawMessage

	// Attachments are the binary buffers, in placeholder num order. When
	// encoding, an Event or Ack with attachments is sent as a BinaryEvent
	// or BinaryAck. The decoder keeps the type it read, so "50-[...]"
	// (binary type, zero attachments) round-trips exactly.
	Attachments [][]byte
}

// wireType returns the type written on the wire: an Event or Ack that has
// attachments becomes its binary counterpart, as in socket.io-parser.
func (p *Packet) wireType() Type {
	if len(p.Attachments) > 0 {
		switch p.Type {
		case Event:
			return BinaryEvent
		case Ack:
			return BinaryAck
		}
	}
	return p.Type
}

// Encode returns the text message for p and the attachments to send after
// it, each as one binary Engine.IO message. The text does not include the
// Engine.IO message type '4'.
//
// Encode checks only the framing (see [Packet.AppendText]); use
// [Packet.Validate] to check the payload too.
func Encode(p *Packet) (text []byte, attachments [][]byte, err error) {
	text, err = p.AppendText(make([]byte, 0, p.textLen()))
	if err != nil {
		return nil, nil, err
	}
	return text, p.Attachments, nil
}

// textLen returns an upper bound of the encoded text length.
func (p *Packet) textLen() int {
	return 1 + 21 + len(p.Namespace) + 1 + 20 + len(p.Data)
}

// AppendText appends the text message of p to b and returns the extended
// buffer: the type digit, "<attachments>-" for binary types, "<nsp>," when
// the namespace is not "/", the ack id digits, then Data as is. It
// implements [encoding.TextAppender].
//
// It returns an error wrapping [ErrInvalidPacket] if the packet cannot be
// framed: an unknown type, a namespace that does not start with '/' or
// contains ',', or attachments on a type that cannot carry them.
func (p *Packet) AppendText(b []byte) ([]byte, error) {
	t := p.wireType()
	if !t.Valid() {
		return b, errorf(ErrUnknownType, "%d", byte(t))
	}
	if err := checkNamespace(p.Namespace); err != nil {
		return b, err
	}
	if len(p.Attachments) > 0 && !t.IsBinary() {
		return b, errorf(ErrIllegalAttachments, "%v packet cannot carry attachments", t)
	}
	b = append(b, '0'+byte(t))
	if t.IsBinary() {
		b = strconv.AppendInt(b, int64(len(p.Attachments)), 10)
		b = append(b, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		b = append(b, p.Namespace...)
		b = append(b, ',')
	}
	if p.HasID {
		b = strconv.AppendUint(b, p.ID, 10)
	}
	return append(b, p.Data...), nil
}

func checkNamespace(nsp string) error {
	if nsp == "" {
		return nil
	}
	if nsp[0] != '/' || strings.IndexByte(nsp, ',') >= 0 {
		return errorf(ErrInvalidPacket, "invalid namespace %q", nsp)
	}
	return nil
}

// Validate checks p against the protocol v5 rules the decoder applies to
// incoming packets (see [Decoder.Add]), plus the framing rules of
// [Packet.AppendText]. Use it on packets built by hand. (A protocol v4
// CONNECT_ERROR with a payload other than a string or an object fails it
// while being valid in v4.)
func (p *Packet) Validate() error {
	if _, err := p.AppendText(nil); err != nil {
		return err
	}
	if err := validatePayload(p.Type, p.Data, Version5); err != nil {
		return err
	}
	if len(p.Attachments) > 0 {
		return checkPlaceholders(p.Data, len(p.Attachments))
	}
	return nil
}

// String returns the text form of p for logs and tests, followed by the
// number of attachments if there are any.
func (p *Packet) String() string {
	b, err := p.AppendText(nil)
	if err != nil {
		return "<invalid packet: " + err.Error() + ">"
	}
	if n := len(p.Attachments); n > 0 {
		b = append(b, " +"...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, " attachments"...)
	}
	return string(b)
}

// EventName returns the event name of an EVENT or BINARY_EVENT packet: the
// first element of Data, unescaped. A numeric name (which the protocol
// allows) is returned as its JSON text, e.g. "1", matching JavaScript's
// property-key conversion. ok is false for other packet types and for
// malformed data.
func (p *Packet) EventName() (name string, ok bool) {
	if !p.Type.IsEvent() {
		return "", false
	}
	start, end, ok := firstElement(p.Data)
	if !ok {
		return "", false
	}
	first := p.Data[start:end]
	if first[0] == '"' {
		return unquote(first)
	}
	if first[0] == '-' || first[0] >= '0' && first[0] <= '9' {
		return string(first), true
	}
	return "", false
}

// Args returns the arguments of an EVENT or ACK packet, binary or not: for
// events, the elements of Data after the event name; for acks, all of
// them. Each [Arg] holds its JSON exactly as it arrived (a sub-slice of
// Data, not a copy) and the packet's attachments, which its placeholders
// refer to.
//
// To emit received arguments again, pass the Args to [MarshalArgs],
// [MarshalEvent], [NewEvent] or [NewAck]: placeholders are renumbered for
// the new packet and the buffers re-attached, so echoing all arguments in
// order reproduces them byte for byte.
func (p *Packet) Args() ([]Arg, error) {
	skip := 0
	switch {
	case p.Type.IsEvent():
		skip = 1
	case p.Type.IsAck():
	default:
		return nil, errorf(ErrInvalidPacket, "%v packet has no arguments", p.Type)
	}
	args := make([]Arg, 0, 4)
	err := forEachElement(p.Data, skip, func(elem []byte) {
		args = append(args, Arg{JSON: elem, Attachments: p.Attachments})
	})
	if err != nil {
		return nil, err
	}
	return args, nil
}
