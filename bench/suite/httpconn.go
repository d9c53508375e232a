package main

// A minimal HTTP/1.1 client for the long-polling load: one kept-alive TCP
// connection, requests written from prebuilt bytes, responses parsed by hand
// into a reused buffer. net/http's client cost the load generator ≈ 4× more
// CPU per request, which made the client core, not the server, the limit of
// S5 once the server batched (bench/README.md).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// httpConn is one kept-alive HTTP/1.1 connection to a server. It is not safe
// for concurrent use: each polling session has one for GETs and one for POSTs.
type httpConn struct {
	addr   string // host:port
	conn   net.Conn
	br     *bufio.Reader
	req    []byte // request being built
	body   []byte // last response body, reused
	reused bool   // conn has carried a response: it may have been closed while idle
	timed  bool   // a deadline is set on conn
}

func newHTTPConn(baseURL string) (*httpConn, error) {
	addr, ok := bytes.CutPrefix([]byte(baseURL), []byte("http://"))
	if !ok {
		return nil, fmt.Errorf("url %q: want http://host:port", baseURL)
	}
	return &httpConn{addr: string(bytes.TrimSuffix(addr, []byte("/")))}, nil
}

// errIdleClosed is a kept-alive connection found closed before any byte of
// the response: the request can be sent again on a new connection, which is
// what net/http does too (servers close idle connections, Node after 5 s).
var errIdleClosed = errors.New("kept-alive connection closed")

// do sends one request (GET if body is nil, else POST) for path and returns
// the response body, valid until the next call. ctx bounds the whole call.
func (h *httpConn) do(ctx context.Context, path string, body []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		b, err := h.roundTrip(ctx, path, body)
		if err == errIdleClosed && attempt == 0 {
			continue
		}
		return b, err
	}
}

func (h *httpConn) roundTrip(ctx context.Context, path string, body []byte) ([]byte, error) {
	if h.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", h.addr)
		if err != nil {
			return nil, err
		}
		h.conn, h.reused, h.timed = c, false, false
		if h.br == nil {
			h.br = bufio.NewReaderSize(c, 16<<10)
		} else {
			h.br.Reset(c)
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		h.conn.SetDeadline(dl)
		h.timed = true
	} else if h.timed {
		h.conn.SetDeadline(time.Time{})
		h.timed = false
	}
	// A deadline in the past is how ctx interrupts a blocked read or write
	// (c, not h.conn, which drop may clear before stop runs).
	c := h.conn
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r := h.req[:0]
	if body == nil {
		r = append(r, "GET "...)
	} else {
		r = append(r, "POST "...)
	}
	r = append(r, path...)
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, h.addr...)
	if body != nil {
		r = append(r, "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: "...)
		r = strconv.AppendInt(r, int64(len(body)), 10)
	}
	r = append(r, "\r\n\r\n"...)
	r = append(r, body...)
	h.req = r
	wasReused := h.reused
	if _, err := h.conn.Write(r); err != nil {
		h.drop()
		if wasReused && ctx.Err() == nil {
			return nil, errIdleClosed
		}
		return nil, err
	}
	b, err := h.readResponse()
	if err != nil {
		h.drop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if wasReused && err == io.EOF {
			return nil, errIdleClosed
		}
		return nil, err
	}
	h.reused = true
	return b, nil
}

func (h *httpConn) drop() {
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
}

func (h *httpConn) close() { h.drop() }

// readResponse parses a status line, headers and a Content-Length or chunked
// body. io.EOF means the connection closed before the first byte.
func (h *httpConn) readResponse() ([]byte, error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF && len(line) == 0 {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("status line: %w", err)
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return nil, fmt.Errorf("bad status line %.40q", line)
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	length, chunked, closeAfter := -1, false, false
	for {
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return nil, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	b := h.body[:0]
	switch {
	case chunked:
		for {
			line, err = h.br.ReadSlice('\n')
			if err != nil {
				return nil, fmt.Errorf("chunk size: %w", err)
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 32)
			if err != nil || size < 0 {
				return nil, fmt.Errorf("bad chunk size %q", line)
			}
			if size == 0 {
				if _, err := h.br.ReadSlice('\n'); err != nil { // no trailers expected
					return nil, err
				}
				break
			}
			if b, err = readN(h.br, b, int(size)); err != nil {
				return nil, err
			}
			if _, err := h.br.Discard(2); err != nil {
				return nil, err
			}
		}
	case length >= 0:
		if b, err = readN(h.br, b, length); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("response without Content-Length or chunked body")
	}
	h.body = b
	if closeAfter {
		h.drop()
	}
	if status != 200 {
		return nil, fmt.Errorf("HTTP %d: %.80s", status, bytes.TrimSpace(b))
	}
	return b, nil
}

// readN appends n bytes from br to b.
func readN(br *bufio.Reader, b []byte, n int) ([]byte, error) {
	l := len(b)
	b = append(b, make([]byte, n)...)[:l+n] // grows once; later calls reuse the capacity
	if _, err := io.ReadFull(br, b[l:]); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return b, nil
}
