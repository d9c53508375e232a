package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/adapter/adaptertest"
	"github.com/herald-rt/herald/adapter/redis"
	"github.com/herald-rt/herald/internal/testutil"
	"github.com/herald-rt/herald/parser"
)

// Restart scenario parameters.
const (
	restartInterval        = 5 * time.Millisecond   // node A broadcasts every 5 ms
	restartOutage          = time.Second            // redis-server down for this long
	restartRequestsTimeout = 500 * time.Millisecond // Config.RequestsTimeout of both nodes
	restartRecoveryBound   = 5 * time.Second        // B must hear broadcasts again within this
	restartRequestSlack    = 300 * time.Millisecond // allowed beyond RequestsTimeout for a failing request
	restartAfterRecovery   = 500 * time.Millisecond // traffic kept up after recovery
	restartBroadcastCtx    = 2 * time.Second        // deadline of each Broadcast call
	restartRoom            = "restart-room"         // the room every socket is in
	restartEvent           = "seq"                  // ["seq", N]
	restartPollStep        = 5 * time.Millisecond   // polling step of the waits
	restartPollTimeout     = restartRecoveryBound + time.Second
)

// TestRestart stops redis-server for about a second while node A broadcasts
// a numbered event every 5 ms to a room with sockets on node B, starts it
// again on the same port, and checks that the nodes recover by themselves:
// it measures how long B takes to hear broadcasts again once Redis answers
// PING, and what was lost (pub/sub is at-most-once: messages published
// while B is not subscribed are lost to it, but none after recovery, and
// none duplicated or reordered).
func TestRestart(t *testing.T) {
	kinds := []struct {
		name    string
		factory func(*redis.Clients, redis.Config) adapter.Factory
		mode    string
	}{
		{"Classic", redis.NewAdapter, ""},
		{"Sharded", redis.NewShardedAdapter, "dynamic"},
		{"ShardedStatic", redis.NewShardedAdapter, "static"},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			key := fmt.Sprintf("restart%d", clusterSeq.Add(1)) // shared by both nodes
			testRestart(t, func(c *redis.Clients, log *slog.Logger) adapter.Factory {
				return k.factory(c, redis.Config{
					Key:              key,
					SubscriptionMode: k.mode,
					RequestsTimeout:  restartRequestsTimeout,
					Logger:           log,
				})
			})
		})
	}
}

// sendRecord is one Broadcast call of node A.
type sendRecord struct {
	seq        int
	start, end time.Time
	err        error
}

// recvRecord is one delivery of an event to node B.
type recvRecord struct {
	seq int
	at  time.Time
}

// outageCall is a cluster request made while Redis is down.
type outageCall struct {
	name string
	took time.Duration
	err  error
	info string
}

func testRestart(t *testing.T, newFactory func(*redis.Clients, *slog.Logger) adapter.Factory) {
	r := testutil.StartRedis(t)
	logs := &logRecorder{}
	log := slog.New(logs)
	// Two nodes, each with its own pair of connections.
	fa := newFactory(dial(t, r.URL()), log.With("node", "A"))
	fb := newFactory(dial(t, r.URL()), log.With("node", "B"))
	nsA, nsB := adaptertest.NewNamespace("/", 0), adaptertest.NewNamespace("/", 1)
	aA, err := nsA.Attach(fa)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aA.Close() })
	aB, err := nsB.Attach(fb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aB.Close() })
	a1 := nsA.Connect("restartsocketa1", restartRoom)
	b1 := nsB.Connect("restartsocketb1", restartRoom)
	b2 := nsB.Connect("restartsocketb2", restartRoom)
	allIDs := []string{a1.ID(), b1.ID(), b2.ID()}
	for _, a := range []adapter.Adapter{aA, aB} {
		if d, err := waitServerCount(a, 2, restartPollTimeout); err != nil {
			t.Fatalf("before the restart: %v (after %v)", err, d)
		}
	}

	// B records when each numbered event reaches it (once per Deliver
	// call; both sockets of B share one).
	var recvMu sync.Mutex
	var recvB []recvRecord
	nsB.OnDeliver(func(d adaptertest.Delivery) {
		if seq, ok := seqOf(d.Packet); ok {
			now := time.Now()
			recvMu.Lock()
			recvB = append(recvB, recvRecord{seq, now})
			recvMu.Unlock()
		}
	})
	received := func() []recvRecord {
		recvMu.Lock()
		defer recvMu.Unlock()
		return slices.Clone(recvB)
	}

	// A broadcasts ["seq", N] to the room every 5 ms.
	var sendMu sync.Mutex
	var sends []sendRecord
	stopSending := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		tick := time.NewTicker(restartInterval)
		defer tick.Stop()
		for seq := 1; ; seq++ {
			select {
			case <-stopSending:
				return
			case <-tick.C:
			}
			pkt, err := parser.NewEvent("/", restartEvent, seq)
			if err != nil {
				panic(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), restartBroadcastCtx)
			start := time.Now()
			err = aA.Broadcast(ctx, pkt, adapter.BroadcastOptions{Rooms: []string{restartRoom}})
			end := time.Now()
			cancel()
			sendMu.Lock()
			sends = append(sends, sendRecord{seq, start, end, err})
			sendMu.Unlock()
		}
	}()
	stopSender := func() {
		select {
		case <-stopSending:
		default:
			close(stopSending)
		}
		<-senderDone
	}
	t.Cleanup(stopSender)

	// Warm-up: B hears the traffic.
	if !pollUntil(restartPollTimeout, func() bool { return len(received()) >= 40 }) {
		t.Fatalf("before the restart, B received only %d events", len(received()))
	}

	// The outage.
	stopCalled := time.Now()
	r.Stop()
	stopped := time.Now()
	t.Logf("redis-server killed in %v", stopped.Sub(stopCalled).Round(time.Millisecond))

	// Cluster requests while Redis is down, made with a context that has no
	// deadline: the adapter's RequestsTimeout alone must bound them.
	time.Sleep(100 * time.Millisecond)
	outage := make(chan outageCall, 4)
	outageCalls := []struct {
		name string
		call func() (string, error)
	}{
		{"A.FetchSockets", func() (string, error) {
			s, err := aA.FetchSockets(context.Background(), adapter.BroadcastOptions{})
			return fmt.Sprintf("%d sockets", len(s)), err
		}},
		{"B.FetchSockets(room)", func() (string, error) {
			s, err := aB.FetchSockets(context.Background(), adapter.BroadcastOptions{Rooms: []string{restartRoom}})
			return fmt.Sprintf("%d sockets", len(s)), err
		}},
		{"A.ServerSideEmit(ack)", func() (string, error) {
			n := 0
			var mu sync.Mutex
			err := aA.ServerSideEmit(context.Background(), json.RawMessage(`["ping"]`), nil, func(adapter.Ack) {
				mu.Lock()
				n++
				mu.Unlock()
			})
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprintf("%d acks", n), err
		}},
		{"A.ServerCount", func() (string, error) {
			n, err := aA.ServerCount(context.Background())
			return fmt.Sprintf("count %d", n), err
		}},
	}
	outageStart := time.Now()
	for _, c := range outageCalls {
		go func() {
			start := time.Now()
			info, err := c.call()
			outage <- outageCall{c.name, time.Since(start), err, info}
		}()
	}

	time.Sleep(restartOutage - time.Since(stopped))
	// "Back" is the first PONG of a poller that tries every millisecond
	// (Redis.Start polls more slowly before it returns).
	pong := make(chan time.Time, 1)
	stopPing := make(chan struct{})
	go func() { pong <- firstPong(r.Addr, stopPing) }()
	startCalled := time.Now()
	r.Start() // returns once PING answers on the same port
	started := time.Now()
	var back time.Time
	select {
	case back = <-pong:
	case <-time.After(time.Second):
		back = started
	}
	close(stopPing)
	t.Logf("redis-server down for %v (killed at %s); restarted and answering PING %v after Start (at %s)",
		back.Sub(stopped).Round(time.Millisecond), stopped.Format(clock), back.Sub(startCalled).Round(time.Millisecond), back.Format(clock))

	// Recovery: the first event B receives of those sent after the kill.
	// (One sent just before it may still arrive just after: that is not a
	// recovery, and counting from it made everything after it look lost.)
	var first recvRecord
	recovered := pollUntil(restartPollTimeout, func() bool {
		sentBeforeKill := 0
		sendMu.Lock()
		for _, s := range sends {
			if s.start.Before(stopCalled) {
				sentBeforeKill = s.seq
			}
		}
		sendMu.Unlock()
		for _, rec := range received() {
			if rec.at.After(stopped) && rec.seq > sentBeforeKill {
				first = rec
				return true
			}
		}
		return false
	})
	if !recovered {
		stopSender()
		t.Fatalf("B received nothing within %v of Redis answering PING again%s", restartPollTimeout, logs.dump())
	}
	recovery := first.at.Sub(back)

	// The cluster works again, while A's traffic goes on: ServerCount 2 on
	// both nodes, FetchSockets from both sides, a server-side emit with ack.
	// Each is retried until it works; the first attempt's failure is
	// reported (see the comment on untilWorks).
	var afterRecovery []string
	works := func(name string, f func(ctx context.Context) (string, error)) {
		afterRecovery = append(afterRecovery, untilWorks(t, name, back, f))
	}
	for _, n := range []struct {
		name string
		a    adapter.Adapter
	}{{"A", aA}, {"B", aB}} {
		works(n.name+".ServerCount", func(ctx context.Context) (string, error) {
			c, err := n.a.ServerCount(ctx)
			if err == nil && c != 2 {
				err = fmt.Errorf("count %d, want 2", c)
			}
			return fmt.Sprintf("count %d", c), err
		})
	}
	for _, n := range []struct {
		name string
		a    adapter.Adapter
	}{{"A", aA}, {"B", aB}} {
		works(n.name+".FetchSockets", func(ctx context.Context) (string, error) {
			infos, err := n.a.FetchSockets(ctx, adapter.BroadcastOptions{Rooms: []string{restartRoom}})
			var ids []string
			for _, info := range infos {
				ids = append(ids, info.ID)
			}
			slices.Sort(ids)
			if err == nil && !slices.Equal(ids, allIDs) {
				err = fmt.Errorf("sockets %v, want %v", ids, allIDs)
			}
			return fmt.Sprintf("sockets %v", ids), err
		})
	}
	works("A.ServerSideEmit(ack)", func(ctx context.Context) (string, error) {
		var mu sync.Mutex
		var acks []string
		err := aA.ServerSideEmit(ctx, json.RawMessage(`["after"]`), nil, func(ack adapter.Ack) {
			mu.Lock()
			acks = append(acks, string(ack.Args))
			mu.Unlock()
		})
		mu.Lock()
		defer mu.Unlock()
		if err == nil && len(acks) != 1 {
			err = fmt.Errorf("acks %v, want one from B", acks)
		}
		return fmt.Sprintf("acks %v", acks), err
	})

	// Keep the traffic up for a while after recovery, then stop it and let
	// the last event through.
	time.Sleep(restartAfterRecovery - time.Since(first.at))
	stopSender()
	sendMu.Lock()
	allSends := slices.Clone(sends)
	sendMu.Unlock()
	lastOK := 0
	for _, s := range allSends {
		if s.err == nil {
			lastOK = s.seq
		}
	}
	pollUntil(2*time.Second, func() bool {
		rs := received()
		return len(rs) > 0 && rs[len(rs)-1].seq >= lastOK
	})

	// The cluster requests made during the outage.
	for range outageCalls {
		var c outageCall
		select {
		case c = <-outage:
		case <-time.After(restartPollTimeout):
			t.Fatalf("a cluster request made during the outage had not returned %v after it began (hang)", time.Since(outageStart).Round(time.Millisecond))
		}
		t.Logf("during the outage: %s returned after %v: %s, err=%v", c.name, c.took.Round(time.Millisecond), c.info, c.err)
		if c.err == nil {
			t.Errorf("%s during the outage returned no error (%s), want adapter.ErrTimeout or a Redis error", c.name, c.info)
		}
		if bound := restartRequestsTimeout + restartRequestSlack; c.took > bound {
			t.Errorf("%s during the outage took %v, want an error within RequestsTimeout (%v) + %v: it waited for Redis instead of failing",
				c.name, c.took.Round(time.Millisecond), restartRequestsTimeout, restartRequestSlack)
		}
		if errors.Is(c.err, adapter.ErrTimeout) {
			t.Logf("  (%s failed with adapter.ErrTimeout)", c.name)
		}
	}

	// --- Analysis ---
	recvs := received()
	gotB := make(map[int]int, len(recvs))
	for _, rec := range recvs {
		gotB[rec.seq]++
	}
	var (
		failed, failedOutsideOutage  []int // Broadcast returned an error
		lostOK, lostAfterRecovery    []int // returned nil but never reached B
		okDuringOutage               []int // returned nil while Redis was surely down
		maxBroadcast                 time.Duration
		lastBeforeStop, firstFailure = 0, 0
	)
	for _, s := range allSends {
		maxBroadcast = max(maxBroadcast, s.end.Sub(s.start))
		if s.start.Before(stopCalled) && gotB[s.seq] > 0 {
			lastBeforeStop = s.seq
		}
		if s.err != nil {
			failed = append(failed, s.seq)
			if firstFailure == 0 {
				firstFailure = s.seq
			}
			if s.end.Before(stopCalled) || s.start.After(back.Add(restartRecoveryBound)) {
				failedOutsideOutage = append(failedOutsideOutage, s.seq)
			}
			continue
		}
		if s.start.After(stopped) && s.end.Before(startCalled) {
			okDuringOutage = append(okDuringOutage, s.seq)
		}
		if gotB[s.seq] == 0 {
			lostOK = append(lostOK, s.seq)
			if s.seq > first.seq {
				lostAfterRecovery = append(lostAfterRecovery, s.seq)
			}
		}
	}
	lost := 0
	for _, s := range allSends {
		if gotB[s.seq] == 0 {
			lost++
		}
	}
	lastAt := recvs[len(recvs)-1].at
	t.Logf("sent %d events (%d..%d), every %v; longest Broadcast call %v",
		len(allSends), allSends[0].seq, allSends[len(allSends)-1].seq, restartInterval, maxBroadcast.Round(time.Millisecond))
	for _, s := range allSends {
		if d := s.end.Sub(s.start); d > 100*time.Millisecond {
			t.Logf("slow Broadcast #%d: began %v after the kill, took %v, err=%v", s.seq, s.start.Sub(stopped).Round(time.Millisecond), d.Round(time.Millisecond), s.err)
		}
	}
	t.Logf("RECOVERY: B received again %v after Redis answered PING (%v after it was killed); first event after the outage: #%d",
		recovery.Round(time.Millisecond), first.at.Sub(stopped).Round(time.Millisecond), first.seq)
	t.Logf("LOSS: %d of %d events never reached B (#%d..#%d around the outage): %d whose Broadcast returned an error %s, %d acknowledged by Redis but lost %s; after recovery: %d lost",
		lost, len(allSends), lastBeforeStop+1, first.seq-1, len(failed), ranges(failed), len(lostOK), ranges(lostOK), len(lostAfterRecovery))
	t.Logf("B's last event #%d at +%v after recovery; adapter log: %s", recvs[len(recvs)-1].seq, lastAt.Sub(first.at).Round(time.Millisecond), logs.summary())

	if recovery > restartRecoveryBound {
		t.Errorf("B heard broadcasts again %v after Redis was back, want < %v", recovery, restartRecoveryBound)
	}
	if len(lostAfterRecovery) > 0 {
		t.Errorf("%d events sent after recovery (after #%d) never reached B: %s", len(lostAfterRecovery), first.seq, ranges(lostAfterRecovery))
	}
	if len(failed) == 0 {
		t.Errorf("no Broadcast returned an error while Redis was down")
	}
	if len(okDuringOutage) > 0 {
		t.Errorf("Broadcast returned no error while Redis was down for %s", ranges(okDuringOutage))
	}
	if len(failedOutsideOutage) > 0 {
		t.Errorf("Broadcast failed outside the outage for %s", ranges(failedOutsideOutage))
	}
	for _, s := range allSends {
		if s.seq > first.seq && s.err != nil {
			t.Errorf("Broadcast #%d failed after B had recovered: %v", s.seq, s.err)
		}
	}
	if first.seq <= lastBeforeStop {
		t.Errorf("the first event after the outage, #%d, is not after the last before it, #%d", first.seq, lastBeforeStop)
	}

	// Each socket of B: every event at most once, in order; both the same.
	seqB1, seqB2 := socketSeqs(b1), socketSeqs(b2)
	checkOrdered(t, "B socket b1", seqB1)
	checkOrdered(t, "B socket b2", seqB2)
	if !slices.Equal(seqB1, seqB2) {
		t.Errorf("B's sockets got different events: %d vs %d", len(seqB1), len(seqB2))
	}
	for seq, n := range gotB {
		if n != 1 {
			t.Errorf("event #%d delivered %d times on B", seq, n)
		}
	}
	// A's own socket got every event, those whose publish failed included.
	seqA := socketSeqs(a1)
	checkOrdered(t, "A socket a1", seqA)
	if len(seqA) != len(allSends) {
		t.Errorf("A's local socket got %d of the %d events A broadcast; missing %s", len(seqA), len(allSends), ranges(missing(allSends, seqA)))
	} else {
		t.Logf("A's local socket got all %d events, including the %d whose publish failed", len(seqA), len(failed))
	}

	for _, line := range afterRecovery {
		t.Log(line)
	}
	if t.Failed() {
		t.Logf("adapter log:%s", logs.dump())
	}
}

const clock = "15:04:05.000"

// firstPong returns when a redis-server at addr first answered PING,
// trying every millisecond until it does or stop is closed.
func firstPong(addr string, stop <-chan struct{}) time.Time {
	buf := make([]byte, 16)
	for {
		select {
		case <-stop:
			return time.Now()
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			n, _ := c.Read(buf)
			at := time.Now()
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return at
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// untilWorks calls f (with a context bounded by twice RequestsTimeout)
// until it returns no error, for up to restartRecoveryBound after Redis
// was back, and fails the test if it never does. It returns a line to log:
// when the call worked, and what the failed attempts returned.
//
// A failed first attempt is logged, not failed: after a restart, a
// connection of a client that stayed idle during the outage may still be
// the old, dead one (rueidis notices it on its next use or background
// PING), so a node's first publish can fail with EOF (writes are not
// retried) and the request that waited for it times out.
func untilWorks(t *testing.T, name string, back time.Time, f func(ctx context.Context) (string, error)) string {
	t.Helper()
	var failures []string
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*restartRequestsTimeout)
		start := time.Now()
		info, err := f(ctx)
		took := time.Since(start)
		cancel()
		if err == nil {
			line := fmt.Sprintf("after recovery: %s worked at +%v after Redis was back (attempt %d, %v): %s",
				name, time.Since(back).Round(time.Millisecond), attempt, took.Round(time.Millisecond), info)
			if len(failures) > 0 {
				line += "; NOTE earlier attempts failed: " + strings.Join(failures, "; ")
			}
			return line
		}
		failures = append(failures, fmt.Sprintf("#%d at +%v took %v: %v", attempt, start.Sub(back).Round(time.Millisecond), took.Round(time.Millisecond), err))
		if time.Since(back) > restartRecoveryBound {
			t.Errorf("after recovery: %s still failing %v after Redis was back: %s", name, restartRecoveryBound, strings.Join(failures, "; "))
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitServerCount polls a.ServerCount until it is want.
func waitServerCount(a adapter.Adapter, want int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var n int
	var err error
	ok := pollUntil(timeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err = a.ServerCount(ctx)
		return err == nil && n == want
	})
	if !ok {
		return time.Since(start), fmt.Errorf("ServerCount = %d, %v; want %d", n, err, want)
	}
	return time.Since(start), nil
}

func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(restartPollStep)
	}
	return true
}

// seqOf returns N of an event ["seq", N].
func seqOf(p parser.Packet) (int, bool) {
	if name, _ := p.EventName(); name != restartEvent {
		return 0, false
	}
	parts, err := parser.SplitArray(p.Data)
	if err != nil || len(parts) < 2 {
		return 0, false
	}
	var n int
	if json.Unmarshal(parts[1], &n) != nil {
		return 0, false
	}
	return n, true
}

func socketSeqs(s *adaptertest.Socket) []int {
	var out []int
	for _, r := range s.Received() {
		if n, ok := seqOf(r.Packet); ok {
			out = append(out, n)
		}
	}
	return out
}

// checkOrdered checks that seqs is strictly increasing: no duplicate, no
// reordering.
func checkOrdered(t *testing.T, who string, seqs []int) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Errorf("%s: event #%d after #%d (index %d): duplicated or reordered", who, seqs[i], seqs[i-1], i)
			return
		}
	}
}

func missing(sends []sendRecord, got []int) []int {
	have := make(map[int]bool, len(got))
	for _, n := range got {
		have[n] = true
	}
	var out []int
	for _, s := range sends {
		if !have[s.seq] {
			out = append(out, s.seq)
		}
	}
	return out
}

// ranges formats sorted numbers as "[1-5 8 10-12]".
func ranges(ns []int) string {
	if len(ns) == 0 {
		return "[]"
	}
	ns = slices.Clone(ns)
	sort.Ints(ns)
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(ns[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ns[i], ns[j]))
		}
		i = j + 1
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// logRecorder is a slog.Handler that keeps what the adapters log.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	msgs  []string
	attrs []slog.Attr
	root  *logRecorder
}

func (l *logRecorder) rootOf() *logRecorder {
	if l.root != nil {
		return l.root
	}
	return l
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", rec.Time.Format(clock), rec.Level, rec.Message)
	for _, a := range l.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	root := l.rootOf()
	root.mu.Lock()
	root.lines = append(root.lines, b.String())
	root.msgs = append(root.msgs, rec.Level.String()+" "+rec.Message)
	root.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{attrs: append(slices.Clone(l.attrs), as...), root: l.rootOf()}
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

func (l *logRecorder) snapshot() []string {
	root := l.rootOf()
	root.mu.Lock()
	defer root.mu.Unlock()
	return slices.Clone(root.lines)
}

// summary counts the logged messages by text.
func (l *logRecorder) summary() string {
	root := l.rootOf()
	root.mu.Lock()
	counts := map[string]int{}
	for _, msg := range root.msgs {
		counts[msg]++
	}
	root.mu.Unlock()
	if len(counts) == 0 {
		return "nothing"
	}
	var parts []string
	for m, n := range counts {
		parts = append(parts, fmt.Sprintf("%dx %q", n, m))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// dump returns the last lines logged.
func (l *logRecorder) dump() string {
	lines := l.snapshot()
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}
