package parser

import (
	"errors"
	"fmt"
)

// Errors returned by [Decoder.Add]. Each one wraps [ErrInvalidPacket]: a
// server that gets any of them must close the whole Engine.IO connection,
// as the reference server does. Errors carry detail and wrap one of these
// sentinels, so test them with [errors.Is].
var (
	// ErrInvalidPacket is wrapped by every decoding error.
	ErrInvalidPacket = errors.New("parser: invalid packet")

	// ErrUnknownType reports a first byte outside '0'..'6'.
	ErrUnknownType = fmt.Errorf("%w: unknown packet type", ErrInvalidPacket)

	// ErrIllegalAttachments reports a malformed attachment count in a
	// binary packet header, or a placeholder whose num does not index a
	// received attachment.
	ErrIllegalAttachments = fmt.Errorf("%w: illegal attachments", ErrInvalidPacket)

	// ErrTooManyAttachments reports an attachment count above
	// [Decoder.MaxAttachments].
	ErrTooManyAttachments = fmt.Errorf("%w: too many attachments", ErrInvalidPacket)

	// ErrInvalidAckID reports an ack id that does not fit in a uint64.
	ErrInvalidAckID = fmt.Errorf("%w: invalid ack id", ErrInvalidPacket)

	// ErrInvalidPayload reports a payload that is not valid JSON or not
	// the JSON shape the packet type requires.
	ErrInvalidPayload = fmt.Errorf("%w: invalid payload", ErrInvalidPacket)

	// ErrUnexpectedText reports a text message that arrived while a binary
	// packet still waited for attachments.
	ErrUnexpectedText = fmt.Errorf("%w: got plaintext data when reconstructing a packet", ErrInvalidPacket)

	// ErrUnexpectedBinary reports a binary message that arrived when no
	// attachment was expected.
	ErrUnexpectedBinary = fmt.Errorf("%w: got binary data when not reconstructing a packet", ErrInvalidPacket)
)

// ErrReservedEvent is returned by [NewEvent] and [Packet.Validate] for an
// event name that Socket.IO reserves (see [IsReservedEvent]). Decoding such
// an event fails with [ErrInvalidPayload] instead.
var ErrReservedEvent = errors.New("parser: reserved event name")

// errorf wraps sentinel with a formatted detail.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
