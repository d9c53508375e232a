package main

// The client role: one load generator process (`suite -role client`), started
// by the orchestrator pinned to the client CPU. It opens -n Socket.IO
// connections (WebSocket or HTTP long-polling) to the servers in -urls, says
// {"event":"ready"} on stdout, then runs the commands the orchestrator writes
// to its stdin, one JSON object per line, and answers each with one JSON line.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// clientFlags configure one load generator process.
type clientFlags struct {
	urls        []string // http://127.0.0.1:PORT of each server; connections go round-robin
	n           int
	transport   string // "websocket" or "polling"
	src         []net.IP
	rate        float64
	concurrency int
	publisher   bool // connection 0 publishes the broadcasts of a phase
	reconnect   bool // reconnect every dropped connection (reconnect storm)
	probe       int  // the first probe connections join the room "probe" (S4's Redis hop)
	maxDuration time.Duration
}

// Message kinds the client counts.
const (
	kindNews = iota // 42["news",{...}]: a broadcast delivery
	kindEcho        // 42["message-back",{...}]: an echo
	kindAck         // 43<id>[{...}]: an ack
	numKinds
)

var kindNames = [numKinds]string{"news", "echo", "ack"}

// clientState is shared by every connection of the process.
type clientState struct {
	cfg      *clientFlags
	ctx      context.Context
	httpc    *http.Client
	dialers  []ws.Dialer
	received [numKinds]atomic.Int64
	inWin    [numKinds]atomic.Int64 // messages whose send time lies in the phase window
	lat      [numKinds]hist
	// newsByNode splits the broadcast latency by server (S4: the
	// publisher's node delivers locally, the others after the Redis hop).
	newsByNode []hist
	winStart   atomic.Int64 // phase window, unix ns
	winEnd     atomic.Int64
	open       atomic.Int64
	drops      atomic.Int64
	failed     atomic.Int64
	ackID      atomic.Int64

	mu    sync.Mutex
	conns []sioConn
	wg    sync.WaitGroup
}

// sioConn is one Socket.IO connection over either transport.
type sioConn interface {
	send(pkt []byte) error // one Engine.IO packet
	close()
}

func clientMain(args []string) error {
	fs := flag.NewFlagSet("suite -role client", flag.ContinueOnError)
	cfg := &clientFlags{}
	var urls, src string
	fs.StringVar(&urls, "urls", "http://127.0.0.1:3000", "comma-separated server base URLs (loopback only)")
	fs.IntVar(&cfg.n, "n", 100, "connections")
	fs.StringVar(&cfg.transport, "transport", "websocket", "websocket or polling")
	fs.StringVar(&src, "src", "", "comma-separated loopback source IPs for WebSocket connections")
	fs.Float64Var(&cfg.rate, "rate", 3000, "connection attempts per second")
	fs.IntVar(&cfg.concurrency, "concurrency", 256, "handshakes in flight")
	fs.BoolVar(&cfg.publisher, "publisher", false, "connection 0 publishes broadcasts")
	fs.BoolVar(&cfg.reconnect, "reconnect", false, "reconnect dropped connections (storm)")
	fs.IntVar(&cfg.probe, "probe", 0, "the first `K` connections join the room \"probe\"")
	fs.DurationVar(&cfg.maxDuration, "max-duration", 10*time.Minute, "hard limit on the process")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		if err := checkLoopbackURL(u); err != nil {
			return err
		}
		cfg.urls = append(cfg.urls, strings.TrimSuffix(u, "/"))
	}
	for _, s := range strings.Split(src, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("-src %q is not a loopback IP", s)
		}
		cfg.src = append(cfg.src, ip)
	}
	if len(cfg.urls) == 0 || cfg.n <= 0 || cfg.n > 19000 {
		return errors.New("need -urls and 1 ≤ -n ≤ 19000")
	}
	if cfg.transport != "websocket" && cfg.transport != "polling" {
		return fmt.Errorf("-transport %q: want websocket or polling", cfg.transport)
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.maxDuration)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	st := newClientState(ctx, cfg)
	st.connectAll()
	emitJSON(map[string]any{"event": "ready", "connected": st.open.Load(), "failed": st.failed.Load(), "pid": os.Getpid()})

	// Commands arrive on stdin; EOF or the context ends the process.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var stormDone chan struct{}
	for {
		select {
		case <-ctx.Done():
			st.shutdown()
			return nil
		case line, ok := <-lines:
			if !ok {
				st.shutdown()
				return nil
			}
			var c command
			if err := json.Unmarshal([]byte(line), &c); err != nil {
				emitJSON(map[string]any{"event": "error", "error": err.Error()})
				continue
			}
			switch c.Op {
			case "phase":
				emitJSON(st.runPhase(c))
			case "churn":
				emitJSON(st.runChurn(c))
			case "storm":
				// Armed now; answered once every connection is back.
				st.drops.Store(0)
				stormDone = make(chan struct{})
				go st.awaitAllBack(stormDone)
			case "status":
				emitJSON(map[string]any{"event": "status", "open": st.open.Load(), "drops": st.drops.Load()})
			case "quit":
				if stormDone != nil {
					close(stormDone)
				}
				st.shutdown()
				return nil
			}
		}
	}
}

// command is one line from the orchestrator.
type command struct {
	Op       string  `json:"op"`
	Start    int64   `json:"start"`     // unix ns when the window opens
	DurMs    int     `json:"dur_ms"`    // window length
	DrainMs  int     `json:"drain_ms"`  // wait after the window for late messages
	PubRate  float64 `json:"pub_rate"`  // broadcasts/s sent by the publisher connection
	EchoRate float64 `json:"echo_rate"` // messages/s sent by this process, spread over its connections
	Ack      bool    `json:"ack"`       // echo with message-with-ack instead of message
	Pad      int     `json:"pad"`       // payload padding bytes
	Workers  int     `json:"workers"`   // churn: concurrent connect/close loops
	Room     string  `json:"room"`      // broadcast to this room only (default: the whole namespace)
}

func newClientState(ctx context.Context, cfg *clientFlags) *clientState {
	st := &clientState{cfg: cfg, ctx: ctx, conns: make([]sioConn, cfg.n), newsByNode: make([]hist, len(cfg.urls))}
	tr := &http.Transport{
		MaxIdleConns:        4 * cfg.n,
		MaxIdleConnsPerHost: 4 * cfg.n,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
	}
	st.httpc = &http.Client{Transport: tr, Timeout: 90 * time.Second}
	n := max(1, len(cfg.src))
	for k := 0; k < n; k++ {
		nd := &net.Dialer{}
		if len(cfg.src) > 0 {
			nd.LocalAddr = &net.TCPAddr{IP: cfg.src[k]}
			nd.Control = bindAddressNoPort
		}
		st.dialers = append(st.dialers, ws.Dialer{Timeout: 15 * time.Second, NetDial: nd.DialContext, ReadBufferSize: 1024, WriteBufferSize: 1024})
	}
	return st
}

// connectAll opens every connection at cfg.rate with bounded concurrency.
func (st *clientState) connectAll() {
	sem := make(chan struct{}, st.cfg.concurrency)
	var hs sync.WaitGroup
	start := time.Now()
	for i := 0; i < st.cfg.n; i++ {
		if st.cfg.rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / st.cfg.rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		if st.ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		hs.Add(1)
		st.wg.Add(1)
		go func(i int) {
			defer st.wg.Done()
			first := make(chan struct{})
			go func() { // release the handshake slot once the first attempt is over
				<-first
				<-sem
				hs.Done()
			}()
			st.runConn(i, first)
		}(i)
	}
	hs.Wait()
}

// runConn keeps connection i open until the run ends (and, with -reconnect,
// reopens it whenever the server drops it). first is closed after the first
// handshake attempt.
func (st *clientState) runConn(i int, first chan struct{}) {
	once := sync.OnceFunc(func() { close(first) })
	defer once()
	attempt := 0
	for st.ctx.Err() == nil {
		c, serve, err := st.dial(i)
		attempt++
		if err != nil {
			if attempt == 1 {
				st.failed.Add(1)
				once()
				if !st.cfg.reconnect {
					return
				}
			}
			// Server away (restart): retry soon, with jitter so retries spread.
			select {
			case <-st.ctx.Done():
				return
			case <-time.After(time.Duration(50+rand.IntN(100)) * time.Millisecond):
			}
			continue
		}
		st.mu.Lock()
		st.conns[i] = c
		st.mu.Unlock()
		st.open.Add(1)
		if i < st.cfg.probe {
			c.send([]byte(`42["join","probe"]`))
		}
		once()
		serve()
		st.open.Add(-1)
		st.mu.Lock()
		st.conns[i] = nil
		st.mu.Unlock()
		c.close()
		if st.ctx.Err() != nil {
			return
		}
		st.drops.Add(1)
		if !st.cfg.reconnect {
			return
		}
	}
}

func (st *clientState) dial(i int) (sioConn, func(), error) {
	node := i % len(st.cfg.urls)
	if st.cfg.transport == "polling" {
		return dialPolling(st, node)
	}
	return dialWS(st, st.dialers[i%len(st.dialers)], node)
}

// handle processes one Engine.IO packet from the server.
// node is the index in -urls of the server the connection talks to.
func (st *clientState) handle(c sioConn, node int, p []byte) {
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case '2': // ping
		c.send([]byte{'3'})
		return
	case '4':
	default:
		return
	}
	kind := -1
	switch {
	case bytes.HasPrefix(p, []byte(`42["news"`)):
		kind = kindNews
	case bytes.HasPrefix(p, []byte(`42["message-back"`)):
		kind = kindEcho
	case len(p) > 2 && p[1] == '3':
		kind = kindAck
	}
	if kind < 0 {
		return
	}
	now := time.Now().UnixNano()
	st.received[kind].Add(1)
	t := payloadTime(p)
	if t > 0 && t >= st.winStart.Load() && t <= st.winEnd.Load() {
		st.inWin[kind].Add(1)
		st.lat[kind].record((now - t) / 1000)
		if kind == kindNews {
			st.newsByNode[node].record((now - t) / 1000)
		}
	}
}

// payloadTime extracts the "t" field (unix ns of the scheduled send).
func payloadTime(p []byte) int64 {
	i := bytes.Index(p, []byte(`"t":`))
	if i < 0 {
		return 0
	}
	var v int64
	for _, ch := range p[i+4:] {
		if ch < '0' || ch > '9' {
			break
		}
		v = v*10 + int64(ch-'0')
	}
	return v
}

func (st *clientState) conn(i int) sioConn {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.conns[i]
}

// runPhase runs one measurement window: the publisher and echo senders run
// on an open-loop schedule and every message carries its scheduled time, so
// latency includes any time a message waited behind a slow server.
func (st *clientState) runPhase(c command) map[string]any {
	start := time.Unix(0, c.Start)
	end := start.Add(time.Duration(c.DurMs) * time.Millisecond)
	for k := range st.newsByNode {
		st.newsByNode[k].reset()
	}
	for k := range st.lat {
		st.lat[k].reset()
		st.inWin[k].Store(0)
	}
	st.winStart.Store(c.Start)
	st.winEnd.Store(end.UnixNano())
	time.Sleep(time.Until(start))
	var before [numKinds]int64
	for k := range before {
		before[k] = st.received[k].Load()
	}
	pad := strings.Repeat("x", max(0, c.Pad))
	var sentPub, sentEcho atomic.Int64
	var senders sync.WaitGroup
	schedule := func(rate float64, offset time.Duration, sent *atomic.Int64, send func(t int64) error) {
		defer senders.Done()
		interval := time.Duration(float64(time.Second) / rate)
		for k := 0; ; k++ {
			due := start.Add(offset + time.Duration(k)*interval)
			if !due.Before(end) || st.ctx.Err() != nil {
				return
			}
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			if send(due.UnixNano()) == nil {
				sent.Add(1)
			}
		}
	}
	if c.PubRate > 0 && st.cfg.publisher {
		if pc := st.conn(0); pc != nil {
			senders.Add(1)
			to := ""
			if c.Room != "" {
				to = fmt.Sprintf(`"to":%q,`, c.Room)
			}
			go schedule(c.PubRate, 0, &sentPub, func(t int64) error {
				return pc.send(fmt.Appendf(nil, `42["broadcast",{%s"event":"news","args":[{"t":%d,"p":"%s"}]}]`, to, t, pad))
			})
		}
	}
	if c.EchoRate > 0 {
		per := c.EchoRate / float64(st.cfg.n)
		for i := 0; i < st.cfg.n; i++ {
			ec := st.conn(i)
			if ec == nil {
				continue
			}
			offset := time.Duration(float64(i) / float64(st.cfg.n) / per * float64(time.Second))
			senders.Add(1)
			go schedule(per, offset, &sentEcho, func(t int64) error {
				if c.Ack {
					id := st.ackID.Add(1)
					return ec.send(fmt.Appendf(nil, `42%d["message-with-ack",{"t":%d,"p":"%s"}]`, id, t, pad))
				}
				return ec.send(fmt.Appendf(nil, `42["message",{"t":%d,"p":"%s"}]`, t, pad))
			})
		}
	}
	time.Sleep(time.Until(end))
	var during [numKinds]int64
	for k := range during {
		during[k] = st.received[k].Load() - before[k]
	}
	senders.Wait()
	time.Sleep(time.Duration(c.DrainMs) * time.Millisecond)
	out := map[string]any{"event": "phase", "sent_pub": sentPub.Load(), "sent_echo": sentEcho.Load(), "open": st.open.Load(), "drops": st.drops.Load()}
	recv, win, lat := map[string]int64{}, map[string]int64{}, map[string]map[int]uint64{}
	for k := range kindNames {
		recv[kindNames[k]] = during[k]
		win[kindNames[k]] = st.inWin[k].Load()
		lat[kindNames[k]] = st.lat[k].snapshot()
	}
	var byNode []map[int]uint64
	for k := range st.newsByNode {
		byNode = append(byNode, st.newsByNode[k].snapshot())
	}
	out["recv"], out["in_win"], out["lat"], out["news_by_node"] = recv, win, lat, byNode
	return out
}

// runChurn opens and closes connections in c.Workers loops for the window:
// each handshake is TCP connect + upgrade + Engine.IO open + Socket.IO CONNECT.
func (st *clientState) runChurn(c command) map[string]any {
	start := time.Unix(0, c.Start)
	end := start.Add(time.Duration(c.DurMs) * time.Millisecond)
	time.Sleep(time.Until(start))
	var ok, fail atomic.Int64
	var h hist
	var wg sync.WaitGroup
	for w := 0; w < max(1, c.Workers); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(end) && st.ctx.Err() == nil; i += c.Workers {
				t0 := time.Now()
				conn, _, err := st.dial(i)
				if err != nil {
					fail.Add(1)
					continue
				}
				if time.Now().Before(end.Add(time.Second)) {
					ok.Add(1)
					h.record(time.Since(t0).Microseconds())
				}
				conn.close()
			}
		}(w)
	}
	wg.Wait()
	return map[string]any{"event": "churn", "ok": ok.Load(), "failed": fail.Load(), "lat": h.snapshot()}
}

// awaitAllBack reports once every connection has dropped and come back
// (or on stop).
func (st *clientState) awaitAllBack(stop chan struct{}) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-st.ctx.Done():
			return
		case <-t.C:
			if st.drops.Load() >= int64(st.cfg.n) && st.open.Load() == int64(st.cfg.n) {
				emitJSON(map[string]any{"event": "allback", "t": time.Now().UnixNano(), "drops": st.drops.Load()})
				return
			}
		}
	}
}

func (st *clientState) shutdown() {
	st.mu.Lock()
	conns := append([]sioConn(nil), st.conns...)
	st.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.close()
		}
	}
	done := make(chan struct{})
	go func() { st.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

var stdoutMu sync.Mutex

func emitJSON(v any) {
	b, _ := json.Marshal(v)
	stdoutMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	stdoutMu.Unlock()
}

func checkLoopbackURL(u string) error {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return fmt.Errorf("url %q: want http://127.0.0.1:PORT", u)
	}
	host, _, err := net.SplitHostPort(strings.TrimSuffix(rest, "/"))
	if err != nil {
		return fmt.Errorf("url %q: %v", u, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("url %q: not a loopback address", u)
	}
	return nil
}

// ---- WebSocket transport ----

type wsConn struct {
	node int
	c    net.Conn
	r    *bufio.Reader
	mu   sync.Mutex // writes: the reader answers pings while senders send
	out  []byte
	hdr  [ws.MaxHeaderSize]byte
}

// dialWS makes a WebSocket-only Socket.IO connection: upgrade, "0{...}",
// "40", "40{...}".
func dialWS(st *clientState, d ws.Dialer, node int) (sioConn, func(), error) {
	u := "ws" + strings.TrimPrefix(st.cfg.urls[node], "http") + "/socket.io/?EIO=4&transport=websocket"
	c, br, _, err := d.Dial(st.ctx, u)
	if err != nil {
		return nil, nil, err
	}
	var rd io.Reader = c
	if br != nil {
		rd = io.MultiReader(br, c)
	}
	wc := &wsConn{c: c, r: bufio.NewReaderSize(rd, 512), node: node}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fail := func(err error) (sioConn, func(), error) { c.Close(); return nil, nil, err }
	if err := wc.await(st, '0'); err != nil {
		return fail(err)
	}
	if err := wc.send([]byte("40")); err != nil {
		return fail(err)
	}
	if err := wc.await(st, '4'); err != nil {
		return fail(err)
	}
	c.SetDeadline(time.Time{})
	return wc, func() { wc.serve(st) }, nil
}

// await reads packets until one starts with want ('0': open; '4': the
// CONNECT answer "40").
func (w *wsConn) await(st *clientState, want byte) error {
	for {
		p, err := w.next()
		if err != nil {
			return err
		}
		if len(p) > 0 && p[0] == want && (want != '4' || (len(p) > 1 && p[1] == '0')) {
			return nil
		}
		if len(p) > 1 && p[0] == '4' && p[1] == '4' {
			return fmt.Errorf("connect_error: %.60s", p)
		}
		st.handle(w, w.node, p)
	}
}

func (w *wsConn) serve(st *clientState) {
	for {
		p, err := w.next()
		if err != nil {
			return
		}
		if len(p) > 0 && p[0] == '1' {
			return
		}
		st.handle(w, w.node, p)
	}
}

// next returns the next text or binary message (control frames handled).
func (w *wsConn) next() ([]byte, error) {
	var msg []byte
	for {
		h, err := ws.ReadHeaderBuffer(w.r, w.hdr[:2])
		if err != nil {
			return nil, err
		}
		if h.Length > 16<<20 {
			return nil, errors.New("frame too large")
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(w.r, payload); err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			w.frame(ws.OpPong, payload)
			continue
		case ws.OpClose:
			return nil, io.EOF
		case ws.OpPong:
			continue
		}
		msg = append(msg, payload...)
		if h.Fin {
			return msg, nil
		}
	}
}

func (w *wsConn) send(p []byte) error { return w.frame(ws.OpText, p) }

func (w *wsConn) frame(op ws.OpCode, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := append(w.out[:0], 0x80|byte(op))
	switch n := len(p); {
	case n < 126:
		buf = append(buf, 0x80|byte(n))
	case n <= 0xffff:
		buf = append(buf, 0x80|126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, 0x80|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	buf = append(buf, mask[:]...)
	s := len(buf)
	buf = append(buf, p...)
	ws.Cipher(buf[s:], mask, 0)
	_, err := w.c.Write(buf)
	if cap(buf) <= 2048 {
		w.out = buf[:0]
	} else {
		w.out = nil
	}
	return err
}

func (w *wsConn) close() { w.c.Close() }

// bindAddressNoPort sets IP_BIND_ADDRESS_NO_PORT (24, linux/in.h) so the
// kernel picks the ephemeral port at connect time (see bench/loadgen).
func bindAddressNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// ---- HTTP long-polling transport ----

type pollConn struct {
	node   int
	st     *clientState
	url    string // base URL with sid
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // one POST at a time per session
}

// dialPolling makes a polling-only Socket.IO connection: GET the open
// packet, POST "40", and poll until "40{...}".
func dialPolling(st *clientState, node int) (sioConn, func(), error) {
	ctx, cancel := context.WithCancel(st.ctx)
	u := st.cfg.urls[node] + "/socket.io/?EIO=4&transport=polling"
	body, err := httpDo(ctx, st.httpc, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	var open struct {
		Sid string `json:"sid"`
	}
	if len(body) == 0 || body[0] != '0' || json.Unmarshal(body[1:], &open) != nil || open.Sid == "" {
		cancel()
		return nil, nil, fmt.Errorf("bad open packet %.60q", body)
	}
	pc := &pollConn{st: st, node: node, url: u + "&sid=" + open.Sid, ctx: ctx, cancel: cancel}
	if err := pc.send([]byte("40")); err != nil {
		cancel()
		return nil, nil, err
	}
	for connected := false; !connected; {
		body, err := httpDo(ctx, st.httpc, http.MethodGet, pc.url, nil)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		for _, p := range bytes.Split(body, []byte{0x1e}) {
			if bytes.HasPrefix(p, []byte("40")) {
				connected = true
			} else if bytes.HasPrefix(p, []byte("44")) {
				cancel()
				return nil, nil, fmt.Errorf("connect_error: %.60s", p)
			} else {
				st.handle(pc, node, p)
			}
		}
	}
	return pc, pc.serve, nil
}

func (pc *pollConn) serve() {
	for pc.ctx.Err() == nil {
		body, err := httpDo(pc.ctx, pc.st.httpc, http.MethodGet, pc.url, nil)
		if err != nil {
			return
		}
		for _, p := range bytes.Split(body, []byte{0x1e}) {
			if len(p) > 0 && p[0] == '1' {
				return
			}
			pc.st.handle(pc, pc.node, p)
		}
	}
}

func (pc *pollConn) send(p []byte) error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	_, err := httpDo(pc.ctx, pc.st.httpc, http.MethodPost, pc.url, p)
	return err
}

func (pc *pollConn) close() { pc.cancel() }

func httpDo(ctx context.Context, c *http.Client, method, u string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("HTTP " + strconv.Itoa(resp.StatusCode) + ": " + strings.TrimSpace(string(b)))
	}
	return b, nil
}
