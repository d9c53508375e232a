package engineio

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWebSocketOpeningHandshakeErrors sends malformed opening handshakes
// and checks the HTTP error each gets (RFC 6455 §4.2.1–4.2.2), and that the
// server then closes or keeps serving the connection as HTTP, never leaving
// a hijacked connection behind.
func TestWebSocketOpeningHandshakeErrors(t *testing.T) {
	const goodKey = "dGhlIHNhbXBsZSBub25jZQ=="
	tests := []struct {
		name        string
		method      string
		headers     string
		status      int
		wantVersion bool // Sec-WebSocket-Version: 13 in the answer
	}{
		{"missing key", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400, false},
		{"key not 16 bytes", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n", 400, false},
		{"key 18 bytes", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAA\r\n", 400, false},
		{"key not base64", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ************************\r\n", 400, false},
		{"missing version", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + goodKey + "\r\n", 400, false},
		{"old version", "GET", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " + goodKey + "\r\n", 426, true},
	}
	e := newEnv(t, Config{}, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			req := tc.method + " " + e.path + "?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n"
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Sec-WebSocket-Version") == "13"; got != tc.wantVersion {
				t.Errorf("Sec-WebSocket-Version: 13 in the answer = %v, want %v", got, tc.wantVersion)
			}
		})
	}
}

// TestWebSocketAcceptKey checks the accept key against RFC 6455 §1.3's
// example.
func TestWebSocketAcceptKey(t *testing.T) {
	if got := string(appendAcceptKey(nil, "dGhlIHNhbXBsZSBub25jZQ==")); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("acceptKey = %q", got)
	}
}
