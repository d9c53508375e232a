package herald

import (
	"encoding/json"
	"errors"
)

// DisconnectReason says why a socket left its namespace. The strings are
// those of the Node.js server (socket.io DisconnectReason).
type DisconnectReason string

const (
	// ReasonTransportError: the connection failed.
	ReasonTransportError DisconnectReason = "transport error"
	// ReasonTransportClose: the client closed the connection.
	ReasonTransportClose DisconnectReason = "transport close"
	// ReasonForcedClose: the Engine.IO session was closed by the server.
	ReasonForcedClose DisconnectReason = "forced close"
	// ReasonPingTimeout: the client stopped answering pings.
	ReasonPingTimeout DisconnectReason = "ping timeout"
	// ReasonParseError: the client sent a packet that does not decode.
	ReasonParseError DisconnectReason = "parse error"
	// ReasonServerShuttingDown: the server is shutting down.
	ReasonServerShuttingDown DisconnectReason = "server shutting down"
	// ReasonForcedServerClose: Socket.Disconnect(true) closed the connection.
	ReasonForcedServerClose DisconnectReason = "forced server close"
	// ReasonClientNamespaceDisconnect: the client left the namespace.
	ReasonClientNamespaceDisconnect DisconnectReason = "client namespace disconnect"
	// ReasonServerNamespaceDisconnect: Socket.Disconnect(false) on the server.
	ReasonServerNamespaceDisconnect DisconnectReason = "server namespace disconnect"
	// ReasonSlowClient: the client fell too far behind (Herald only).
	ReasonSlowClient DisconnectReason = "slow client"
)

// recoverable reports whether a socket that left for this reason may come
// back with connection-state recovery.
func (r DisconnectReason) recoverable() bool {
	switch r {
	case ReasonTransportError, ReasonTransportClose, ReasonForcedClose, ReasonPingTimeout,
		ReasonServerShuttingDown, ReasonForcedServerClose, ReasonSlowClient:
		return true
	}
	return false
}

// ConnectError rejects a connection from namespace middleware. The client
// gets a CONNECT_ERROR packet with Message and, if set, Data (any value
// encoding/json accepts).
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// NewConnectError returns a ConnectError with a message and optional data.
func NewConnectError(message string, data any) *ConnectError {
	return &ConnectError{Message: message, Data: data}
}

func (e *ConnectError) dataJSON() json.RawMessage {
	if e.Data == nil {
		return nil
	}
	b, err := json.Marshal(e.Data)
	if err != nil {
		return nil
	}
	return b
}

var (
	// ErrDisconnected is returned when emitting on a socket that has left.
	ErrDisconnected = errors.New("herald: socket disconnected")
	// ErrAckTimeout is returned (wrapped) by EmitWithAck when the deadline
	// passes before every acknowledgement arrived.
	ErrAckTimeout = errors.New("herald: operation has timed out")
	// ErrReservedEvent is returned when emitting a reserved event name.
	ErrReservedEvent = errors.New("herald: reserved event name")
)
