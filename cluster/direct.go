package cluster

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// directClient forwards plain (non-upgrade) requests over pooled keep-alive
// connections (up to maxIdle idle ones per node, kept until the node closes
// them: a request that finds its pooled connection closed is sent again on
// a fresh one), writing the request and reading the response on the calling
// goroutine. http.Transport hands each exchange to two goroutines per
// connection; for the small, frequent polling requests a forwarder carries,
// doing it inline costs noticeably less CPU. WebSocket upgrades still go
// through httputil.ReverseProxy.
type directClient struct {
	dialer  net.Dialer
	maxIdle int // per node

	mu     sync.Mutex
	idle   map[string][]*directConn // by host:port
	closed bool
}

type directConn struct {
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	stop func() bool // detaches the cancellation of the current exchange
}

// release detaches the connection from the finished exchange's context; it
// reports false if the context had already aborted it.
func (dc *directConn) release() bool {
	return dc.stop == nil || dc.stop()
}

func newDirectClient() *directClient {
	return &directClient{
		dialer:  net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: 256,
		idle:    map[string][]*directConn{},
	}
}

func (d *directClient) get(ctx context.Context, addr string) (*directConn, bool, error) {
	d.mu.Lock()
	if list := d.idle[addr]; len(list) > 0 {
		dc := list[len(list)-1]
		d.idle[addr] = list[:len(list)-1]
		d.mu.Unlock()
		return dc, true, nil
	}
	d.mu.Unlock()
	c, err := d.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &directConn{c: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}, false, nil
}

func (d *directClient) put(addr string, dc *directConn) {
	d.mu.Lock()
	if !d.closed && len(d.idle[addr]) < d.maxIdle {
		d.idle[addr] = append(d.idle[addr], dc)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	dc.c.Close()
}

func (d *directClient) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for addr, list := range d.idle {
		for _, dc := range list {
			dc.c.Close()
		}
		delete(d.idle, addr)
	}
}

// hopHeaders are connection-level headers a proxy must not pass on.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// errBeforeResponse marks failures after which nothing was written to w.
type errBeforeResponse struct{ err error }

func (e *errBeforeResponse) Error() string { return e.err.Error() }
func (e *errBeforeResponse) Unwrap() error { return e.err }

// forwardDirect sends r (with body) to the node at p and relays the response to w.
// An error wrapping errBeforeResponse means nothing was written; any other
// error that the response was cut.
func (f *Forwarder) forwardDirect(w http.ResponseWriter, r *http.Request, p *peer, body []byte, bodySum []byte, handshake bool) error {
	addr := p.url.Host
	if p.url.Port() == "" {
		addr = net.JoinHostPort(p.url.Hostname(), "80")
	}
	// Header for the node: the client's, minus hop-by-hop ones, plus the
	// usual X-Forwarded-* and the signed forwarding headers.
	h := r.Header.Clone()
	removeHopHeaders(h)
	h.Del("Expect") // the body goes at once; a 100 Continue would be read as the response
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		clientIP = r.RemoteAddr
	}
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		clientIP = strings.Join(prior, ", ") + ", " + clientIP
	}
	h.Set("X-Forwarded-For", clientIP)
	h.Set("X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // as ReverseProxy: do not add Go's
	}

	for attempt := 0; ; attempt++ {
		out := &http.Request{
			Method:        r.Method,
			URL:           r.URL,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        h,
			Host:          p.url.Host,
			ContentLength: int64(len(body)),
		}
		if len(body) > 0 {
			out.Body = io.NopCloser(bytesReader(body))
		}
		sign(f.key, out, r.RemoteAddr, f.self, bodySum, time.Now())
		dc, reused, err := f.direct.get(r.Context(), addr)
		if err != nil {
			return &errBeforeResponse{err}
		}
		res, err := dc.exchange(r.Context(), out)
		if err != nil {
			dc.c.Close()
			// A pooled connection the node had closed: the request never
			// reached it, so send it once more on a fresh one.
			if reused && attempt == 0 && r.Context().Err() == nil && staleConnError(err) {
				continue
			}
			return &errBeforeResponse{err}
		}
		if handshake && res.StatusCode == http.StatusServiceUnavailable {
			res.Body.Close()
			dc.c.Close()
			return &errBeforeResponse{errPeerRefused}
		}
		removeHopHeaders(res.Header)
		wh := w.Header()
		for k := range res.Header {
			wh.Del(k) // the node's headers (CORS...) replace this node's
		}
		for k, vs := range res.Header {
			wh[k] = append(wh[k], vs...)
		}
		w.WriteHeader(res.StatusCode)
		buf := copyBuffers.Get()
		_, err = io.CopyBuffer(w, res.Body, buf)
		copyBuffers.Put(buf)
		res.Body.Close()
		if err != nil || res.Close || !dc.release() {
			dc.c.Close()
		} else {
			f.direct.put(addr, dc)
		}
		if err != nil {
			return errWritten
		}
		return nil
	}
}

// exchange writes req and reads the response head; the body is read by the
// caller. The connection is aborted if ctx ends first.
func (dc *directConn) exchange(ctx context.Context, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { dc.c.SetDeadline(time.Unix(1, 0)) })
	dc.stop = stop
	if err := req.Write(dc.bw); err != nil {
		return nil, err
	}
	if err := dc.bw.Flush(); err != nil {
		return nil, err
	}
	return http.ReadResponse(dc.br, req)
}

func staleConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
