package engineio

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// ErrorCode is an Engine.IO handshake/request error code, as sent in the JSON
// body {"code":N,"message":"..."} of a rejected HTTP request.
type ErrorCode int

// The codes of the reference server (engine.io server.ts Server.errors).
const (
	ErrTransportUnknown    ErrorCode = 0
	ErrSessionIDUnknown    ErrorCode = 1
	ErrBadHandshakeMethod  ErrorCode = 2
	ErrBadRequest          ErrorCode = 3
	ErrForbidden           ErrorCode = 4
	ErrUnsupportedProtocol ErrorCode = 5
	errorCodeCount                   = 6
)

var errorMessages = [errorCodeCount]string{
	ErrTransportUnknown:    "Transport unknown",
	ErrSessionIDUnknown:    "Session ID unknown",
	ErrBadHandshakeMethod:  "Bad handshake method",
	ErrBadRequest:          "Bad request",
	ErrForbidden:           "Forbidden",
	ErrUnsupportedProtocol: "Unsupported protocol version",
}

// String returns the reference message of the code.
func (c ErrorCode) String() string {
	if c >= 0 && int(c) < len(errorMessages) {
		return errorMessages[c]
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

// HTTPStatus is the status the reference server answers the code with.
func (c ErrorCode) HTTPStatus() int {
	if c == ErrForbidden {
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// RequestError is a rejected Engine.IO request.
type RequestError struct {
	Code    ErrorCode
	Message string // defaults to Code.String()
}

func (e *RequestError) Error() string {
	return "engineio: " + e.message()
}

func (e *RequestError) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.String()
}

// writeRequestError answers an HTTP request with the JSON error body.
func writeRequestError(w http.ResponseWriter, code ErrorCode, message string) {
	if message == "" {
		message = code.String()
	}
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{int(code), message})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code.HTTPStatus())
	w.Write(body)
}

// CloseReason says why a session closed. The strings are those of the
// reference server, which the Socket.IO layer passes on to applications.
type CloseReason string

const (
	// ReasonTransportError: the transport failed (read/write error, protocol
	// violation such as a duplicate poll, oversized WebSocket message).
	ReasonTransportError CloseReason = "transport error"
	// ReasonTransportClose: the client closed the connection or sent close.
	ReasonTransportClose CloseReason = "transport close"
	// ReasonForcedClose: the server application called Session.Close.
	ReasonForcedClose CloseReason = "forced close"
	// ReasonPingTimeout: the client did not answer a ping in time.
	ReasonPingTimeout CloseReason = "ping timeout"
	// ReasonParseError: the client sent a packet that does not decode.
	ReasonParseError CloseReason = "parse error"
	// ReasonServerShutdown: the server is shutting down.
	ReasonServerShutdown CloseReason = "server shutting down"
	// ReasonSlowClient: the client fell more than Config.MaxBufferedBytes
	// behind. The reference server has no such bound.
	ReasonSlowClient CloseReason = "slow client"
)

// ErrSessionClosed is returned by Session.Send after the session closed.
var ErrSessionClosed = errors.New("engineio: session closed")
