package engineio

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPollEchoServe is one message's round trip over long-polling
// through Serve, both requests on one keep-alive connection: a POST with
// the message, which the echo handler queues, then a GET that takes the
// answer at once. The client makes raw blocking system calls, which
// allocate nothing, so allocs/op are the server's.
func BenchmarkPollEchoServe(b *testing.B) {
	srv, err := NewServer(Config{PingInterval: time.Hour, PingTimeout: time.Hour},
		func(s *Session) { s.OnMessage(func(d []byte, bin bool) { s.Send(NewMessage(d, bin)) }) })
	if err != nil {
		b.Fatal(err)
	}
	ln, err := Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, ServeOptions{HTTP: hs}) }()

	tcp := ln.Addr().(*net.TCPAddr)
	addr := &syscall.SockaddrInet4{Port: tcp.Port}
	copy(addr.Addr[:], tcp.IP.To4())
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Connect(fd, addr); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	// roundTrip writes req and reads until the response's body ends with
	// want (responses carry Content-Length; the bodies are short).
	roundTrip := func(req []byte, want string) []byte {
		syscall.Write(fd, req)
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte(want)) {
			m, err := syscall.Read(fd, buf[n:])
			if m <= 0 || err != nil {
				b.Fatalf("read: %d, %v (have %q)", m, err, buf[:n])
			}
			n += m
		}
		return buf[:n]
	}
	open := roundTrip([]byte("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: bench\r\n\r\n"), "}")
	_, sid, _ := bytes.Cut(open, []byte(`"sid":"`))
	sid, _, _ = bytes.Cut(sid, []byte(`"`))
	payload := append([]byte{'4'}, benchText...)
	post := fmt.Appendf(nil, "POST /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: bench\r\n"+
		"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s", sid, len(payload), payload)
	get := fmt.Appendf(nil, "GET /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: bench\r\n\r\n", sid)

	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		roundTrip(post, "\r\n\r\nok")
		roundTrip(get, string(payload))
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	hs.Shutdown(ctx)
	<-done
}
