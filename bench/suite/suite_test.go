package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	for _, us := range []uint64{0, 1, 127, 128, 129, 1000, 4095, 1 << 20, 123456789} {
		i := bucketOf(us)
		lo := bucketValue(i)
		if lo > us {
			t.Errorf("bucket %d of %d µs starts at %d, above the value", i, us, lo)
		}
		if us >= 128 && float64(us-lo) > float64(us)/64+1 {
			t.Errorf("bucket %d of %d µs starts at %d: more than 1/64 below", i, us, lo)
		}
		if i+1 < histBuckets && bucketValue(i+1) <= us {
			t.Errorf("next bucket %d starts at %d, not above %d", i+1, bucketValue(i+1), us)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h hist
	for v := int64(1); v <= 100; v++ {
		h.record(v * 1000) // 1..100 ms
	}
	s := sparseHist{}
	s.merge(h.snapshot())
	tests := []struct {
		q      float64
		wantMs float64
	}{{0.5, 50}, {0.99, 99}, {0, 1}}
	for _, tc := range tests {
		got := s.quantileMs(tc.q)
		if math.Abs(got-tc.wantMs) > tc.wantMs/50 {
			t.Errorf("q%.2f = %.3f ms, want ≈ %.0f", tc.q, got, tc.wantMs)
		}
	}
	if got := (sparseHist{}).quantileMs(0.5); got != 0 {
		t.Errorf("empty histogram: %v, want 0", got)
	}
}

func TestPayloadTime(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{`42["news",{"t":1763840000123456789,"p":"xx"}]`, 1763840000123456789},
		{`431[{"t":42,"p":""}]`, 42},
		{`42["auth",{}]`, 0},
	}
	for _, tc := range tests {
		if got := payloadTime([]byte(tc.in)); got != tc.want {
			t.Errorf("payloadTime(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestNewStat(t *testing.T) {
	s := newStat([]float64{5, 1, math.NaN(), 3, 9})
	if s.Median != 4 || s.Min != 1 || s.Max != 9 || s.N != 4 {
		t.Errorf("newStat = %+v, want median 4, 1..9, n 4", s)
	}
	if e := newStat(nil); !math.IsNaN(e.Median) || e.N != 0 {
		t.Errorf("empty stat = %+v", e)
	}
}

// TestReport builds a report from made-up figures: the advantage direction,
// the goals, the --quick verdict and the files.
func TestReport(t *testing.T) {
	r := &report{Results: map[string]*scenarioResult{
		"s2": {Runs: map[string][]metrics{
			"herald": {{"s2a_cpu_us": 10, "s2b_rate": 100000, "s2_steal_pct": 2, "s3_echo_sendlate_p99_10k": 1}},
			"node":   {{"s2a_cpu_us": 20, "s2b_rate": 50000, "s2_steal_pct": 4, "s3_echo_sendlate_p99_10k": 2}},
		}},
		"s6": {Runs: map[string][]metrics{
			"herald": {{"s6_hs_rate": 1000, "s5_msgs_per_cpu_s": 10}},
			"node":   {{"s6_hs_rate": 2000}},
		}},
		"s3": {Curves: map[string]map[string][][]curvePoint{
			"herald": {"echo": {{{Rate: 1000, P99: 1}, {Rate: 5000, P99: 3}}}},
			"node":   {"echo": {{{Rate: 1000, P99: 2}, {Rate: 5000, P99: 40}}}},
		}},
	}}
	o := &options{quick: true, name: "test", outDir: t.TempDir()}
	r.build(o)
	adv := map[string]float64{}
	for _, x := range r.Rows {
		adv[x.Key] = x.Advantage
	}
	if adv["s2a_cpu_us"] != 2 || adv["s2b_rate"] != 2 || adv["s6_hs_rate"] != 0.5 {
		t.Errorf("advantages %v, want s2a 2 (lower is better), s2b 2, s6 0.5", adv)
	}
	for _, k := range []string{"s2_steal_pct", "s3_echo_sendlate_p99_10k"} {
		if a, ok := adv[k]; !ok || !math.IsNaN(a) {
			t.Errorf("%s (the host's or the load generator's): ratio %v (present %v), want a row without a ratio", k, a, ok)
		}
	}
	slower := strings.Join(r.slower(), " ")
	if !strings.Contains(slower, "s6_hs_rate") || strings.Contains(slower, "s2") || strings.Contains(slower, "s5") {
		t.Errorf("slower() = %q, want only s6_hs_rate (s5 has no Node figure)", slower)
	}
	met := map[string]string{}
	for _, g := range r.Goals {
		met[g.Goal] = g.Met
	}
	if m := met["S2a CPU per delivered message ≤ 2/3 of Node's (single-frame fan-out)"]; m != "met" {
		t.Errorf("S2a goal: %q, want met", m)
	}
	if m := met["S2b ≥ 5× Node's deliveries/s when writes coalesce"]; m != "not met" {
		t.Errorf("S2b goal: %q, want not met", m)
	}
	if err := r.write(o); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".json", ".md", ".png"} {
		fi, err := os.Stat(filepath.Join(o.outDir, "test"+ext))
		if err != nil || fi.Size() == 0 {
			t.Errorf("report file %s: %v", ext, err)
		}
	}
}

func TestParseBenchOutput(t *testing.T) {
	out := "goos: linux\n" +
		"BenchmarkBroadcast/n=1000-2   	    2000	    812345 ns/op	       812.3 ns/delivery	     120 B/op	       3 allocs/op\n" +
		"BenchmarkEncode-2   	  200	  55.5 ns/op	  0 B/op	  0 allocs/op\n" +
		"PASS\n"
	got := parseBenchOutput(out)
	want := []allocResult{
		{Name: "BenchmarkBroadcast/n=1000-2", NsPerOp: 812345, BytesPerOp: 120, AllocsPerOp: 3},
		{Name: "BenchmarkEncode-2", NsPerOp: 55.5},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestCPUBusy checks the quiet-machine gate's measure: a share in [0, 1],
// which rises while this process keeps a CPU busy.
func TestCPUBusy(t *testing.T) {
	ctx := context.Background()
	idle, err := cpuBusy(ctx, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() { // one CPU busy
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	busy, err := cpuBusy(ctx, 500*time.Millisecond)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if idle < 0 || idle > 1 || busy < 0 || busy > 1 {
		t.Fatalf("shares out of range: idle %v, busy %v", idle, busy)
	}
	// One spinning goroutine is at least 1/NumCPU of the machine, less
	// what the measurement's own timing loses.
	if min := 0.8 / float64(runtime.NumCPU()); busy < min {
		t.Errorf("busy share %.2f with one CPU spinning, want ≥ %.2f", busy, min)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cpuBusy(ctx2, time.Second); err == nil {
		t.Error("cpuBusy with a cancelled context: no error")
	}
}

// readCPUTimes parses /proc/stat: steal is part of busy, busy of the total.
func TestReadCPUTimes(t *testing.T) {
	c, err := readCPUTimes()
	if err != nil {
		t.Skipf("no /proc/stat: %v", err)
	}
	if c.total == 0 || c.busy > c.total || c.steal > c.busy {
		t.Fatalf("cpu times %+v: want 0 < total, steal ≤ busy ≤ total", c)
	}
	later := cpuTimes{busy: c.busy + 30, steal: c.steal + 10, total: c.total + 100}
	if got := stealShare(c, later); got != 0.1 {
		t.Errorf("stealShare = %v, want 0.1", got)
	}
	if got := stealShare(later, c); got != 0 {
		t.Errorf("stealShare backwards = %v, want 0", got)
	}
}

func TestParseCommandStats(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]int64
	}{
		{"empty", "", map[string]int64{}},
		{"header only", "# Commandstats\r\n", map[string]int64{}},
		{"redis 7", "# Commandstats\r\n" +
			"cmdstat_ping:calls=198,usec=120,usec_per_call=0.61,rejected_calls=0,failed_calls=0\r\n" +
			"cmdstat_publish:calls=150,usec=900,usec_per_call=6.00,rejected_calls=0,failed_calls=0\r\n" +
			"cmdstat_client|setinfo:calls=12,usec=10,usec_per_call=0.83,rejected_calls=0,failed_calls=0\r\n" +
			"cmdstat_info:calls=1,usec=38,usec_per_call=38.00,rejected_calls=0,failed_calls=0\r\n",
			map[string]int64{"ping": 198, "publish": 150, "client|setinfo": 12, "info": 1}},
		{"older redis, LF only", "cmdstat_spublish:calls=7,usec=70,usec_per_call=10.00\ncmdstat_ssubscribe:calls=3,usec=9,usec_per_call=3.00\n",
			map[string]int64{"spublish": 7, "ssubscribe": 3}},
		{"calls not first", "cmdstat_get:usec=5,calls=2\r\n", map[string]int64{"get": 2}},
		{"malformed lines skipped", "cmdstat_:calls=1\r\ncmdstat_set\r\ncmdstat_del:calls=x,usec=1\r\ncmdstat_hset:usec=1\r\nkeyspace_hits:4\r\ncmdstat_get:calls=5\r\n",
			map[string]int64{"get": 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := parseCommandStats(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: got %d, want %d (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestCommandDelta(t *testing.T) {
	before := map[string]int64{"ping": 10, "publish": 5, "info": 2}
	after := map[string]int64{"ping": 12, "publish": 105, "spublish": 3, "info": 3, "ssubscribe": 1}
	all, pub := commandDelta(before, after, 1)
	if pub != 103 {
		t.Errorf("publish: got %d, want 103", pub)
	}
	if all != 2+100+3+1 {
		t.Errorf("all: got %d, want %d", all, 2+100+3+1)
	}
	if got := topCommands(before, after, 1); got != "publish 100, spublish 3, ping 2, ssubscribe 1" {
		t.Errorf("topCommands: %q", got)
	}
}

func TestRedisCommandStatsExchange(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const req = "*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n"
	body := "# Commandstats\r\ncmdstat_publish:calls=4,usec=1,usec_per_call=0.25\r\n"
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for range 2 { // two requests on one connection
			buf := make([]byte, len(req))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != req {
				return
			}
			fmt.Fprintf(c, "$%d\r\n%s\r\n", len(body), body)
		}
	}()
	rc, err := dialRedis(&redisServer{url: "redis://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for i := 0; i < 2; i++ {
		got, err := rc.commandStats()
		if err != nil {
			t.Fatal(err)
		}
		if got["publish"] != 4 || len(got) != 1 {
			t.Errorf("request %d: got %v", i, got)
		}
	}
}

// TestTimerPump: the pump wakes (its timerfd reaches Go's poller) and stop
// ends it.
func TestTimerPump(t *testing.T) {
	before := runtime.NumGoroutine()
	t0 := timerPumpTicks.Load()
	stop, err := startTimerPump(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for timerPumpTicks.Load()-t0 < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the pump did not wake")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	t1 := timerPumpTicks.Load()
	time.Sleep(20 * time.Millisecond)
	if timerPumpTicks.Load() != t1 {
		t.Error("the pump still runs after stop")
	}
	// The pump's goroutine may still be finishing its return after stop.
	for n := runtime.NumGoroutine(); n > before; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after stop, %d before", n, before)
		}
		time.Sleep(time.Millisecond)
	}
}
