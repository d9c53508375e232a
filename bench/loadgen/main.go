// Command loadgen opens many Engine.IO v4 (or Socket.IO v5) WebSocket
// connections to a server and keeps them alive, answering the server's
// heartbeat pings, for a bounded time.
//
//	go run ./bench/loadgen -url ws://127.0.0.1:3000 -mode sio -n 10000 -rate 2000 -hold 30s
//
// Each connection is one goroutine that reads straight from its net.Conn
// through a 256-byte buffer, so the client costs a few KB per connection and
// one process can drive the ~19,000 sockets that the build machines' open-file
// limit (20,000) allows.
//
// Modes:
//
//	eio  GET /engine.io/?EIO=4&transport=websocket, wait for the open packet ("0{...}")
//	sio  GET /socket.io/?EIO=4&transport=websocket, wait for "0{...}", send the
//	     Socket.IO CONNECT "40" (or "40/nsp,") and wait for "40{...}"
//
// A connection counts as connected once that handshake is complete. Every
// Engine.IO ping ("2") is answered with a pong ("3") and every WebSocket ping
// with a pong.
//
// Output: progress lines on stderr; on stdout one JSON line
// {"event":"ready",...} once every connection attempt has finished (connected
// or failed), then {"event":"final",...} when the run ends: after -hold, on
// SIGINT/SIGTERM, or at -max-duration, whichever comes first. SIGUSR1 prints
// a {"event":"status",...} line at any time. The exit
// status is 0 when every connection was made and none dropped before the end,
// 1 otherwise, 2 for bad flags.
//
// Only loopback addresses are accepted, for the server and for -src.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/herald-rt/herald/bench/internal/wsframe"
)

type config struct {
	url            string // ws://host:port (path and query are filled in from -mode) or a full URL
	n              int
	mode           string
	nsp            string
	rate           float64
	concurrency    int
	src            []net.IP
	hold           time.Duration
	connectTimeout time.Duration
	maxDuration    time.Duration
	progress       time.Duration
	readBuf        int
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ok := run(cfg)
	if !ok {
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	cfg := &config{}
	var src string
	fs.StringVar(&cfg.url, "url", "ws://127.0.0.1:3000", "server `URL`: ws://host:port, path and query added from -mode unless the URL has a path")
	fs.IntVar(&cfg.n, "n", 1000, "number of connections")
	fs.StringVar(&cfg.mode, "mode", "eio", "eio (Engine.IO on /engine.io/) or sio (Socket.IO on /socket.io/, sends CONNECT)")
	fs.StringVar(&cfg.nsp, "nsp", "/", "Socket.IO namespace to connect to (-mode sio)")
	fs.Float64Var(&cfg.rate, "rate", 2000, "connection attempts per second (0: as fast as -concurrency allows)")
	fs.IntVar(&cfg.concurrency, "concurrency", 256, "maximum handshakes in flight")
	fs.StringVar(&src, "src", "", "comma-separated loopback source `IPs` to spread ephemeral ports over, e.g. 127.0.0.2,127.0.0.3")
	fs.DurationVar(&cfg.hold, "hold", 30*time.Second, "how long to keep the connections open once every attempt has finished")
	fs.DurationVar(&cfg.connectTimeout, "connect-timeout", 10*time.Second, "timeout of one connection's TCP connect + upgrade + handshake")
	fs.DurationVar(&cfg.maxDuration, "max-duration", 10*time.Minute, "hard limit on the whole run")
	fs.DurationVar(&cfg.progress, "progress", time.Second, "progress report interval on stderr (0: off)")
	fs.IntVar(&cfg.readBuf, "read-buffer", 256, "per-connection read buffer `bytes`")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.n <= 0 {
		return nil, errors.New("-n must be > 0")
	}
	if cfg.concurrency <= 0 {
		return nil, errors.New("-concurrency must be > 0")
	}
	if cfg.readBuf < 16 {
		cfg.readBuf = 16
	}
	if cfg.maxDuration <= 0 {
		return nil, errors.New("-max-duration must be > 0")
	}
	switch cfg.mode {
	case "eio", "sio":
	default:
		return nil, fmt.Errorf("-mode %q: want eio or sio", cfg.mode)
	}
	u, err := url.Parse(cfg.url)
	if err != nil {
		return nil, fmt.Errorf("-url: %v", err)
	}
	switch u.Scheme {
	case "ws":
	case "http":
		u.Scheme = "ws"
	default:
		return nil, fmt.Errorf("-url %q: want ws://host:port", cfg.url)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("-url host %q is not a loopback address", u.Hostname())
	}
	if u.Path == "" || u.Path == "/" {
		if cfg.mode == "eio" {
			u.Path = "/engine.io/"
		} else {
			u.Path = "/socket.io/"
		}
	}
	if u.RawQuery == "" {
		u.RawQuery = "EIO=4&transport=websocket"
	}
	cfg.url = u.String()
	for _, s := range strings.Split(src, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("-src %q: not a loopback IP", s)
		}
		cfg.src = append(cfg.src, ip)
	}
	if cfg.nsp == "" || cfg.nsp[0] != '/' {
		cfg.nsp = "/" + cfg.nsp
	}
	return cfg, nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// stats are shared by all connection goroutines.
type stats struct {
	attempted  atomic.Int64
	connected  atomic.Int64 // handshake complete (ever)
	open       atomic.Int64 // currently connected
	failed     atomic.Int64 // handshake failed
	dropped    atomic.Int64 // closed by the server or by an error after connecting, before the end
	pings      atomic.Int64 // Engine.IO pings answered
	wsPings    atomic.Int64 // WebSocket pings answered
	messages   atomic.Int64 // other frames received after the handshake
	rxBytes    atomic.Int64
	connectUS  []int32 // per-connection handshake time in µs (-1: failed)
	errMu      sync.Mutex
	errors     map[string]int // failure class -> count
	dropErrors map[string]int
}

func (s *stats) addErr(m map[string]int, err error) {
	s.errMu.Lock()
	m[errClass(err)]++
	s.errMu.Unlock()
}

func errClass(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "addr-not-available"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too-many-files"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// registry keeps every live connection so that the end of the run can close them.
type registry struct {
	mu      sync.Mutex
	conns   []net.Conn
	closing bool
}

func (r *registry) add(i int, c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.conns[i] = c
	return true
}

func (r *registry) remove(i int) {
	r.mu.Lock()
	r.conns[i] = nil
	r.mu.Unlock()
}

func (r *registry) isClosing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}

func (r *registry) closeAll() {
	r.mu.Lock()
	r.closing = true
	conns := slices.Clone(r.conns)
	r.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

type result struct {
	Event        string         `json:"event"`
	Mode         string         `json:"mode"`
	URL          string         `json:"url"`
	N            int            `json:"n"`
	Attempted    int64          `json:"attempted"`
	Connected    int64          `json:"connected"`
	Open         int64          `json:"open"`
	Failed       int64          `json:"failed"`
	Dropped      int64          `json:"dropped"`
	Pings        int64          `json:"pings_answered"`
	WSPings      int64          `json:"ws_pings_answered"`
	Messages     int64          `json:"messages"`
	RxBytes      int64          `json:"rx_bytes"`
	ElapsedS     float64        `json:"elapsed_s"`
	ConnectS     float64        `json:"connect_phase_s,omitempty"`
	ConnectP50Ms float64        `json:"connect_p50_ms,omitempty"`
	ConnectP99Ms float64        `json:"connect_p99_ms,omitempty"`
	ConnectMaxMs float64        `json:"connect_max_ms,omitempty"`
	Errors       map[string]int `json:"errors,omitempty"`
	DropErrors   map[string]int `json:"drop_errors,omitempty"`
	Reason       string         `json:"reason,omitempty"`
	ClientRSSKB  int64          `json:"client_rss_kb,omitempty"`
	ClientHeapKB uint64         `json:"client_heap_inuse_kb,omitempty"`
	ClientStack  uint64         `json:"client_stack_inuse_kb,omitempty"`
	Goroutines   int            `json:"client_goroutines,omitempty"`
	PID          int            `json:"pid"`
}

func run(cfg *config) bool {
	start := time.Now()
	st := &stats{
		connectUS:  make([]int32, cfg.n),
		errors:     map[string]int{},
		dropErrors: map[string]int{},
	}
	reg := &registry{conns: make([]net.Conn, cfg.n)}

	hardCtx, cancelHard := context.WithTimeout(context.Background(), cfg.maxDuration)
	defer cancelHard()
	sigCtx, stopSig := signal.NotifyContext(hardCtx, os.Interrupt, syscall.SIGTERM)
	defer stopSig()

	fmt.Fprintf(os.Stderr, "loadgen: %s n=%d rate=%g/s src=%v hold=%s pid=%d\n", cfg.url, cfg.n, cfg.rate, cfg.src, cfg.hold, os.Getpid())

	// SIGUSR1 prints a {"event":"status"} line, so a harness can check the
	// connections at a given moment without ending the run.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			emit(summary(cfg, st, start, "status"))
		}
	}()

	// Progress reporter.
	progDone := make(chan struct{})
	if cfg.progress > 0 {
		go func() {
			t := time.NewTicker(cfg.progress)
			defer t.Stop()
			for {
				select {
				case <-progDone:
					return
				case <-t.C:
					fmt.Fprintf(os.Stderr, "loadgen: t=%5.1fs attempted=%d open=%d connected=%d failed=%d dropped=%d pings=%d\n",
						time.Since(start).Seconds(), st.attempted.Load(), st.open.Load(), st.connected.Load(),
						st.failed.Load(), st.dropped.Load(), st.pings.Load())
				}
			}
		}()
	}

	// Connect phase: paced launches, bounded concurrency.
	sem := make(chan struct{}, cfg.concurrency)
	var handshakes sync.WaitGroup // finished when every attempt has connected or failed
	var conns sync.WaitGroup      // finished when every connection goroutine has returned
	dialer := newDialer(cfg)
	stopped := false
launch:
	for i := 0; i < cfg.n; i++ {
		if cfg.rate > 0 {
			due := start.Add(time.Duration(float64(i) / cfg.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-sigCtx.Done():
					stopped = true
					break launch
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-sigCtx.Done():
			stopped = true
			break launch
		}
		st.attempted.Add(1)
		handshakes.Add(1)
		conns.Add(1)
		go func(i int) {
			fr := handshake(cfg, dialer(i), i, st, reg)
			<-sem
			handshakes.Done()
			if fr == nil {
				conns.Done()
				return
			}
			// Serve the idle phase on a fresh goroutine: the handshake grew
			// this one's stack, and a new one starts small.
			go func() {
				defer conns.Done()
				idle(fr, i, st, reg)
			}()
		}(i)
	}
	hsDone := make(chan struct{})
	go func() { handshakes.Wait(); close(hsDone) }()
	select {
	case <-hsDone:
	case <-sigCtx.Done():
		stopped = true
	}
	connectPhase := time.Since(start)

	res := summary(cfg, st, start, "ready")
	res.ConnectS = connectPhase.Seconds()
	fillConnectStats(&res, st)
	reason := "hold elapsed"
	if !stopped {
		emit(res)
		fmt.Fprintf(os.Stderr, "loadgen: ready after %.2fs: connected=%d failed=%d; holding %s\n",
			connectPhase.Seconds(), st.connected.Load(), st.failed.Load(), cfg.hold)
		select {
		case <-time.After(cfg.hold):
		case <-sigCtx.Done():
		}
	}
	switch {
	case hardCtx.Err() != nil:
		reason = "max-duration reached"
	case sigCtx.Err() != nil:
		reason = "signal"
	}

	// Shut down: measure the client, then close every connection.
	final := summary(cfg, st, start, "final")
	final.ConnectS = connectPhase.Seconds()
	fillConnectStats(&final, st)
	final.Reason = reason
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	final.ClientHeapKB = ms.HeapInuse / 1024
	final.ClientStack = ms.StackInuse / 1024
	final.Goroutines = runtime.NumGoroutine()
	final.ClientRSSKB = selfRSSKB()
	reg.closeAll()
	wait := make(chan struct{})
	go func() { conns.Wait(); close(wait) }()
	select {
	case <-wait:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "loadgen: some connections did not close within 10s")
	}
	close(progDone)
	st.errMu.Lock()
	final.Errors = maps(st.errors)
	final.DropErrors = maps(st.dropErrors)
	st.errMu.Unlock()
	final.ElapsedS = time.Since(start).Seconds()
	emit(final)
	return final.Connected == int64(cfg.n) && final.Dropped == 0
}

func maps(m map[string]int) map[string]int {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func summary(cfg *config, st *stats, start time.Time, event string) result {
	return result{
		Event:     event,
		Mode:      cfg.mode,
		URL:       cfg.url,
		N:         cfg.n,
		Attempted: st.attempted.Load(),
		Connected: st.connected.Load(),
		Open:      st.open.Load(),
		Failed:    st.failed.Load(),
		Dropped:   st.dropped.Load(),
		Pings:     st.pings.Load(),
		WSPings:   st.wsPings.Load(),
		Messages:  st.messages.Load(),
		RxBytes:   st.rxBytes.Load(),
		ElapsedS:  time.Since(start).Seconds(),
		PID:       os.Getpid(),
	}
}

func fillConnectStats(r *result, st *stats) {
	var ok []int32
	for i := range st.connectUS {
		if v := atomic.LoadInt32(&st.connectUS[i]); v > 0 {
			ok = append(ok, v)
		}
	}
	if len(ok) == 0 {
		return
	}
	slices.Sort(ok)
	pct := func(p float64) float64 {
		idx := int(p * float64(len(ok)-1))
		return float64(ok[idx]) / 1000
	}
	r.ConnectP50Ms = pct(0.50)
	r.ConnectP99Ms = pct(0.99)
	r.ConnectMaxMs = float64(ok[len(ok)-1]) / 1000
}

func emit(r result) {
	b, _ := json.Marshal(r)
	os.Stdout.Write(append(b, '\n'))
}

func selfRSSKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb
		}
	}
	return 0
}

// newDialer returns, for connection i, a dialer bound to its source IP.
func newDialer(cfg *config) func(i int) ws.Dialer {
	dialers := make([]ws.Dialer, max(1, len(cfg.src)))
	for k := range dialers {
		nd := &net.Dialer{}
		if len(cfg.src) > 0 {
			nd.LocalAddr = &net.TCPAddr{IP: cfg.src[k]}
			nd.Control = bindAddressNoPort
		}
		dialers[k] = ws.Dialer{
			Timeout:         cfg.connectTimeout,
			NetDial:         nd.DialContext,
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
		}
	}
	return func(i int) ws.Dialer { return dialers[i%len(dialers)] }
}

// bindAddressNoPort sets IP_BIND_ADDRESS_NO_PORT before the dialer binds the
// source address, so the kernel picks the ephemeral port at connect time,
// unique per 4-tuple. Without it bind() must find a port free for every
// destination: after a previous run has left ~10k TIME_WAIT sockets on the
// same source address, that search crawls (the connect phase of 10k
// connections went from 5 s to 15-25 s).
func bindAddressNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h (Linux ≥ 4.2).
const ipBindAddressNoPort = 24

// connReader reads what the handshake reader still buffers, then the conn.
type connReader struct {
	br *bufio.Reader
	c  net.Conn
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.br != nil {
		if r.br.Buffered() > 0 {
			return r.br.Read(p)
		}
		ws.PutReader(r.br)
		r.br = nil
	}
	return r.c.Read(p)
}

var errProtocol = errors.New("protocol error")

// handshake makes connection i: TCP connect, WebSocket upgrade, Engine.IO
// open packet and, in sio mode, the Socket.IO CONNECT. It returns nil when
// any of it fails.
func handshake(cfg *config, d ws.Dialer, i int, st *stats, reg *registry) *frameIO {
	t0 := time.Now()
	fail := func(err error) *frameIO {
		atomic.StoreInt32(&st.connectUS[i], -1)
		st.failed.Add(1)
		st.addErr(st.errors, err)
		return nil
	}

	c, br, _, err := d.Dial(context.Background(), cfg.url)
	if err != nil {
		return fail(err)
	}
	if !reg.add(i, c) {
		c.Close()
		return fail(errors.New("run ended"))
	}
	fr := &frameIO{r: bufio.NewReaderSize(&connReader{br: br, c: c}, cfg.readBuf), w: c}
	failConn := func(err error) *frameIO {
		reg.remove(i)
		c.Close()
		return fail(err)
	}

	c.SetDeadline(t0.Add(cfg.connectTimeout))
	if err := awaitPacket(fr, st, func(p []byte) bool { return len(p) > 0 && p[0] == '0' }); err != nil {
		return failConn(err)
	}
	if cfg.mode == "sio" {
		want := "40"
		if cfg.nsp != "/" {
			want = "40" + cfg.nsp + ","
		}
		if err := fr.writeText([]byte(want)); err != nil {
			return failConn(err)
		}
		var connectErr error
		err := awaitPacket(fr, st, func(p []byte) bool {
			if len(p) >= 2 && p[0] == '4' && p[1] == '4' { // CONNECT_ERROR
				connectErr = fmt.Errorf("connect_error: %.60s", p)
				return true
			}
			return strings.HasPrefix(string(p), want)
		})
		if err == nil {
			err = connectErr
		}
		if err != nil {
			return failConn(err)
		}
	}
	c.SetDeadline(time.Time{})
	atomic.StoreInt32(&st.connectUS[i], int32(min(time.Since(t0).Microseconds(), 1<<31-1)))
	st.connected.Add(1)
	st.open.Add(1)
	return fr
}

// idle serves connection i, answering pings, until the run ends or the
// server goes away.
func idle(fr *frameIO, i int, st *stats, reg *registry) {
	err := serve(fr, st)
	st.open.Add(-1)
	if !reg.isClosing() {
		st.dropped.Add(1)
		st.addErr(st.dropErrors, err)
	}
	reg.remove(i)
	fr.w.Close()
}

// awaitPacket reads Engine.IO packets until match returns true, answering
// pings on the way.
func awaitPacket(fr *frameIO, st *stats, match func([]byte) bool) error {
	for {
		op, p, err := fr.next()
		if err != nil {
			return err
		}
		switch op {
		case ws.OpText:
			if match(p) {
				return nil
			}
			if len(p) == 1 && p[0] == '2' {
				if err := fr.writeText([]byte{'3'}); err != nil {
					return err
				}
				st.pings.Add(1)
			}
		case ws.OpClose:
			return errors.New("closed by server during handshake")
		}
	}
}

// serve is the idle loop of a connected client.
func serve(fr *frameIO, st *stats) error {
	for {
		op, p, err := fr.next()
		if err != nil {
			return err
		}
		st.rxBytes.Add(int64(len(p)))
		switch op {
		case ws.OpText, ws.OpBinary:
			if op == ws.OpText && len(p) == 1 && p[0] == '2' {
				if err := fr.writeText([]byte{'3'}); err != nil {
					return err
				}
				st.pings.Add(1)
				continue
			}
			if op == ws.OpText && len(p) >= 1 && p[0] == '1' {
				return errors.New("engine.io close packet")
			}
			st.messages.Add(1)
		case ws.OpClose:
			return errors.New("websocket close frame")
		}
	}
}

// frameIO reads whole (defragmented) server frames and writes masked client frames.
type frameIO struct {
	r   *bufio.Reader
	w   net.Conn
	hdr [ws.MaxHeaderSize]byte
	out []byte
}

// next returns the next data or close message; WebSocket pings are answered
// and other control frames skipped. p is valid until the next call.
func (f *frameIO) next() (ws.OpCode, []byte, error) {
	var (
		msg []byte
		op  ws.OpCode
	)
	for {
		h, err := ws.ReadHeaderBuffer(f.r, f.hdr[:2])
		if err != nil {
			return 0, nil, err
		}
		if h.Length > 16<<20 {
			return 0, nil, fmt.Errorf("%w: frame of %d bytes", errProtocol, h.Length)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(f.r, payload); err != nil {
			return 0, nil, err
		}
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		if h.OpCode.IsControl() {
			switch h.OpCode {
			case ws.OpPing:
				if err := f.writeFrame(ws.OpPong, payload); err != nil {
					return 0, nil, err
				}
			case ws.OpClose:
				return ws.OpClose, payload, nil
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			op = h.OpCode
			msg = payload
		} else {
			msg = append(msg, payload...)
		}
		if h.Fin {
			return op, msg, nil
		}
	}
}

func (f *frameIO) writeText(p []byte) error { return f.writeFrame(ws.OpText, p) }

// writeFrame writes one masked frame with a single write call.
func (f *frameIO) writeFrame(op ws.OpCode, p []byte) error {
	buf := wsframe.AppendMasked(f.out[:0], byte(op), p)
	_, err := f.w.Write(buf)
	if cap(buf) <= 256 {
		f.out = buf[:0]
	} else {
		f.out = nil
	}
	return err
}
