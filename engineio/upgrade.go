package engineio

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// The WebSocket opening handshake (RFC 6455 §4.2) is answered here rather
// than by a library so that the 101 response and the session's first frame
// (the Engine.IO open packet) leave in one write: a connection-rate
// benchmark (S6) spent a quarter of its CPU in write system calls.

// websocketGUID is the constant of RFC 6455 §1.3 hashed into the accept key.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgradeError is an opening handshake refused with an HTTP status.
type upgradeError struct {
	status int
	reason string
}

func (e *upgradeError) Error() string { return "websocket handshake: " + e.reason }

// checkUpgrade validates an opening handshake request (RFC 6455 §4.2.1)
// and returns the client's key.
func checkUpgrade(r *http.Request) (string, *upgradeError) {
	switch {
	case r.Method != http.MethodGet:
		return "", &upgradeError{http.StatusMethodNotAllowed, "method must be GET"}
	case !r.ProtoAtLeast(1, 1):
		return "", &upgradeError{http.StatusHTTPVersionNotSupported, "HTTP/1.1 or later required"}
	case r.Host == "":
		return "", &upgradeError{http.StatusBadRequest, `missing "Host" header`}
	case !headerContainsToken(r.Header, "Upgrade", "websocket"):
		return "", &upgradeError{http.StatusBadRequest, `bad "Upgrade" header`}
	case !headerContainsToken(r.Header, "Connection", "upgrade"):
		return "", &upgradeError{http.StatusBadRequest, `bad "Connection" header`}
	}
	key := r.Header.Get("Sec-Websocket-Key")
	if !validKey(key) {
		return "", &upgradeError{http.StatusBadRequest, `bad "Sec-WebSocket-Key" header`}
	}
	switch v := r.Header.Get("Sec-Websocket-Version"); {
	case v == "":
		return "", &upgradeError{http.StatusBadRequest, `missing "Sec-WebSocket-Version" header`}
	case v != "13":
		return "", &upgradeError{http.StatusUpgradeRequired, `unsupported "Sec-WebSocket-Version" (13 is)`}
	}
	return key, nil
}

// validKey reports whether a Sec-WebSocket-Key is the base64 of 16 bytes.
func validKey(key string) bool {
	if len(key) != base64.StdEncoding.EncodedLen(16) {
		return false
	}
	var k [18]byte // 24 characters decode to at most 18 bytes
	n, err := base64.StdEncoding.Decode(k[:], []byte(key))
	return err == nil && n == 16
}

// appendAcceptKey appends Sec-WebSocket-Accept for a client's key to b.
func appendAcceptKey(b []byte, key string) []byte {
	var in [64]byte // a valid key (24 bytes) and the GUID (36) fit
	sum := sha1.Sum(append(append(in[:0], key...), websocketGUID...))
	return base64.StdEncoding.AppendEncode(b, sum[:])
}

// acceptWebSocket takes a WebSocket opening handshake over from net/http:
// it checks the request (answering a bad one with its HTTP error) and
// hijacks the connection. It returns the connection and its 101 response,
// which the caller sends with writeHello.
func acceptWebSocket(w http.ResponseWriter, r *http.Request) (*wsConn, []byte, error) {
	key, uerr := checkUpgrade(r)
	if uerr != nil {
		if uerr.status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, uerr.Error(), uerr.status)
		return nil, nil, uerr
	}
	var conn net.Conn
	var raw syscall.RawConn
	var early []byte
	if d, ok := w.(*directResponse); ok {
		conn, early = d.d.hijack() // Serve's connection: no bufio to drop
		raw = d.d.io.rawConn()
	} else {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, "websocket handshake: "+err.Error(), http.StatusInternalServerError)
			return nil, nil, err
		}
		conn = c
		if rw != nil && rw.Reader.Buffered() > 0 {
			// The client pipelined frames after its request: read those
			// first, then drop net/http's buffer.
			b, _ := rw.Reader.Peek(rw.Reader.Buffered())
			early = append([]byte(nil), b...)
		}
	}
	conn.SetDeadline(time.Time{}) // the HTTP server's deadlines no longer apply

	c := &wsConn{conn: conn, rd: conn, eager: true, raw: raw}
	if raw == nil {
		switch sc := conn.(type) {
		case *net.TCPConn:
			c.raw, _ = sc.SyscallConn()
		case *net.UnixConn:
			c.raw, _ = sc.SyscallConn()
		}
	}
	if len(early) > 0 {
		c.early = bytes.NewReader(early)
		c.rd = io.MultiReader(c.early, conn)
	}

	// Room for the open packet too, which writeHello appends.
	hello := make([]byte, 0, 320)
	hello = append(hello, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	hello = appendAcceptKey(hello, key)
	hello = append(hello, "\r\n\r\n"...)
	return c, hello, nil
}

// writeHello writes the 101 response, followed by first (an encoded frame,
// or nil) in the same write. It must come before any other write.
func (c *wsConn) writeHello(hello, first []byte, timeout time.Duration) error {
	b := append(hello, first...)
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	n := c.tryWrite(b)
	if n == len(b) {
		return nil
	}
	c.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.conn.Write(b[n:])
	return err
}

// headerContainsToken reports whether a comma-separated header has token,
// compared without case (Connection: keep-alive, Upgrade).
func headerContainsToken(h http.Header, name, token string) bool {
	for _, v := range h[http.CanonicalHeaderKey(name)] {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
