package main

// The load generator's WebSocket transport, written for low client CPU per
// frame (S2b) and per handshake (S6), so that the one client core is not what
// limits those scenarios. The same client drives every server, so this
// changes nothing in what is measured, only what the client spends:
//
//   - the socket is made with raw syscalls and handed to Go's poller with
//     os.NewFile (no net.Dialer: no address parsing, keep-alive options,
//     getsockname/getpeername, or context goroutine per connection);
//   - the upgrade request is built once per server, with a fixed
//     Sec-WebSocket-Key; the answer must be "HTTP/1.1 101" with the
//     matching Sec-WebSocket-Accept;
//   - once connected, a socket is read by the process's epoll loop
//     (wsloop.go) into one large buffer, so one read syscall takes every
//     frame waiting, frames are parsed in place (wsframe.go), and idle
//     connections hold no buffer; the handshake reads into a buffer taken
//     from a pool only while the socket has data (RawConn.Read).

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/herald-rt/herald/bench/internal/wsframe"
)

// wsKey is the Sample nonce of RFC 6455 §1.3. A benchmark client gains
// nothing from a random key; the server's answer is still checked.
const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

var wsAccept = func() []byte {
	h := sha1.Sum([]byte(wsKey + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return []byte(base64.StdEncoding.EncodeToString(h[:]))
}()

// readBuf is what one read syscall of the loop can take: ~1,200 of the
// suite's broadcast frames.
type readBuf [64 << 10]byte

// smallBuf is for the handshake's reads (a 101 answer and two packets) and
// for serveGo.
type smallBuf [8 << 10]byte

var smallBufs = sync.Pool{New: func() any { return new(smallBuf) }}

// wsTarget is one server, resolved once.
type wsTarget struct {
	family int
	addr   syscall.Sockaddr
	req    []byte // the whole upgrade request
}

func newWSTarget(base string) (wsTarget, error) {
	hostport := base[len("http://"):]
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return wsTarget{}, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return wsTarget{}, err
	}
	sa, family, err := sockaddr(net.ParseIP(host), p)
	if err != nil {
		return wsTarget{}, err
	}
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" +
		"Host: " + hostport + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + wsKey + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	return wsTarget{family: family, addr: sa, req: []byte(req)}, nil
}

func sockaddr(ip net.IP, port int) (syscall.Sockaddr, int, error) {
	if ip4 := ip.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		return sa, syscall.AF_INET, nil
	}
	if ip16 := ip.To16(); ip16 != nil {
		sa := &syscall.SockaddrInet6{Port: port}
		copy(sa.Addr[:], ip16)
		return sa, syscall.AF_INET6, nil
	}
	return nil, 0, fmt.Errorf("bad IP %v", ip)
}

// wsConn is one Socket.IO connection over WebSocket.
type wsConn struct {
	st    *clientState
	node  int
	f     *os.File
	rc    syscall.RawConn
	fr    frameReader
	tally tally // this read's counts, added to clientState once per read

	// handshake progress (the sink's state until connected)
	phase int
	hsErr error

	// read result, filled by readOnce (one reader goroutine)
	readFn func(uintptr) bool
	rbuf   *smallBuf
	rn     int
	rerr   error

	// once served by a loop (wsloop.go): the socket's own fd, its loop,
	// closed when the loop has closed it
	fd     int
	loop   *pollLoop
	done   chan struct{}
	closed bool // (w.mu)

	mu      sync.Mutex // writes: the reader answers pings while senders send
	out     []byte
	wpend   []byte
	werr    error
	writeFn func(uintptr) bool
}

const (
	phaseOpen    = iota // waiting for the Engine.IO open packet "0{...}"
	phaseOpened         // got it: send "40"
	phaseConnect        // waiting for the CONNECT answer "40{...}"
	phaseServe          // connected
)

// dialWS makes a WebSocket-only Socket.IO connection: TCP connect, upgrade,
// "0{...}", "40", "40{...}".
func dialWS(st *clientState, src, node int) (sioConn, func(), error) {
	tg := &st.targets[node]
	fd, err := syscall.Socket(tg.family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socket", err)
	}
	if err := connectSocket(fd, st.srcAddr(src), tg.addr); err != nil {
		syscall.Close(fd)
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), "ws")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	w := &wsConn{st: st, node: node, f: f, rc: rc}
	w.readFn, w.writeFn = w.readOnce, w.writeOnce
	f.SetDeadline(time.Now().Add(15 * time.Second))
	if err := w.handshake(tg.req); err != nil {
		f.Close()
		return nil, nil, err
	}
	f.SetDeadline(time.Time{})
	return w, w.serve, nil
}

// connectSocket binds fd to src (if any) and starts the connection; the
// first write waits for it to complete.
func connectSocket(fd int, src, dst syscall.Sockaddr) error {
	if src != nil {
		// IP_BIND_ADDRESS_NO_PORT (24, linux/in.h): the kernel picks the
		// port at connect time, so many connections share one source IP.
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, 24, 1); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
		if err := syscall.Bind(fd, src); err != nil {
			return os.NewSyscallError("bind", err)
		}
	}
	// As net.Dial does: small frames go out at once.
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	switch err := syscall.Connect(fd, dst); err {
	case nil, syscall.EINPROGRESS, syscall.EINTR:
		return nil
	default:
		return os.NewSyscallError("connect", err)
	}
}

func (w *wsConn) handshake(req []byte) error {
	w.mu.Lock()
	w.wpend = req
	err := w.flush()
	w.mu.Unlock()
	if err != nil {
		return err
	}
	// The 101 answer; the open packet may come in the same read.
	var head []byte // only if the answer spans reads
	for {
		if err := w.read(); err != nil {
			return err
		}
		data := w.rbuf[:w.rn]
		if head != nil {
			head = append(head, data...)
			data = head
		}
		i := bytes.Index(data, []byte("\r\n\r\n"))
		if i < 0 {
			if len(data) > 8192 {
				w.release()
				return errors.New("websocket: upgrade answer too long")
			}
			if head == nil {
				head = append([]byte(nil), data...)
			}
			w.release()
			continue
		}
		if !bytes.HasPrefix(data, []byte("HTTP/1.1 101 ")) || !bytes.Contains(data[:i], wsAccept) {
			err := fmt.Errorf("websocket: upgrade refused: %.80q", data[:i])
			w.release()
			return err
		}
		err := w.feed(data[i+4:])
		w.release()
		if err != nil {
			return err
		}
		break
	}
	for w.phase != phaseServe {
		if w.phase == phaseOpened {
			w.phase = phaseConnect
			if err := w.send([]byte("40")); err != nil {
				return err
			}
			continue
		}
		if err := w.read(); err != nil {
			return err
		}
		err := w.feed(w.rbuf[:w.rn])
		w.release()
		if err != nil {
			return err
		}
	}
	return nil
}

// feed parses one read's bytes and adds their counts to the process's.
func (w *wsConn) feed(data []byte) error {
	st := w.st
	w.tally.w0, w.tally.w1 = st.winStart.Load(), st.winEnd.Load()
	w.tally.setBase()
	err := w.fr.feed(data, w)
	st.addTally(&w.tally)
	if err == errClosed && w.hsErr != nil {
		return w.hsErr
	}
	return err
}

// message is one Engine.IO packet (frameSink).
func (w *wsConn) message(p []byte) bool {
	switch w.phase {
	case phaseServe:
		if len(p) > 0 && p[0] == '1' { // Engine.IO close
			return true
		}
	case phaseOpen:
		if len(p) > 0 && p[0] == '0' {
			w.phase = phaseOpened
			return false
		}
		fallthrough
	default:
		if len(p) > 1 && p[0] == '4' && p[1] == '0' && w.phase == phaseConnect {
			w.phase = phaseServe
			return false
		}
		if len(p) > 1 && p[0] == '4' && p[1] == '4' {
			w.hsErr = fmt.Errorf("connect_error: %.60s", p)
			return true
		}
	}
	w.st.handlePacket(w, w.node, p, &w.tally)
	return false
}

func (w *wsConn) ping(p []byte) { w.frame(opPong, p) }

// serve returns when the connection has ended. Connected sockets are read
// by a loop (wsloop.go); serveGo is the fallback.
func (w *wsConn) serve() {
	if w.handToLoop() == nil || w.loop != nil {
		<-w.done
		return
	}
	w.serveGo()
}

func (w *wsConn) serveGo() {
	for {
		if err := w.read(); err != nil {
			return
		}
		err := w.feed(w.rbuf[:w.rn])
		w.release()
		if err != nil {
			return
		}
	}
}

// read waits for data and reads what the socket holds into a pooled
// buffer (w.rbuf[:w.rn]; release gives it back). EOF is an error.
func (w *wsConn) read() error {
	if err := w.rc.Read(w.readFn); err != nil {
		return err
	}
	if w.rerr != nil || w.rn <= 0 {
		err := w.rerr
		if err == nil {
			err = errClosed
		}
		w.release()
		return err
	}
	return nil
}

// readOnce is the RawConn.Read callback: false (wait for the poller) when
// the socket is empty, so no buffer is held while waiting.
func (w *wsConn) readOnce(fd uintptr) bool {
	b := smallBufs.Get().(*smallBuf)
	for {
		n, err := syscall.Read(int(fd), b[:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			smallBufs.Put(b)
			return false
		}
		w.rbuf, w.rn, w.rerr = b, n, err
		return true
	}
}

func (w *wsConn) release() {
	if w.rbuf != nil {
		smallBufs.Put(w.rbuf)
		w.rbuf = nil
	}
}

func (w *wsConn) send(p []byte) error { return w.frame(opText, p) }

// frame writes one masked client frame (RFC 6455 §5.3).
func (w *wsConn) frame(op byte, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := wsframe.AppendMasked(w.out[:0], op, p)
	var err error
	if w.loop != nil {
		err = w.writeRaw(buf)
	} else {
		w.wpend = buf
		err = w.flush()
	}
	if cap(buf) <= 2048 {
		w.out = buf[:0]
	} else {
		w.out = nil
	}
	return err
}

// flush writes w.wpend whole (w.mu held).
func (w *wsConn) flush() error {
	w.werr = nil
	err := w.rc.Write(w.writeFn)
	w.wpend = nil
	if err != nil {
		return err
	}
	return w.werr
}

func (w *wsConn) writeOnce(fd uintptr) bool {
	for len(w.wpend) > 0 {
		n, err := syscall.Write(int(fd), w.wpend)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // full, or still connecting: wait for the poller
		case err != nil:
			w.werr = os.NewSyscallError("write", err)
			return true
		}
		w.wpend = w.wpend[n:]
	}
	return true
}

// close ends the connection. A loop's socket is only shut down here: the
// loop closes it once it sees the end.
func (w *wsConn) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loop == nil {
		w.f.Close()
	} else if !w.closed {
		syscall.Shutdown(w.fd, syscall.SHUT_RDWR)
	}
}
