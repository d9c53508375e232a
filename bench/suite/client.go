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
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
	targets  []wsTarget         // per server in urls
	srcs     []syscall.Sockaddr // WebSocket source addresses (-src), round-robin
	received [numKinds]atomic.Int64
	inWin    [numKinds]atomic.Int64 // messages whose send time lies in the phase window
	lat      [numKinds]hist
	// sendLate is how late the phase's sends left against their schedule
	// (µs): the load generator's own share of every latency it reports.
	sendLate hist
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
	st, err := newClientState(ctx, cfg)
	if err != nil {
		return err
	}
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

func newClientState(ctx context.Context, cfg *clientFlags) (*clientState, error) {
	st := &clientState{cfg: cfg, ctx: ctx, conns: make([]sioConn, cfg.n), newsByNode: make([]hist, len(cfg.urls))}
	for _, u := range cfg.urls {
		tg, err := newWSTarget(u)
		if err != nil {
			return nil, fmt.Errorf("url %q: %v", u, err)
		}
		st.targets = append(st.targets, tg)
	}
	for _, ip := range cfg.src {
		sa, _, err := sockaddr(ip, 0)
		if err != nil {
			return nil, err
		}
		st.srcs = append(st.srcs, sa)
	}
	return st, nil
}

// srcAddr is the source address of WebSocket connection i (nil: any).
func (st *clientState) srcAddr(i int) syscall.Sockaddr {
	if len(st.srcs) == 0 {
		return nil
	}
	return st.srcs[i%len(st.srcs)]
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
	return dialWS(st, i, node)
}

// tally is what one read of one connection adds to the process's counts:
// added once per read (addTally), not once per message, so the readers do
// not each update shared counters for every frame.
type tally struct {
	w0, w1 int64 // the phase window (unix ns) when the read began
	// A packet's receive time is base's wall clock plus the monotonic time
	// since base: still read per packet, but one clock read instead of
	// time.Now's two (time.Now was half the user CPU per frame).
	base   time.Time
	baseNs int64
	recv   [numKinds]int64
	inWin  [numKinds]int64
}

func (t *tally) setBase() {
	t.base = time.Now()
	t.baseNs = t.base.UnixNano()
}

func (st *clientState) addTally(t *tally) {
	for k := range t.recv {
		if t.recv[k] != 0 {
			st.received[k].Add(t.recv[k])
			t.recv[k] = 0
		}
		if t.inWin[k] != 0 {
			st.inWin[k].Add(t.inWin[k])
			t.inWin[k] = 0
		}
	}
}

// handle processes one Engine.IO packet from the server (polling).
// node is the index in -urls of the server the connection talks to.
func (st *clientState) handle(c sioConn, node int, p []byte) {
	t := tally{w0: st.winStart.Load(), w1: st.winEnd.Load()}
	t.setBase()
	st.handlePacket(c, node, p, &t)
	st.addTally(&t)
}

// newsPrefix is how the suite's broadcasts start: the send time follows.
var newsPrefix = []byte(`42["news",{"t":`)

// handlePacket counts one packet into t and records its latency: receive
// time − the scheduled send time "t" in its payload, if that lies in t's
// window.
func (st *clientState) handlePacket(c sioConn, node int, p []byte, t *tally) {
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
	now := t.baseNs + int64(time.Since(t.base))
	t.recv[kind]++
	var ts int64
	if kind == kindNews && bytes.HasPrefix(p, newsPrefix) {
		ts = parseDigits(p[len(newsPrefix):])
	} else {
		ts = payloadTime(p)
	}
	if ts > 0 && ts >= t.w0 && ts <= t.w1 {
		t.inWin[kind]++
		st.lat[kind].record((now - ts) / 1000)
		// With one server, its histogram is lat[news] (see runPhase).
		if kind == kindNews && len(st.newsByNode) > 1 {
			st.newsByNode[node].record((now - ts) / 1000)
		}
	}
}

// payloadTime extracts the "t" field (unix ns of the scheduled send).
func payloadTime(p []byte) int64 {
	i := bytes.Index(p, []byte(`"t":`))
	if i < 0 {
		return 0
	}
	return parseDigits(p[i+4:])
}

// parseDigits reads the decimal number at the start of p.
func parseDigits(p []byte) int64 {
	var v int64
	for _, ch := range p {
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
	st.sendLate.reset()
	st.winStart.Store(c.Start)
	st.winEnd.Store(end.UnixNano())
	if stop, err := startTimerPump(timerPumpInterval); err != nil {
		fmt.Fprintf(os.Stderr, "timer pump: %v (sends may leave up to 1 ms late)\n", err)
	} else {
		defer stop()
	}
	time.Sleep(time.Until(start))
	pw := startProfWindow("phase")
	reads0 := loops.reads.Load()
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
			st.sendLate.record(time.Since(due).Microseconds())
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
	pw.end(map[string]any{"pub_rate": c.PubRate, "echo_rate": c.EchoRate, "frames": during[kindNews] + during[kindEcho] + during[kindAck],
		"reads": loops.reads.Load() - reads0})
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
	if len(st.newsByNode) == 1 {
		byNode = append(byNode, lat[kindNames[kindNews]]) // one server: the same messages
	} else {
		for k := range st.newsByNode {
			byNode = append(byNode, st.newsByNode[k].snapshot())
		}
	}
	out["recv"], out["in_win"], out["lat"], out["news_by_node"] = recv, win, lat, byNode
	out["send_late"] = st.sendLate.snapshot()
	return out
}

// runChurn opens and closes connections in c.Workers loops for the window:
// each handshake is TCP connect + upgrade + Engine.IO open + Socket.IO CONNECT.
func (st *clientState) runChurn(c command) map[string]any {
	start := time.Unix(0, c.Start)
	end := start.Add(time.Duration(c.DurMs) * time.Millisecond)
	time.Sleep(time.Until(start))
	pw := startProfWindow("churn")
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
	pw.end(map[string]any{"handshakes": ok.Load(), "failed": fail.Load()})
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

// ---- HTTP long-polling transport ----

type pollConn struct {
	node   int
	st     *clientState
	path   string // /socket.io/?...&sid=
	ctx    context.Context
	cancel context.CancelFunc
	getMu  sync.Mutex // held by serve's GETs
	get    *httpConn
	mu     sync.Mutex // one POST at a time per session
	post   *httpConn
}

// dialPolling makes a polling-only Socket.IO connection: GET the open
// packet, POST "40", and poll until "40{...}". GETs and POSTs each keep one
// connection alive, as a browser's would.
func dialPolling(st *clientState, node int) (sioConn, func(), error) {
	ctx, cancel := context.WithCancel(st.ctx)
	get, err := newHTTPConn(st.cfg.urls[node])
	if err != nil {
		cancel()
		return nil, nil, err
	}
	post, _ := newHTTPConn(st.cfg.urls[node])
	fail := func(err error) (sioConn, func(), error) {
		cancel()
		get.close()
		post.close()
		return nil, nil, err
	}
	path := "/socket.io/?EIO=4&transport=polling"
	body, err := get.do(ctx, path, nil)
	if err != nil {
		return fail(err)
	}
	var open struct {
		Sid string `json:"sid"`
	}
	if len(body) == 0 || body[0] != '0' || json.Unmarshal(body[1:], &open) != nil || open.Sid == "" {
		return fail(fmt.Errorf("bad open packet %.60q", body))
	}
	pc := &pollConn{st: st, node: node, path: path + "&sid=" + open.Sid, ctx: ctx, cancel: cancel, get: get, post: post}
	if err := pc.send([]byte("40")); err != nil {
		return fail(err)
	}
	for connected := false; !connected; {
		body, err := get.do(ctx, pc.path, nil)
		if err != nil {
			return fail(err)
		}
		for p := range bytes.SplitSeq(body, []byte{0x1e}) {
			if bytes.HasPrefix(p, []byte("40")) {
				connected = true
			} else if bytes.HasPrefix(p, []byte("44")) {
				return fail(fmt.Errorf("connect_error: %.60s", p))
			} else {
				st.handle(pc, node, p)
			}
		}
	}
	return pc, pc.serve, nil
}

func (pc *pollConn) serve() {
	t := tally{}
	pc.getMu.Lock()
	defer pc.getMu.Unlock()
	for pc.ctx.Err() == nil {
		body, err := pc.get.do(pc.ctx, pc.path, nil)
		if err != nil {
			return
		}
		t.w0, t.w1 = pc.st.winStart.Load(), pc.st.winEnd.Load()
		t.setBase()
		for p := range bytes.SplitSeq(body, []byte{0x1e}) {
			if len(p) > 0 && p[0] == '1' {
				return
			}
			pc.st.handlePacket(pc, pc.node, p, &t)
		}
		pc.st.addTally(&t)
	}
}

func (pc *pollConn) send(p []byte) error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	_, err := pc.post.do(pc.ctx, pc.path, p)
	return err
}

// close ends the session: cancelling its context interrupts a request in
// flight, then both connections are closed.
func (pc *pollConn) close() {
	pc.cancel()
	pc.getMu.Lock()
	pc.get.close()
	pc.getMu.Unlock()
	pc.mu.Lock()
	pc.post.close()
	pc.mu.Unlock()
}
