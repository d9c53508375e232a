package engineio

import (
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// unreadBytes is how many bytes wait in c's socket (SIOCINQ).
func unreadBytes(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var errno syscall.Errno
	raw.Control(func(fd uintptr) {
		n, errno = ioctlInt(fd, 0x541B /* SIOCINQ (FIONREAD) */)
	})
	if errno != 0 {
		t.Fatalf("SIOCINQ: %v", errno)
	}
	return n
}

func ioctlInt(fd uintptr, req uint) (int, syscall.Errno) {
	var v int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(&v)))
	return int(v), errno
}

// pollAndSend sends a poll on c, waits until it is pending, sends text to
// it with send and checks the answer. check runs between the send and
// reading the answer.
func pollAndSend(t *testing.T, c *rawConn, s *Session, send func(...*Message) error, text string, check func()) {
	t.Helper()
	c.send("GET /engine.io/?EIO=4&transport=polling&sid=" + s.ID() + " HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	if err := send(NewMessage([]byte(text), false)); err != nil {
		t.Fatalf("sending %q: %v", text, err)
	}
	if check != nil {
		check()
	}
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4"+text {
		t.Fatalf("GET for %q: %d, %d bytes", text, resp.StatusCode, len(body))
	}
}

// A long poll that Serve holds is answered by the goroutine that sends
// (answerPoll), not by waking the GET's goroutine: when SendDirect
// returns, the response is already in the client's socket. The GET's
// goroutine then takes the next request from the read it was waiting in,
// and a poll after it is not cut short by the idle deadline the answer
// armed while the connection waited for that request.
func TestAnswerPollFromSender(t *testing.T) {
	e := newDirectEnvWith(t, Config{}, func(hs *http.Server) { hs.IdleTimeout = 300 * time.Millisecond })
	c := e.dial(t)
	sid := c.openSession()
	s := e.srv.Session(sid)
	pollAndSend(t, c, s, s.SendDirect, "direct", func() {
		if n := unreadBytes(t, c.conn); n == 0 {
			t.Fatal("SendDirect returned before the poll's answer was written")
		}
	})
	pollAndSend(t, c, s, s.Send, "queued", nil)
	// A poll that waits longer than the idle timeout is not cut short.
	c.send("GET /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n")
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	time.Sleep(700 * time.Millisecond)
	if err := s.Send(NewMessage([]byte("late"), false)); err != nil {
		t.Fatalf("a poll waiting longer than the idle timeout: %v", err)
	}
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4late" {
		t.Fatalf("late GET: %d %q", resp.StatusCode, body)
	}
	// After an answer, a connection that carries no next request closes
	// after the idle timeout; the session lives on.
	start := time.Now()
	if n, err := c.br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v; want the idle connection closed", n, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 3*time.Second {
		t.Fatalf("idle connection closed after %v, want about 300ms", took)
	}
	s.mu.Lock()
	open := s.state == stateOpen
	s.mu.Unlock()
	if !open {
		t.Fatal("the session closed with its idle connection")
	}
	if n := e.netHTTP.Load(); n != 0 {
		t.Errorf("%d requests went through net/http, want 0", n)
	}
}

// An answer larger than the socket buffer takes is finished by the GET's
// own goroutine, with the write deadline, once the client reads; the
// connection then serves the next poll.
func TestAnswerPollSlowClient(t *testing.T) {
	e := newDirectEnvWith(t, Config{MaxBufferedBytes: 64 << 20}, nil)
	c := e.dial(t)
	sid := c.openSession()
	s := e.srv.Session(sid)
	big := strings.Repeat("x", 16<<20)
	pollAndSend(t, c, s, s.SendDirect, big, func() {
		time.Sleep(200 * time.Millisecond) // the socket buffer fills; the client has not read yet
	})
	pollAndSend(t, c, s, s.Send, "small", nil)
}

// A client that pipelines a POST behind a waiting GET has both answered in
// order: the GET's goroutine must be woken to answer (answerPoll cannot,
// since that goroutine would then wait on with the POST unread).
func TestAnswerPollPipelinedPost(t *testing.T) {
	e := newDirectEnv(t)
	c := e.dial(t)
	sid := c.openSession()
	s := e.srv.Session(sid)
	target := "/engine.io/?EIO=4&transport=polling&sid=" + sid
	poll := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"
	c.send(poll)
	eventually(t, 2*time.Second, func() bool { return pollPending(s) })
	c.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n4hello")
	d := func() *directConn { s.mu.Lock(); defer s.mu.Unlock(); return s.pollConn }()
	eventually(t, 2*time.Second, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return d.pipelined })
	s.Send(NewMessage([]byte("first"), false))
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4first" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if resp, body := c.response(); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("pipelined POST: %d %q", resp.StatusCode, body)
	}
	c.send(poll)
	if resp, body := c.response(); resp.StatusCode != 200 || body != "4hello" {
		t.Fatalf("echo of the pipelined POST: %d %q", resp.StatusCode, body)
	}
}
