package engineio

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// sockopt reads an integer socket option of c.
func sockopt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestListen(t *testing.T) {
	ln, err := Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := ln.(*net.TCPListener)
	if v := sockopt(t, tl, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT); v == 0 {
		t.Errorf("TCP_DEFER_ACCEPT = 0 on the listener")
	}

	// A client that speaks first is accepted, without keep-alive probes.
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	tl.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := sockopt(t, c.(*net.TCPConn), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 0 {
		t.Errorf("SO_KEEPALIVE = %d on an accepted connection, want 0", v)
	}
	// The request is there at once: accept waited for it.
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "GET / HTTP/1.1\r\n\r\n" {
		t.Errorf("first read = %q, %v", buf[:n], err)
	}
}

func TestListenUnixSkipsTCPOptions(t *testing.T) {
	ln, err := (&net.ListenConfig{Control: controlListener}).Listen(context.Background(), "unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatalf("listen on a Unix socket with Listen's options: %v", err)
	}
	ln.Close()
}
