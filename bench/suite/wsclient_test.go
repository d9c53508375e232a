package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestWSAccept(t *testing.T) {
	// RFC 6455 §1.3's example.
	if string(wsAccept) != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %s", wsAccept)
	}
}

// readClientFrame reads one masked client frame.
func readClientFrame(r *bufio.Reader) (op byte, p []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	if h[1]&0x80 == 0 {
		return 0, nil, fmt.Errorf("client frame not masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	if _, err = io.ReadFull(r, mask[:]); err != nil {
		return
	}
	p = make([]byte, n)
	if _, err = io.ReadFull(r, p); err != nil {
		return
	}
	for i := range p {
		p[i] ^= mask[i&3]
	}
	return h[0] & 0x0f, p, nil
}

// scriptServer accepts one connection and runs script on it after the
// upgrade request (returned to the test on reqs).
func scriptServer(t *testing.T, script func(c net.Conn, r *bufio.Reader) error) (string, chan error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		var req strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				done <- err
				return
			}
			req.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		if !strings.HasPrefix(req.String(), "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n") ||
			!strings.Contains(req.String(), "Sec-WebSocket-Key: "+wsKey+"\r\n") {
			done <- fmt.Errorf("bad request %q", req.String())
			return
		}
		done <- script(c, r)
	}()
	return "http://" + ln.Addr().String(), done
}

func testClient(t *testing.T, url string) *clientState {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := newClientState(ctx, &clientFlags{urls: []string{url}, n: 1, transport: "websocket"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const upgradeOK = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"

// TestWSClient runs the client against a scripted server: the open packet in
// the same write as the 101, a broadcast split across writes, a WebSocket
// ping and an Engine.IO ping in between, then the server closes.
func TestWSClient(t *testing.T) {
	now := time.Now().UnixNano()
	news := fmt.Sprintf(`42["news",{"t":%d,"p":"xxxxxxxx"}]`, now)
	url, done := scriptServer(t, func(c net.Conn, r *bufio.Reader) error {
		if _, err := io.WriteString(c, upgradeOK+string(encFrame(true, opText, []byte(`0{"sid":"s"}`), nil))); err != nil {
			return err
		}
		if op, p, err := readClientFrame(r); err != nil || op != opText || string(p) != "40" {
			return fmt.Errorf("want 40, got %x %q %v", op, p, err)
		}
		stream := string(encFrame(true, opText, []byte(`40{"sid":"n"}`), nil)) + string(encFrame(true, opText, []byte(news), nil)) +
			string(encFrame(true, opPing, []byte("hi"), nil)) + string(encFrame(true, opText, []byte("2"), nil))
		cut := len(stream) - 30 // inside the broadcast
		io.WriteString(c, stream[:cut])
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, stream[cut:])
		if op, p, err := readClientFrame(r); err != nil || op != opPong || string(p) != "hi" {
			return fmt.Errorf("want pong hi, got %x %q %v", op, p, err)
		}
		if op, p, err := readClientFrame(r); err != nil || op != opText || string(p) != "3" {
			return fmt.Errorf("want 3, got %x %q %v", op, p, err)
		}
		return nil // closes
	})
	st := testClient(t, url)
	st.winStart.Store(now - 1)
	st.winEnd.Store(now + 1)
	c, serve, err := st.dial(0)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { serve(); close(served) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not end when the server closed")
	}
	c.close()
	if got := st.received[kindNews].Load(); got != 1 {
		t.Errorf("news received %d, want 1", got)
	}
	if got := st.inWin[kindNews].Load(); got != 1 {
		t.Errorf("news in window %d, want 1", got)
	}
	s := sparseHist{}
	s.merge(st.lat[kindNews].snapshot())
	if s.count() != 1 {
		t.Errorf("latency samples %d, want 1", s.count())
	}
}

// TestWSClientClose: close() from another goroutine ends serve.
func TestWSClientClose(t *testing.T) {
	release := make(chan struct{})
	url, _ := scriptServer(t, func(c net.Conn, r *bufio.Reader) error {
		io.WriteString(c, upgradeOK)
		io.WriteString(c, string(encFrame(true, opText, []byte(`0{"sid":"s"}`), nil)))
		readClientFrame(r)
		io.WriteString(c, string(encFrame(true, opText, []byte(`40{"sid":"n"}`), nil)))
		<-release
		return nil
	})
	defer close(release)
	st := testClient(t, url)
	c, serve, err := st.dial(0)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { serve(); close(served) }()
	time.Sleep(20 * time.Millisecond)
	c.close()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not end after close")
	}
	if err := c.send([]byte("x")); err == nil {
		t.Error("send after close succeeded")
	}
}

func TestWSClientRefused(t *testing.T) {
	for name, answer := range map[string]string{
		"wrong accept":   strings.Replace(upgradeOK, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1),
		"not 101":        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
		"connect_error":  upgradeOK + string(encFrame(true, opText, []byte(`0{"sid":"s"}`), nil)) + string(encFrame(true, opText, []byte(`44{"message":"no"}`), nil)),
		"closed at once": "",
	} {
		t.Run(name, func(t *testing.T) {
			url, _ := scriptServer(t, func(c net.Conn, r *bufio.Reader) error {
				io.WriteString(c, answer)
				time.Sleep(50 * time.Millisecond)
				return nil
			})
			st := testClient(t, url)
			if c, _, err := st.dial(0); err == nil {
				c.close()
				t.Fatal("dial succeeded")
			}
		})
	}
}
