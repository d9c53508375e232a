package engineio

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Serve answers Engine.IO's own requests on a listener without net/http.
//
// Behind net/http a long-polling request cost Herald about 30 µs of CPU
// outside the read and write system calls: a connection reader with a
// background read per request, a context, the request's parsing into a
// map, a response with its own header map, sorting and chunk writer. The
// benchmark S5 (docs/performance.md) spent 82% of the server's CPU in
// net/http. Serve reads each request into a pooled buffer, answers the
// shapes Engine.IO clients send (see directRequest) through the same
// handler code as ServeHTTP, with a request and a response writer reused
// along the connection, and writes each response in one system call.
//
// Anything else — another path, HTTP/1.0, chunked bodies, Expect, a header
// block over 4 KiB, a header named in ServeOptions.PassThroughHeaderPrefixes,
// a session another node holds, a handshake while draining — is handed with
// the bytes already read to an http.Server, which then keeps the
// connection. So every request gets net/http's behaviour except the common
// ones, which get the same answers faster.

// ServeOptions configures Server.Serve. The zero value is valid.
type ServeOptions struct {
	// HTTP serves the connections Serve does not answer itself. Its Handler
	// must reach this Server for the Engine.IO path (directly or through a
	// mux or middleware). If nil, an http.Server whose Handler is this
	// Server is used. Its ReadHeaderTimeout, ReadTimeout and IdleTimeout
	// also bound the connections Serve answers.
	HTTP *http.Server

	// PassThroughHeaderPrefixes names headers (by prefix, without case)
	// whose requests must go to HTTP: requests answered directly do not
	// pass through HTTP's Handler, so middleware that must see some
	// requests names them here. For example a cluster node passes
	// cluster.ForwardingHeaderPrefix so its forwarding verifier checks
	// every forwarded request.
	PassThroughHeaderPrefixes []string
}

// directBufferSize is the read buffer of a directly served connection; a
// request whose header block does not fit goes to net/http.
const directBufferSize = 4096

var directBuffers = sync.Pool{New: func() any { return new([directBufferSize]byte) }}

// aLongTimeAgo is a read deadline in the past: it wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// Serve accepts connections on ln and serves them until ln fails or
// opts.HTTP is shut down (Serve then returns http.ErrServerClosed).
// Requests on the Engine.IO path are answered directly (see above); every
// other connection goes to opts.HTTP. Middleware in opts.HTTP's Handler
// does not see directly answered requests: wrap the Server and use
// ServeHTTP (http.Server.Serve) when it must, or name its headers in
// opts.PassThroughHeaderPrefixes. Shut opts.HTTP down after Shutdown.
//
// ln should be a plain TCP (or Unix) listener, TLS being terminated in
// front: for HTTP/2 over TLS use http.Server.ServeTLS with ServeHTTP.
// Listen makes a TCP listener set up for Serve.
// Of opts.HTTP's settings, the timeouts apply to every connection;
// ConnState, ConnContext, BaseContext and ErrorLog only to those handed
// over.
func (srv *Server) Serve(ln net.Listener, opts ServeOptions) error {
	hs := opts.HTTP
	if hs == nil {
		hs = &http.Server{Handler: srv}
	}
	ds := &directServer{
		srv:      srv,
		hs:       hs,
		prefixes: opts.PassThroughHeaderPrefixes,
		handoff:  newHandoffListener(ln.Addr()),
		conns:    make(map[*directConn]struct{}),
		work:     make(chan *directConn),
	}
	stopped := make(chan struct{})
	ds.stopped = stopped
	go func() {
		defer close(stopped)
		hs.Serve(ds.handoff)
		// The http.Server was shut down or closed: so is Serve. Requests
		// being answered finish; connections waiting for their client
		// (between requests, in a long poll) are ended now.
		ds.closing.Store(true)
		ln.Close()
		ds.closeWaiting()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ds.closing.Load() {
				<-stopped
				ds.wg.Wait()
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of descriptors, for instance: wait as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				srv.log.Warn("engineio: accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			ds.handoff.Close()
			<-stopped
			ds.wg.Wait()
			return err
		}
		delay = 0
		d := &directConn{ds: ds, conn: c}
		d.io.init(c)
		if !ds.track(d) {
			c.Close()
			continue
		}
		select {
		case ds.work <- d: // an idle worker takes it
		default:
			go ds.worker(d)
		}
	}
}

// workerIdle is how long a worker waits for another connection before it
// exits.
const workerIdle = 5 * time.Second

// worker serves d, then the connections the accept loop hands it, until it
// has been idle for workerIdle. A handshake runs deep (the application's
// connection handler included): on a new goroutine each connection paid
// for growing its stack, 9% of the CPU of a connect-and-close loop (S6).
func (ds *directServer) worker(d *directConn) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		d.serve()
		idle.Reset(workerIdle)
		select {
		case d = <-ds.work:
		case <-idle.C:
			return
		case <-ds.stopped:
			return
		}
	}
}

// directServer is one Serve call.
type directServer struct {
	srv      *Server
	hs       *http.Server
	prefixes []string
	handoff  *handoffListener
	closing  atomic.Bool
	work     chan *directConn // to an idle worker
	stopped  chan struct{}    // closed when the http.Server has stopped

	mu    sync.Mutex // guards conns
	conns map[*directConn]struct{}
	wg    sync.WaitGroup // one per tracked connection: Serve waits for them
}

func (ds *directServer) track(d *directConn) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.closing.Load() {
		return false
	}
	ds.conns[d] = struct{}{}
	ds.wg.Add(1)
	return true
}

// untrack ends Serve's part in d: at the end of serve, or when a WebSocket
// takes the connection over. It may be called more than once.
func (ds *directServer) untrack(d *directConn) {
	ds.mu.Lock()
	_, ok := ds.conns[d]
	delete(ds.conns, d)
	ds.mu.Unlock()
	if ok {
		ds.wg.Done()
	}
}

// closeWaiting ends the reads of connections that wait for their client;
// the others close after their request (closing is set). A long poll
// ended this way closes its session (the client is as good as gone).
func (ds *directServer) closeWaiting() {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for d := range ds.conns {
		if d.waiting.Load() {
			d.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// idleTimeout bounds the wait for a connection's next request and
// headerTimeout the reading of its header block, as in net/http.
func (ds *directServer) idleTimeout() time.Duration {
	if ds.hs.IdleTimeout > 0 {
		return ds.hs.IdleTimeout
	}
	return ds.hs.ReadTimeout
}

func (ds *directServer) headerTimeout() time.Duration {
	if ds.hs.ReadHeaderTimeout > 0 {
		return ds.hs.ReadHeaderTimeout
	}
	return ds.hs.ReadTimeout
}

// directConn is one connection served by Serve: one goroutine reads a
// request, runs the handler and writes the response, in turn.
type directConn struct {
	ds     *directServer
	conn   net.Conn
	remote string // conn.RemoteAddr().String(), once
	// waiting is set while the connection waits for its client: for a
	// request, or in a long poll. Shutdown ends those reads.
	waiting atomic.Bool
	served  bool // a request has been read: deadlines are IdleTimeout's

	buf  *[directBufferSize]byte // nil once handed off or hijacked
	r, w int                     // unread bytes are buf[r:w]

	// Reused by each request on the connection: a request's handler does
	// not keep them once it returns (a handshake gets fresh ones).
	req    http.Request
	url    url.URL
	sess   *Session      // the session parse found for the request's sid
	query  engineQuery   // the request's query, parsed by parse
	fields []directField // the request's header lines, found by parse
	header http.Header   // req.Header of a session's requests
	values []string      // the header values, one array
	// A session's plain long poll reads no header, so its request's
	// header map is filled only when asked (fillHeader).
	unfilledHead string // set while header is left empty: the block whose lines (fields) it lacks
	headerDirty  bool   // header holds an earlier request's lines
	resp         directResponse
	body         directBody
	out          []byte // the response being written

	// A long poll answered off this goroutine (Session.answerPoll). While
	// the session's pollConn is this connection, answerable, pipelined and
	// answered are guarded by the session's mu; answer is held while the
	// answer is written, and resp, out and unsent belong to the writer
	// until it lets go of answer. Once awaitPoll has seen answered, it is
	// this goroutine's until readHead clears it: finish then writes no
	// response.
	answerable bool       // the request is on a plain, kept-alive connection
	pipelined  bool       // bytes of a next request came while waiting
	answered   bool       // answerPoll took the poll
	answerEnd  bool       // after the answer the connection is done (idle, gone, shut down)
	answer     sync.Mutex // held by answerPoll while it writes
	unsent     []byte     // what the socket did not take of the answer

	io directIO // socket calls without the file layer (direct_linux.go)
}

func (d *directConn) serve() {
	ds := d.ds
	d.buf = directBuffers.Get().(*[directBufferSize]byte)
	d.remote = d.conn.RemoteAddr().String()
	keep := false // the connection now belongs to someone else
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			ds.srv.log.Error("engineio: handler panicked", "panic", v, "remote", d.remote)
		}
		ds.untrack(d)
		d.release()
		if !keep {
			d.conn.Close()
		}
	}()
	for {
		if ds.closing.Load() {
			return
		}
		end, ok := d.readHead()
		if !ok {
			return
		}
		var req *http.Request
		closeAfter, direct := false, false
		if end > 0 {
			req, closeAfter, direct = d.parse(d.buf[d.r:end])
		}
		if !direct {
			keep = d.handOff()
			return
		}
		d.r = end
		d.answerable = !closeAfter && d.io.rawConn() != nil
		d.serveRequest(req)
		if d.resp.hijacked {
			keep = true
			return
		}
		if !d.finish(req, closeAfter) {
			return
		}
	}
}

// release gives the read buffer back.
func (d *directConn) release() {
	if d.buf != nil {
		directBuffers.Put(d.buf)
		d.buf = nil
	}
}

// readHead reads until buf[r:] holds a whole header block and returns the
// index just past it. ok is false when the connection is done (closed,
// timed out, or shutting down). A block that does not fit the buffer, or
// whose lines end in a bare LF, returns end = -1 with ok true: it goes to
// net/http.
func (d *directConn) readHead() (end int, ok bool) {
	ds := d.ds
	if d.answered && d.r < d.w {
		// After an answered long poll the client's next request is
		// usually here already (awaitPoll read it), and no deadline is
		// set: none is needed to parse it.
		if i := bytes.Index(d.buf[d.r:d.w], crlfcrlf); i >= 0 {
			d.answered = false
			return d.r + i + 4, true
		}
	}
	d.answered = false
	// As in net/http: a new connection has ReadHeaderTimeout for its
	// first request, a kept-alive one IdleTimeout until its next request
	// starts, and ReadHeaderTimeout from then on. The deadline is always
	// set, so none is left over from the previous request.
	wait := ds.idleTimeout()
	if !d.served {
		d.served = true
		wait = ds.headerTimeout()
	}
	d.conn.SetReadDeadline(deadline(wait))
	// Marked before closing is checked: closeWaiting either sees the mark
	// or this sees closing.
	d.waiting.Store(true)
	defer d.waiting.Store(false)
	if ds.closing.Load() {
		return 0, false
	}
	if d.r == d.w {
		d.r, d.w = 0, 0
		n, _ := d.read(d.buf[:])
		if n == 0 {
			return 0, false
		}
		d.w = n
		if t := ds.headerTimeout(); t != wait {
			d.conn.SetReadDeadline(deadline(t))
		}
	}
	for {
		if i := bytes.Index(d.buf[d.r:d.w], crlfcrlf); i >= 0 {
			d.conn.SetReadDeadline(time.Time{})
			return d.r + i + 4, true
		}
		if bytes.Contains(d.buf[d.r:d.w], lflf) || bytes.Contains(d.buf[d.r:d.w], lfcrlf) {
			return -1, true // bare LF line endings: net/http accepts them
		}
		if d.w == len(d.buf) {
			if d.r == 0 {
				return -1, true
			}
			d.w = copy(d.buf[:], d.buf[d.r:d.w])
			d.r = 0
		}
		n, err := d.read(d.buf[d.w:])
		d.w += n
		if err != nil && n == 0 {
			return 0, false
		}
	}
}

// deadline is now+t, or no deadline for t = 0.
func deadline(t time.Duration) time.Time {
	if t <= 0 {
		return time.Time{}
	}
	return time.Now().Add(t)
}

var (
	lflf   = []byte("\n\n")
	lfcrlf = []byte("\n\r\n")
)

var crlfcrlf = []byte("\r\n\r\n")

// parse decides whether a header block is served directly and builds its
// request. It accepts only what it fully understands; net/http answers the
// rest (including with its own errors).
func (d *directConn) parse(head []byte) (req *http.Request, closeAfter, direct bool) {
	d.sess = nil
	if d.fields == nil {
		d.fields = make([]directField, 0, 12) // more than clients send
	}
	dr, ok := parseDirectHead(head, d.ds.srv.path, d.ds.prefixes, d.fields[:0])
	d.fields = dr.fields
	if !ok {
		return nil, false, false
	}
	srv := d.ds.srv
	// The header block becomes one string; keys and values are substrings
	// of it, the value slices share one array.
	block := string(head)
	target := block[dr.target[0]:dr.target[1]]
	path, rawQuery, _ := strings.Cut(target, "?")
	d.query = parseEngineQuery(rawQuery)
	sid := d.query.sid
	switch {
	case dr.method == http.MethodOptions:
	case sid == "" && srv.closing.Load():
		return nil, false, false // draining: Forwarder may send it elsewhere
	case sid != "":
		if d.sess = srv.Session(sid); d.sess == nil {
			return nil, false, false // another node's, or unknown: Forwarder decides
		}
	}

	// A request of a session reuses the connection's header map and value
	// array (the handlers keep nothing of it); a handshake's request may be
	// kept (AllowRequest) and gets its own.
	var h http.Header
	var values []string
	switch n := len(dr.fields); {
	case sid == "":
		h, values = make(http.Header, n), make([]string, n)
	case d.header != nil && n <= cap(d.values):
		h, values = d.header, d.values[:n]
	default:
		h, values = make(http.Header, n), make([]string, n, max(n, 16))
		d.header, d.values, d.headerDirty = h, values, false
	}
	if sid != "" && d.headerDirty {
		clear(h)
		d.headerDirty = false
	}
	d.unfilledHead = ""
	switch {
	case sid != "" && dr.method == http.MethodGet && !dr.upgrade && len(srv.cfg.CORS.AllowedOrigins) == 0:
		// A long poll, served without reading a header: the map's clear
		// and an insert per header line are saved (docs/performance-work.md
		// §12). What might read them calls fillHeader.
		d.unfilledHead = block
	default:
		fillHeader(h, values, block, dr.fields)
		d.headerDirty = sid != ""
	}

	req, u := &d.req, &d.url
	if sid == "" {
		// A handshake may keep its request (AllowRequest): give it its own.
		req, u = new(http.Request), new(url.URL)
		// The session keeps its query (Handshake.Query): a substring of
		// the block would pin the whole header block for its life.
		rawQuery = strings.Clone(rawQuery)
	}
	*u = url.URL{Path: path, RawQuery: rawQuery}
	*req = http.Request{
		Method:        dr.method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: dr.contentLength,
		Host:          block[dr.host[0]:dr.host[1]],
		RemoteAddr:    d.remote,
		RequestURI:    target,
	}
	if tc, ok := d.conn.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		req.TLS = &cs
	}
	if dr.contentLength > 0 {
		d.body = directBody{d: d, remain: dr.contentLength}
		req.Body = &d.body
	}
	return req, dr.closeAfter, true
}

// fillHeader puts a request's header lines into h, the values into values.
func fillHeader(h http.Header, values []string, block string, fields []directField) {
	for i, f := range fields {
		key := block[f.name[0]:f.name[1]]
		if !isCanonicalKey(key) {
			key = textproto.CanonicalMIMEHeaderKey(key)
		}
		values[i] = block[f.value[0]:f.value[1]]
		if vs, ok := h[key]; ok {
			h[key] = append(vs, values[i])
		} else {
			h[key] = values[i : i+1 : i+1]
		}
	}
}

// fillHeader fills the header map of the request being served if parse
// left it empty.
func (d *directConn) fillHeader() {
	if d.unfilledHead != "" {
		fillHeader(d.header, d.values[:len(d.fields)], d.unfilledHead, d.fields)
		d.unfilledHead, d.headerDirty = "", true
	}
}

// serveRequest runs the handler for req, whose response goes to d.resp.
func (d *directConn) serveRequest(req *http.Request) {
	d.resp.reset(d)
	if t := d.ds.hs.ReadTimeout; t > 0 && req.Body != http.NoBody {
		// ReadTimeout bounds the body too, as in net/http.
		d.conn.SetReadDeadline(time.Now().Add(t))
	}
	sess := d.sess
	d.sess = nil
	d.ds.srv.serveHTTP(&d.resp, req, sess, &d.query)
}

// finish writes the response and discards what is left of the body. It
// returns false when the connection cannot serve another request, after
// closing it gracefully.
func (d *directConn) finish(req *http.Request, closeAfter bool) bool {
	if d.answered {
		// answerPoll wrote the response of this long poll (a GET: no body
		// to skip, and a kept-alive request), or all but d.unsent of it.
		ok := len(d.unsent) == 0 || d.write(d.unsent)
		end := d.answerEnd
		d.answerEnd, d.unsent = false, nil // answered stays for readHead
		if cap(d.out) > 64<<10 {
			d.out = nil
		}
		return ok && !end && !d.ds.closing.Load()
	}
	w := &d.resp
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	unread := req.Body != http.NoBody && d.body.remain > 0
	if unread && int64(d.w-d.r) >= d.body.remain {
		d.r += int(d.body.remain) // already here: skip it
		unread = false
	}
	// Say so when this response is the last, so that a client or proxy
	// does not send another request on the connection.
	handlerClose := strings.EqualFold(w.header.Get("Connection"), "close")
	last := closeAfter || unread || handlerClose || d.ds.closing.Load()
	if last && !handlerClose {
		w.header.Set("Connection", "close")
	}
	d.out = w.appendResponse(d.out[:0])
	ok := d.write(d.out)
	if cap(d.out) > 64<<10 {
		d.out = nil // don't keep one large poll's buffer
	}
	if ok && unread {
		d.lingerClose()
	}
	return ok && !last
}

// lingerClose ends the connection after a last response. When the client
// may still be sending (a body not read), closing at once would answer its
// bytes with a reset that can destroy the response before it is read; so,
// as net/http does, the write side is closed first and what arrives is
// read and dropped for a moment.
func (d *directConn) lingerClose() {
	if cw, ok := d.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		d.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		for i := 0; i < 64; i++ { // at most 64 buffers' worth
			if _, err := d.conn.Read(d.buf[:]); err != nil {
				break
			}
		}
	}
}

// lingerTimeout bounds lingerClose's wait.
const lingerTimeout = 500 * time.Millisecond

func (d *directConn) write(b []byte) bool {
	n := d.tryWrite(b)
	if n == len(b) {
		return true // taken whole: no deadline was needed
	}
	timeout := d.ds.hs.WriteTimeout
	if timeout == 0 {
		timeout = d.ds.srv.writeTimeout
	}
	d.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := d.conn.Write(b[n:])
	return err == nil
}

// handOff gives the connection, with what has been read of it, to the
// http.Server. It returns false if that server no longer accepts any.
func (d *directConn) handOff() bool {
	pending := append([]byte(nil), d.buf[d.r:d.w]...)
	d.release()
	d.conn.SetDeadline(time.Time{}) // net/http sets its own, or none
	return d.ds.handoff.give(&prefixConn{Conn: d.conn, pending: pending})
}

// hijack gives the connection and its unread bytes to a WebSocket.
func (d *directConn) hijack() (net.Conn, []byte) {
	var early []byte
	if d.w > d.r {
		early = append([]byte(nil), d.buf[d.r:d.w]...)
	}
	d.r, d.w = 0, 0
	d.release()
	d.resp.hijacked = true
	d.conn.SetDeadline(time.Time{})
	d.ds.untrack(d) // the WebSocket owns it now: Serve does not wait for it
	return d.conn, early
}

// pollEnd is how a long poll's wait ended.
type pollEnd uint8

const (
	pollWoken    pollEnd = iota // the GET's goroutine answers
	pollAnswered                // answerPoll answered
	pollGone                    // the client went away, or Serve is shutting down
)

// awaitPoll blocks a long poll until wake is closed (the session has
// something to send: wakePollLocked sets a read deadline in the past to
// end the Read below), answerPoll has answered it, or the client goes
// away. Reading the connection is how a vanished client is noticed, as
// net/http's background read does; after an answer the same read takes
// the client's next request.
func (d *directConn) awaitPoll(s *Session, wake chan struct{}) pollEnd {
	d.waiting.Store(true)
	defer d.waiting.Store(false)
	if d.ds.closing.Load() {
		d.interrupt() // the read below ends at once, answered or not
	}
	for {
		var n int
		err := errPipelineFull
		if d.w < len(d.buf) || d.r > 0 {
			if d.w == len(d.buf) {
				d.w = copy(d.buf[:], d.buf[d.r:d.w])
				d.r = 0
			}
			n, err = d.read(d.buf[d.w:])
			d.w += n
		}
		s.mu.Lock()
		answered := d.answered
		if !answered && err == nil {
			d.pipelined = true // answerPoll must wake this goroutine
		}
		woken := s.pollWake != wake
		s.mu.Unlock()
		if answered {
			d.answer.Lock() // until the answer is written
			d.answer.Unlock()
			switch {
			case len(d.unsent) > 0:
				d.conn.SetReadDeadline(time.Time{}) // answerPoll's interrupt
			case err != nil:
				d.answerEnd = true // the idle deadline passed, EOF, or shutting down
			case d.ds.idleTimeout() > 0:
				d.conn.SetReadDeadline(time.Time{}) // answerPoll's idle deadline
			}
			return pollAnswered
		}
		if err == nil {
			continue // pipelined bytes: kept for the next request
		}
		if n == 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
			return pollGone
		}
		if woken {
			d.conn.SetReadDeadline(time.Time{})
			return pollWoken
		}
		if n == 0 {
			return pollGone
		}
	}
}

// errPipelineFull stands for the read awaitPoll does not make when a
// client has pipelined a whole buffer at a poll.
var errPipelineFull = errors.New("engineio: read buffer full during a long poll")

// interrupt ends awaitPoll's Read. The caller holds the session's lock.
func (d *directConn) interrupt() { d.conn.SetReadDeadline(aLongTimeAgo) }

// directBody reads a request body of known length from the connection's
// buffer, then from the connection.
type directBody struct {
	d      *directConn
	remain int64
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	d := b.d
	var n int
	var err error
	if d.w > d.r {
		n = copy(p, d.buf[d.r:d.w])
		d.r += n
	} else {
		n, err = d.read(p)
	}
	b.remain -= int64(n)
	if err == io.EOF && b.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && b.remain == 0 {
		err = io.EOF
	}
	return n, err
}

func (b *directBody) Close() error { return nil }

// directResponse is the http.ResponseWriter of a directly served request:
// it keeps the header and body and finish writes them in one write.
type directResponse struct {
	d           *directConn
	header      http.Header
	status      int
	wroteHeader bool
	body        []byte
	hijacked    bool
}

func (w *directResponse) reset(d *directConn) {
	w.d = d
	if w.header == nil {
		w.header = make(http.Header, 4)
	} else {
		clear(w.header)
	}
	w.status, w.wroteHeader, w.hijacked = 0, false, false
	if cap(w.body) > 64<<10 {
		w.body = nil
	}
	w.body = w.body[:0]
}

func (w *directResponse) Header() http.Header { return w.header }

func (w *directResponse) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	w.wroteHeader, w.status = true, code
}

func (w *directResponse) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// SetReadDeadline lets handlePollPost cut a body read short
// (http.ResponseController finds it).
func (w *directResponse) SetReadDeadline(t time.Time) error {
	return w.d.conn.SetReadDeadline(t)
}

// appendResponse appends the status line, headers and body.
func (w *directResponse) appendResponse(b []byte) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	// No body, and so no length, for 1xx, 204 and 304 (RFC 9110 §8.6).
	bodyless := w.status < 200 || w.status == http.StatusNoContent || w.status == http.StatusNotModified
	hasLength := bodyless
	for k, vs := range w.header {
		if k == "Content-Length" {
			if bodyless {
				continue
			}
			hasLength = true
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if !hasLength {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(w.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Date: "...)
	b = append(b, httpDate()...)
	b = append(b, "\r\n\r\n"...)
	if bodyless {
		return b
	}
	return append(b, w.body...)
}

// appendHeaderValue appends v with CR and LF replaced by spaces, as
// net/http does, so a value cannot start a header of its own.
func appendHeaderValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// httpDate is the Date header's value, formatted once a second.
func httpDate() string {
	now := time.Now().Unix()
	if d := cachedDate.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &dateText{unix: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	unix int64
	text string
}

var cachedDate atomic.Pointer[dateText]

// directField is one header line: offsets of its name and value.
type directField struct{ name, value [2]int }

// directRequest is what parseDirectHead found in a header block: offsets
// into it, and the few headers Serve itself acts on.
type directRequest struct {
	method        string
	target        [2]int
	host          [2]int
	fields        []directField
	contentLength int64
	closeAfter    bool
	upgrade       bool // an Upgrade header is present
}

// parseDirectHead parses an HTTP/1.1 request head (request line and
// header lines, ending with an empty line) of the shapes Engine.IO clients
// send: GET, POST or OPTIONS of an origin-form target under path, one
// Host, at most one Content-Length, no Transfer-Encoding or Expect, and no
// header named by a pass-through prefix. ok is false for anything else,
// well-formed or not: such requests go to net/http. The fields are
// appended to fields (a buffer to reuse, or nil).
func parseDirectHead(head []byte, path string, passThrough []string, fields []directField) (dr directRequest, ok bool) {
	dr.fields = fields
	eol := bytes.Index(head, crlf)
	if eol < 0 {
		return dr, false
	}
	line := head[:eol]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return dr, false
	}
	switch string(line[:sp1]) {
	case http.MethodGet:
		dr.method = http.MethodGet
	case http.MethodPost:
		dr.method = http.MethodPost
	case http.MethodOptions:
		dr.method = http.MethodOptions
	default:
		return dr, false
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return dr, false
	}
	sp2 += sp1 + 1
	if string(line[sp2+1:]) != "HTTP/1.1" {
		return dr, false
	}
	target := line[sp1+1 : sp2]
	p, _, _ := bytes.Cut(target, []byte("?"))
	if !bytes.HasPrefix(p, []byte(path)) || bytes.IndexByte(p, '%') >= 0 || !validTarget(target) {
		return dr, false
	}
	dr.target = [2]int{sp1 + 1, sp2}

	hosts, lengths := 0, 0
	for i := eol + 2; ; {
		next := bytes.Index(head[i:], crlf)
		if next < 0 {
			return dr, false
		}
		if next == 0 {
			if i+2 != len(head) {
				return dr, false // something after the empty line
			}
			break
		}
		line := head[i : i+next]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validFieldName(line[:colon]) {
			return dr, false // also catches obsolete line folding
		}
		vs, ve := colon+1, len(line)
		for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
			vs++
		}
		for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
			ve--
		}
		if !validFieldValue(line[vs:ve]) {
			return dr, false
		}
		name, value := line[:colon], line[vs:ve]
		for _, pre := range passThrough {
			if len(name) >= len(pre) && strings.EqualFold(string(name[:len(pre)]), pre) {
				return dr, false
			}
		}
		switch {
		case equalFold(name, "Host"):
			hosts++
			dr.host = [2]int{i + vs, i + ve}
		case equalFold(name, "Content-Length"):
			lengths++
			n, err := strconv.ParseUint(string(value), 10, 63) // as net/http: digits only
			if err != nil {
				return dr, false
			}
			dr.contentLength = int64(n)
		case equalFold(name, "Transfer-Encoding"), equalFold(name, "Expect"):
			return dr, false
		case equalFold(name, "Upgrade"):
			dr.upgrade = true
		case equalFold(name, "Connection"):
			for tok := range strings.SplitSeq(string(value), ",") {
				if strings.EqualFold(strings.TrimSpace(tok), "close") {
					dr.closeAfter = true
				}
			}
		}
		dr.fields = append(dr.fields, directField{name: [2]int{i, i + colon}, value: [2]int{i + vs, i + ve}})
		i += next + 2
	}
	if hosts != 1 || lengths > 1 {
		return dr, false
	}
	return dr, true
}

var crlf = []byte("\r\n")

func equalFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

// validFieldName reports whether b is an RFC 9110 token.
func validFieldName(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || !isTokenByte[c] {
			return false
		}
	}
	return true
}

var isTokenByte = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validFieldValue refuses control characters other than tab.
func validFieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget accepts an origin-form request target of visible ASCII.
func validTarget(b []byte) bool {
	if len(b) == 0 || b[0] != '/' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// isCanonicalKey reports whether k is already in
// textproto.CanonicalMIMEHeaderKey's form (so needs no new string).
func isCanonicalKey(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case upper && 'a' <= c && c <= 'z', !upper && 'A' <= c && c <= 'Z':
			return false
		}
		upper = c == '-'
	}
	return true
}

// engineQuery is what Engine.IO reads of a request's query: the first
// value of each parameter, unescaped, as url.ParseQuery gives it. One pass
// over the raw query finds them all (url.Values would cost a map and its
// slices per request).
type engineQuery struct {
	eio, transport, sid string
	b64                 bool // b64 has a non-empty value
}

func parseEngineQuery(raw string) (q engineQuery) {
	var b64 string
	var found [4]bool // a parameter's first value counts
	for raw != "" && found != [4]bool{true, true, true, true} {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" || strings.IndexByte(part, ';') >= 0 {
			continue // url.ParseQuery skips these
		}
		k, v, _ := strings.Cut(part, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		var i int
		var dst *string
		switch k {
		case "EIO":
			i, dst = 0, &q.eio
		case "transport":
			i, dst = 1, &q.transport
		case "sid":
			i, dst = 2, &q.sid
		case "b64":
			i, dst = 3, &b64
		default:
			continue
		}
		if found[i] {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				continue // not a value: a later one may be
			}
			v = u
		}
		found[i], *dst = true, v
	}
	// A session keeps its transport's name: the constant, not a substring
	// that would pin the request's header block.
	switch q.transport {
	case TransportPolling:
		q.transport = TransportPolling
	case TransportWebSocket:
		q.transport = TransportWebSocket
	}
	q.b64 = b64 != ""
	return q
}

// handoffListener is the net.Listener the http.Server of Serve accepts
// handed-off connections from.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
