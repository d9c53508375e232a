package parser

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
)

var errUnsupportedValue = errors.New("parser: unsupported value")

// MarshalArgs encodes args as the JSON array payload of an EVENT or ACK
// packet, taking out binary values as attachments.
//
// Every []byte (or other byte slice type without JSON methods) at any depth
// becomes {"_placeholder":true,"num":N} and is appended to attachments, N
// counting from 0 in document (depth-first) order. The buffers are not
// copied. A nil []byte encodes as null, as encoding/json does.
//
// Values are encoded like encoding/json with HTML escaping off: map keys
// sorted, struct tags honored. These values take a fast path that does not
// use reflection: nil, string, bool, integers, floats, []byte,
// json.RawMessage, [Arg], []any and map[string]any. A json.RawMessage is
// embedded byte for byte (it must be valid JSON; empty means null), so
// received JSON can be sent again unchanged. An [Arg] is embedded byte for
// byte too, except that its placeholders are renumbered for the new
// payload and its buffers appended to attachments.
//
// Other values go through encoding/json; byte slices and Args inside them
// (struct fields, map values, ...) still become placeholders, and
// json.RawMessage values inside them are compacted, as encoding/json does. Byte slices inside
// values that have their own MarshalJSON or MarshalText method, and inside
// pointers to unexported embedded structs, are left to those methods and
// encoding/json.
//
// The event name, if any, is the caller's job: see [MarshalEvent].
func MarshalArgs(args ...any) (data json.RawMessage, attachments [][]byte, err error) {
	return marshal("", false, args)
}

// MarshalEvent is [MarshalArgs] with name prepended: it returns the payload
// ["name",args...]. It does not check whether name is reserved; see
// [NewEvent].
func MarshalEvent(name string, args ...any) (data json.RawMessage, attachments [][]byte, err error) {
	return marshal(name, true, args)
}

func marshal(name string, withName bool, args []any) (json.RawMessage, [][]byte, error) {
	size := 2 + len(name) + 3
	for _, a := range args {
		switch x := a.(type) {
		case string:
			size += len(x) + 3
		case json.RawMessage:
			size += len(x) + 1
		case Arg:
			size += len(x.JSON) + 1
		default:
			size += 24
		}
	}
	e := argEncoder{buf: make([]byte, 0, size)}
	e.buf = append(e.buf, '[')
	if withName {
		e.buf = appendString(e.buf, name)
	}
	for i, a := range args {
		if i > 0 || withName {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(a, 0); err != nil {
			return nil, nil, err
		}
	}
	e.buf = append(e.buf, ']')
	return e.buf, e.atts, nil
}

// NewEvent returns an EVENT packet for namespace nsp ("" or "/" for the
// main one) with payload ["name",args...], or a BINARY_EVENT if args hold
// binary (see [MarshalArgs]). It fails with [ErrReservedEvent] for a
// reserved name. Set ID and HasID on the result to request an ack.
func NewEvent(nsp, name string, args ...any) (*Packet, error) {
	if IsReservedEvent(name) {
		return nil, errorf(ErrReservedEvent, "%q", name)
	}
	data, atts, err := marshal(name, true, args)
	if err != nil {
		return nil, err
	}
	return &Packet{Type: Event, Namespace: nsp, Data: data, Attachments: atts}, nil
}

// NewAck returns the ACK packet answering ack id with args, or a
// BINARY_ACK if args hold binary (see [MarshalArgs]). The ack payload does
// not repeat the event name.
func NewAck(nsp string, id uint64, args ...any) (*Packet, error) {
	data, atts, err := marshal("", false, args)
	if err != nil {
		return nil, err
	}
	return &Packet{Type: Ack, Namespace: nsp, ID: id, HasID: true, Data: data, Attachments: atts}, nil
}

// argEncoder builds one payload.
type argEncoder struct {
	buf  []byte
	atts [][]byte

	// Reflection path state (see reflect.go).
	marks []mark
	nonce []byte // 12 random bytes, set on first use
	pat   []byte // `"` + base64(nonce): how a marker starts in the output
}

func (e *argEncoder) value(v any, depth int) error {
	if depth > maxDepth {
		return errorf(errUnsupportedValue, "value nested too deeply (cyclic?)")
	}
	var err error
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		e.buf = appendString(e.buf, x)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int8:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int16:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case uintptr:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case float32:
		e.buf, err = appendFloat(e.buf, float64(x), 32)
	case float64:
		e.buf, err = appendFloat(e.buf, x, 64)
	case []byte:
		if x == nil {
			e.buf = append(e.buf, "null"...)
		} else {
			e.appendBinary(x)
		}
	case json.RawMessage:
		err = e.appendRaw(x)
	case Arg:
		err = e.appendArg(x)
	case *Arg:
		if x == nil {
			e.buf = append(e.buf, "null"...)
		} else {
			err = e.appendArg(*x)
		}
	case []any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			break
		}
		e.buf = append(e.buf, '[')
		for i, elem := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err = e.value(elem, depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			break
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, k)
			e.buf = append(e.buf, ':')
			if err = e.value(x[k], depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
	default:
		err = e.reflectValue(v, depth)
	}
	return err
}

func (e *argEncoder) appendBinary(b []byte) {
	if e.atts == nil {
		e.atts = make([][]byte, 0, 4)
	}
	e.buf = appendPlaceholder(e.buf, len(e.atts))
	e.atts = append(e.atts, b)
}

func appendPlaceholder(b []byte, num int) []byte {
	b = append(b, `{"_placeholder":true,"num":`...)
	b = strconv.AppendInt(b, int64(num), 10)
	return append(b, '}')
}

func (e *argEncoder) appendRaw(raw json.RawMessage) error {
	if len(raw) == 0 {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	if !json.Valid(raw) {
		return errorf(errUnsupportedValue, "json.RawMessage is not valid JSON")
	}
	e.buf = append(e.buf, raw...)
	return nil
}

func (e *argEncoder) appendArg(a Arg) error {
	if len(a.Attachments) == 0 {
		return e.appendRaw(a.JSON)
	}
	if !json.Valid(a.JSON) {
		return errorf(errUnsupportedValue, "Arg is not valid JSON")
	}
	var buf [8]placeholder
	phs, err := findPlaceholders(a.JSON, buf[:0])
	if err != nil {
		return err
	}
	pos := 0
	for _, ph := range phs {
		if ph.num < 0 || ph.num >= len(a.Attachments) {
			return ErrIllegalAttachments
		}
		e.buf = append(e.buf, a.JSON[pos:ph.start]...)
		if n := len(e.atts); n == ph.num {
			// Same index in the new payload: keep the bytes as they came.
			e.buf = append(e.buf, a.JSON[ph.start:ph.end]...)
			e.atts = append(e.atts, a.Attachments[ph.num])
		} else {
			e.appendBinary(a.Attachments[ph.num])
		}
		pos = ph.end
	}
	e.buf = append(e.buf, a.JSON[pos:]...)
	return nil
}

// An Arg is one argument of a received EVENT or ACK (see [Packet.Args]):
// its JSON exactly as it arrived, and the attachments of the packet it came
// from, which the placeholders in JSON index.
//
// Pass an Arg to [MarshalArgs] (or [MarshalEvent], [NewEvent], [NewAck]) to
// send it again: its JSON is copied byte for byte, with placeholders
// renumbered for the new packet and the buffers re-attached.
type Arg struct {
	JSON        json.RawMessage
	Attachments [][]byte
}

// Unmarshal decodes the argument into v; see [UnmarshalArg].
func (a Arg) Unmarshal(v any) error { return UnmarshalArg(a.JSON, a.Attachments, v) }

// Bytes returns the buffer if the argument is a single binary value, that
// is a placeholder indexing one of the attachments.
func (a Arg) Bytes() ([]byte, bool) {
	if len(a.Attachments) == 0 {
		return nil, false
	}
	var buf [1]placeholder
	phs, err := findPlaceholders(a.JSON, buf[:0])
	if err != nil || len(phs) != 1 {
		return nil, false
	}
	ph := phs[0]
	if ph.start != skipSpace(a.JSON, 0) || ph.num < 0 || ph.num >= len(a.Attachments) {
		return nil, false
	}
	return a.Attachments[ph.num], true
}

// MarshalJSON returns a.JSON (null if empty). It fails if the argument
// holds placeholders, since encoding/json cannot carry attachments: give
// such an Arg to [MarshalArgs] instead, which handles it at any depth.
func (a Arg) MarshalJSON() ([]byte, error) {
	if len(a.JSON) == 0 {
		return []byte("null"), nil
	}
	if len(a.Attachments) > 0 {
		var buf [1]placeholder
		phs, err := findPlaceholders(a.JSON, buf[:0])
		if err != nil {
			return nil, err
		}
		if len(phs) > 0 {
			return nil, errorf(errUnsupportedValue, "Arg with binary attachments marshaled outside MarshalArgs")
		}
	}
	return a.JSON, nil
}

// SplitArray returns the elements of the JSON array data, each a sub-slice
// of data without surrounding whitespace. data should be valid JSON (as a
// decoded packet's Data is); malformed input yields an error, never a
// panic.
func SplitArray(data []byte) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, 4)
	err := forEachElement(data, 0, func(elem []byte) { out = append(out, elem) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UnmarshalArg decodes the JSON argument raw into v, as json.Unmarshal
// does, with each placeholder replaced by its buffer from attachments:
// a []byte target (struct field, slice element, map value, ...) and an
// interface target (any, including inside map[string]any and []any) get
// the buffer itself. Interface targets share the attachment's memory;
// []byte targets get a copy.
//
// With no attachments, placeholders are ordinary objects, as in
// socket.io-parser for packets without attachments. A placeholder whose
// num does not index attachments fails with [ErrIllegalAttachments]. A
// placeholder aimed at another type (a string field, say) gets an
// unspecified string.
func UnmarshalArg(raw json.RawMessage, attachments [][]byte, v any) error {
	if len(attachments) == 0 {
		return json.Unmarshal(raw, v)
	}
	var buf [8]placeholder
	phs, err := findPlaceholders(raw, buf[:0])
	if err != nil || len(phs) == 0 {
		return json.Unmarshal(raw, v)
	}
	for _, ph := range phs {
		if ph.num < 0 || ph.num >= len(attachments) {
			return ErrIllegalAttachments
		}
	}
	if p, ok := v.(*[]byte); ok && p != nil && len(phs) == 1 &&
		phs[0].start == skipSpace(raw, 0) && trailing(raw, phs[0].end) == nil {
		*p = slices.Clone(attachments[phs[0].num])
		return nil
	}
	return unmarshalWithBinary(raw, attachments, phs, v)
}

// newNonce returns n random bytes: marker prefixes must not be guessable
// by peers, but need not be cryptographically strong since they never
// leave the process.
func newNonce(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		x := rand.Uint64()
		for j := i; j < n && j < i+8; j++ {
			b[j] = byte(x)
			x >>= 8
		}
	}
	return b
}
