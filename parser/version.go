package parser

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Version is a Socket.IO protocol version.
type Version int

// Protocol versions. Version5 is spoken by socket.io 3.x and 4.x clients
// over Engine.IO v4; Version4 by socket.io 2.x clients over Engine.IO v3.
const (
	Version4 Version = 4
	Version5 Version = 5
)

// Protocol is the protocol version this package implements by default.
const Protocol = Version5

func (v Version) String() string { return "v" + strconv.Itoa(int(v)) }

// SplitNamespace splits a namespace as a protocol v4 client sends it in
// CONNECT, "/nsp?token=abc", into the name "/nsp" and the raw query
// "token=abc" (not unescaped; use net/url.ParseQuery). Without '?', query
// is empty. In v4 the query carries what v5 sends as the CONNECT payload
// (the handshake auth).
func SplitNamespace(nsp string) (name, query string) {
	name, query, _ = strings.Cut(nsp, "?")
	return name, query
}

// ConnectPayload returns the payload of the CONNECT packet a server sends
// to accept a protocol v5 client: {"sid":"..."}, plus "pid" when pid is
// not empty (connection state recovery). The reference server sends
// exactly these keys in this order, and conformance tests check that no
// other key is present. A protocol v4 server sends CONNECT without payload.
func ConnectPayload(sid, pid string) json.RawMessage {
	b := make([]byte, 0, 18+len(sid)+len(pid))
	b = append(b, `{"sid":`...)
	b = appendString(b, sid)
	if pid != "" {
		b = append(b, `,"pid":`...)
		b = appendString(b, pid)
	}
	return append(b, '}')
}

// ConnectErrorPayload returns the payload of a CONNECT_ERROR packet for
// protocol version v, from an error message and optional JSON data (empty
// means none):
//
//   - v5: {"message":<message>} or {"message":<message>,"data":<data>},
//     e.g. {"message":"Invalid namespace"}.
//   - v4: data alone if it is present and not falsy in JavaScript terms
//     (null, false, 0, ""), else message as a JSON string; this is the
//     reference's err.data || err.message.
//
// data is embedded as is; an error is returned if it is not valid JSON.
func ConnectErrorPayload(v Version, message string, data json.RawMessage) (json.RawMessage, error) {
	if len(data) > 0 && !json.Valid(data) {
		return nil, errorf(ErrInvalidPayload, "CONNECT_ERROR data is not valid JSON")
	}
	if v == Version4 {
		if len(data) > 0 && !isFalsy(data) {
			return data, nil
		}
		return appendString(nil, message), nil
	}
	b := make([]byte, 0, 16+len(message)+len(data)+8)
	b = append(b, `{"message":`...)
	b = appendString(b, message)
	if len(data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	return append(b, '}'), nil
}

// isFalsy reports whether the valid JSON value data is falsy in JavaScript.
func isFalsy(data []byte) bool {
	data = trimSpace(data)
	switch string(data) {
	case "null", "false", `""`:
		return true
	}
	if c := data[0]; c == '-' || c >= '0' && c <= '9' {
		f, err := strconv.ParseFloat(string(data), 64)
		return err == nil && f == 0
	}
	return false
}

func trimSpace(b []byte) []byte {
	i := skipSpace(b, 0)
	j := len(b)
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}
