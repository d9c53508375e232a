package herald

import (
	"encoding/json"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/herald-rt/herald/engineio"
	"github.com/herald-rt/herald/parser"
)

// client is one Engine.IO connection and the sockets it has opened, one per
// namespace. Packets from the connection are handled one at a time, in
// order, on the connection's reading goroutine.
type client struct {
	srv  *Server
	conn *engineio.Session
	// decoder is used only on the reading goroutine; its Version, set
	// before the client is shared, is the client's protocol version.
	decoder parser.Decoder

	mu     sync.Mutex // guards the fields below
	closed bool
	// sockets are the joined namespaces' sockets, one per namespace; a
	// client rarely joins more than a few, so a slice costs less than a map.
	sockets      []*Socket
	connectTimer *time.Timer
}

func newClient(srv *Server, conn *engineio.Session) {
	c := &client{srv: srv, conn: conn}
	c.decoder.Version = parser.Version5
	if conn.Protocol() == 3 {
		c.decoder.Version = parser.Version4
	}
	conn.OnMessage(c.onMessage)
	conn.OnClose(c.onClose)
	c.connectTimer = time.AfterFunc(srv.connectTimeout, c.onConnectTimeout)
	if c.version() == parser.Version4 {
		// Protocol v4 clients are connected to the main namespace at once.
		c.connect("/", nil)
	}
}

// version returns the client's Socket.IO protocol version.
func (c *client) version() parser.Version { return c.decoder.Version }

func (c *client) onConnectTimeout() {
	c.mu.Lock()
	joined := len(c.sockets) > 0
	c.mu.Unlock()
	if !joined {
		c.conn.Close()
	}
}

// onMessage decodes one Engine.IO message. Any violation closes the whole
// connection, as in the Node.js server.
func (c *client) onMessage(data []byte, binary bool) {
	pkt, err := c.decoder.Add(data, binary)
	if err != nil {
		c.srv.log.Debug("herald: bad packet, closing connection", "sid", c.conn.ID(), "err", err)
		c.closeWith(ReasonParseError)
		return
	}
	if pkt == nil {
		return // waiting for attachments
	}
	name := pkt.Namespace
	if name == "" {
		name = "/"
	}
	if pkt.Type == parser.Connect {
		if c.version() == parser.Version4 {
			nsp, query := parser.SplitNamespace(name)
			c.connect(nsp, queryAuth(query))
			return
		}
		c.connect(name, pkt.Data)
		return
	}
	c.mu.Lock()
	sock := c.socketLocked(name)
	c.mu.Unlock()
	if sock == nil {
		// A packet for a namespace the client has not joined.
		c.closeWith(ReasonParseError)
		return
	}
	switch pkt.Type {
	case parser.Disconnect:
		sock.onClose(ReasonClientNamespaceDisconnect, false)
	case parser.Event, parser.BinaryEvent:
		sock.onEvent(pkt)
	case parser.Ack, parser.BinaryAck:
		sock.onAck(pkt)
	default:
		// CONNECT_ERROR never comes from a client.
		c.closeWith(ReasonParseError)
	}
}

// queryAuth turns a v4 namespace query string into an auth object.
func queryAuth(query string) json.RawMessage {
	if query == "" {
		return nil
	}
	parsed, _ := url.ParseQuery(query)
	values := make(map[string]string, len(parsed))
	for k, v := range parsed {
		values[k] = v[0]
	}
	b, _ := json.Marshal(values)
	return b
}

// connect joins the client to a namespace (CONNECT packet).
func (c *client) connect(name string, auth json.RawMessage) {
	c.mu.Lock()
	dup := c.socketLocked(name) != nil
	c.mu.Unlock()
	if dup {
		// A second CONNECT to a joined namespace is a protocol violation.
		c.closeWith(ReasonParseError)
		return
	}
	nsp := c.srv.lookupNamespace(name, auth)
	if nsp == nil {
		c.sendConnectError(name, "Invalid namespace", nil)
		return
	}
	nsp.add(c, auth)
}

func (c *client) sendConnectError(nsp, message string, data json.RawMessage) {
	payload, err := parser.ConnectErrorPayload(c.version(), message, data)
	if err != nil {
		payload, _ = parser.ConnectErrorPayload(c.version(), message, nil)
	}
	c.writePacket(&parser.Packet{Type: parser.ConnectError, Namespace: nsp, Data: payload})
}

// addSocket records a socket that completed its connection.
func (c *client) addSocket(s *Socket) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if old := c.socketLocked(s.nsp.name); old != nil {
		c.removeLocked(old)
	}
	c.sockets = append(c.sockets, s)
	if c.connectTimer != nil {
		c.connectTimer.Stop()
		c.connectTimer = nil
	}
	return true
}

func (c *client) removeSocket(s *Socket) {
	c.mu.Lock()
	c.removeLocked(s)
	c.mu.Unlock()
}

// socketLocked returns the client's socket in the named namespace, or nil.
func (c *client) socketLocked(nsp string) *Socket {
	for _, s := range c.sockets {
		if s.nsp.name == nsp {
			return s
		}
	}
	return nil
}

// removeLocked forgets s.
func (c *client) removeLocked(s *Socket) {
	if i := slices.Index(c.sockets, s); i >= 0 {
		c.sockets = slices.Delete(c.sockets, i, i+1)
	}
}

// writePacket encodes and sends one packet to this client only.
func (c *client) writePacket(p *parser.Packet) error {
	msgs, err := encodePacket(p)
	if err != nil {
		return err
	}
	return c.conn.SendDirect(msgs...)
}

// writePacketLater queues one packet for this client to leave with the
// next one written, or at flush (engineio.Session.SendLater).
func (c *client) writePacketLater(p *parser.Packet) error {
	msgs, err := encodePacket(p)
	if err != nil {
		return err
	}
	return c.conn.SendLater(msgs...)
}

// flush writes what writePacketLater queued, if nothing has yet.
func (c *client) flush() { c.conn.Flush() }

// onClose runs when the Engine.IO connection has closed.
func (c *client) onClose(reason engineio.CloseReason) {
	c.mu.Lock()
	c.closed = true
	if c.connectTimer != nil {
		c.connectTimer.Stop()
	}
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	c.mu.Unlock()
	r := DisconnectReason(reason)
	if reason == engineio.ReasonServerShutdown {
		r = ReasonServerShuttingDown
	}
	for _, s := range socks {
		s.onClose(r, false)
	}
	c.decoder.Reset()
}

// closeWith disconnects every socket with reason, then closes the
// connection.
func (c *client) closeWith(reason DisconnectReason) {
	c.mu.Lock()
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	c.mu.Unlock()
	for _, s := range socks {
		s.onClose(reason, false)
	}
	c.conn.Close()
}

// encodePacket turns a Socket.IO packet into its Engine.IO messages: the
// text part and one binary message per attachment. The messages can be sent
// to any number of sessions; each wire form is built once.
func encodePacket(p *parser.Packet) ([]*engineio.Message, error) {
	text, atts, err := parser.Encode(p)
	if err != nil {
		return nil, err
	}
	msgs := make([]*engineio.Message, 0, 1+len(atts))
	msgs = append(msgs, engineio.NewMessage(text, false))
	for _, a := range atts {
		msgs = append(msgs, engineio.NewMessage(a, true))
	}
	return msgs, nil
}
