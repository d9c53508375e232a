package herald_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/engineio"
)

// BenchmarkConnect is one Socket.IO connection's life through Serve, as in
// the S6 churn of bench/: TCP connect, WebSocket upgrade, Engine.IO open,
// Socket.IO CONNECT with an "auth" event from the handler, close. The
// client makes raw blocking system calls, which allocate nothing, so
// allocs/op are the server's.
func BenchmarkConnect(b *testing.B) {
	srv, err := herald.NewServer(herald.Config{
		Engine: engineio.Config{PingInterval: time.Hour, PingTimeout: time.Hour},
	})
	if err != nil {
		b.Fatal(err)
	}
	srv.OnConnection(func(s *herald.Socket) { s.Emit("auth", s.Auth()) })
	ln, err := engineio.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, engineio.ServeOptions{HTTP: hs}) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Shutdown(ctx)
		<-done
	}()

	tcp := ln.Addr().(*net.TCPAddr)
	addr := &syscall.SockaddrInet4{Port: tcp.Port}
	copy(addr.Addr[:], tcp.IP.To4())
	upgrade := []byte("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: bench\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	// "40", masked with a zero key.
	connect := []byte{0x81, 0x82, 0, 0, 0, 0, '4', '0'}
	buf := make([]byte, 4096)
	// readUntil reads fd until what it has read contains want.
	readUntil := func(fd int, want []byte) {
		n := 0
		for !bytes.Contains(buf[:n], want) {
			m, err := syscall.Read(fd, buf[n:])
			if m <= 0 || err != nil {
				b.Fatalf("read: %d, %v (have %q)", m, err, buf[:n])
			}
			n += m
		}
	}

	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := syscall.Connect(fd, addr); err != nil {
			b.Fatal(err)
		}
		syscall.Write(fd, upgrade)
		readUntil(fd, []byte(`"maxPayload"`)) // the open packet
		syscall.Write(fd, connect)
		readUntil(fd, []byte(`42["auth"`))
		syscall.Close(fd)
	}
}
