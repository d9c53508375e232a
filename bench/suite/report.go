package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-rt/herald/bench/internal/child"
)

// metricDef describes one figure of the table.
type metricDef struct {
	key, label, unit string
	higherBetter     bool
	primary          bool // --quick fails if Herald is worse than Node here
}

var metricDefs = []metricDef{
	{"s1_rss_kb_1k", "S1 RSS per idle connection, 1k conns", "KB", false, true},
	{"s1_rss_kb_10k", "S1 RSS per idle connection, 10k conns", "KB", false, true},
	{"s1_rss_kb_19k", "S1 RSS per idle connection, 19k conns", "KB", false, false},
	{"s2a_cpu_us", "S2a fan-out, 1 frame/recipient: server CPU per delivery", "µs", false, true},
	{"s2a_rate", "S2a fan-out, 1 frame/recipient: deliveries/s", "/s", true, false},
	{"s2a_p50", "S2a delivery latency p50", "ms", false, false},
	{"s2a_p99", "S2a delivery latency p99", "ms", false, false},
	{"s2a_p999", "S2a delivery latency p999", "ms", false, false},
	{"s2b_rate", "S2b fan-out, high rate (coalescing): deliveries/s", "/s", true, true},
	{"s2b_cpu_us", "S2b server CPU per delivery", "µs", false, false},
	{"s2b_p99", "S2b delivery latency p99", "ms", false, false},
	{"s2b_loss", "S2b messages not delivered by the end of the window", "", false, false},
	{"s2_rss_growth_mb", "S2 server RSS growth during the bursts", "MB", false, false},
	{"s3_echo_max_rate", "S3 echo: highest rate with p99 ≤ 10 ms", "msg/s", true, true},
	{"s3_echo_p50_1k", "S3 echo p50 at 1k msg/s", "ms", false, false},
	{"s3_echo_p99_5k", "S3 echo p99 at 5k msg/s", "ms", false, false},
	{"s3_echo_p99_10k", "S3 echo p99 at 10k msg/s", "ms", false, false},
	{"s3_echo_cpu_us", "S3 echo server CPU per echo at 1k msg/s", "µs", false, false},
	{"s3_ack_max_rate", "S3 ack: highest rate with p99 ≤ 10 ms", "msg/s", true, false},
	{"s3_ack_p99_5k", "S3 ack p99 at 5k msg/s", "ms", false, false},
	{"s3_ack_p99_10k", "S3 ack p99 at 10k msg/s", "ms", false, false},
	{"s3_echo_sendlate_p99_10k", "S3 echo at 10k msg/s: load generator's sends late against their schedule, p99 (informational)", "ms", false, false},
	{"s3_ack_sendlate_p99_10k", "S3 ack at 10k msg/s: load generator's sends late against their schedule, p99 (informational)", "ms", false, false},
	{"s4c_rate", "S4 classic Redis, 3 nodes: deliveries/s at high rate", "/s", true, true},
	{"s4c_bcast_rate", "S4 classic: broadcasts/s delivered to every client", "/s", true, false},
	{"s4c_p50", "S4 classic: latency p50 at low rate", "ms", false, false},
	{"s4c_p99", "S4 classic: latency p99 at low rate", "ms", false, false},
	{"s4c_probe_p50", "S4 classic: latency p50 to a 30-socket room on the other nodes", "ms", false, false},
	{"s4c_hop_p50", "S4 classic: Redis hop p50 (other nodes − publisher's node)", "ms", false, false},
	{"s4c_hop_p99", "S4 classic: Redis hop p99 (other nodes − publisher's node)", "ms", false, false},
	{"s4c_cpu_us", "S4 classic: CPU of the 3 nodes per delivery", "µs", false, false},
	{"s4c_redis_cpu_us", "S4 classic: Redis CPU per broadcast relayed, idle baseline subtracted", "µs", false, false},
	{"s4c_redis_cpu_raw_us", "S4 classic: Redis CPU per broadcast, raw (idle cost included)", "µs", false, false},
	{"s4c_redis_idle_cpu_ms_per_s", "S4 classic: Redis CPU idle, nodes and clients connected (informational)", "ms/s", false, false},
	{"s4c_redis_publish_per_bcast", "S4 classic: Redis PUBLISH + SPUBLISH per broadcast (informational)", "", false, false},
	{"s4c_redis_cmds_per_bcast", "S4 classic: Redis commands per broadcast, keep-alives included (informational)", "", false, false},
	{"s4s_rate", "S4 sharded Redis, 3 nodes: deliveries/s at high rate", "/s", true, true},
	{"s4s_bcast_rate", "S4 sharded: broadcasts/s delivered to every client", "/s", true, false},
	{"s4s_p50", "S4 sharded: latency p50 at low rate", "ms", false, false},
	{"s4s_p99", "S4 sharded: latency p99 at low rate", "ms", false, false},
	{"s4s_probe_p50", "S4 sharded: latency p50 to a 30-socket room on the other nodes", "ms", false, false},
	{"s4s_hop_p50", "S4 sharded: Redis hop p50 (other nodes − publisher's node)", "ms", false, false},
	{"s4s_hop_p99", "S4 sharded: Redis hop p99 (other nodes − publisher's node)", "ms", false, false},
	{"s4s_cpu_us", "S4 sharded: CPU of the 3 nodes per delivery", "µs", false, false},
	{"s4s_redis_cpu_us", "S4 sharded: Redis CPU per broadcast relayed, idle baseline subtracted", "µs", false, false},
	{"s4s_redis_cpu_raw_us", "S4 sharded: Redis CPU per broadcast, raw (idle cost included)", "µs", false, false},
	{"s4s_redis_idle_cpu_ms_per_s", "S4 sharded: Redis CPU idle, nodes and clients connected (informational)", "ms/s", false, false},
	{"s4s_redis_publish_per_bcast", "S4 sharded: Redis PUBLISH + SPUBLISH per broadcast (informational)", "", false, false},
	{"s4s_redis_cmds_per_bcast", "S4 sharded: Redis commands per broadcast, keep-alives included (informational)", "", false, false},
	{"s5_msgs_per_cpu_s", "S5 long-polling, 10 broadcasts/s: messages per server CPU-second", "/s", true, true},
	{"s5_rate", "S5 long-polling, 10 broadcasts/s: messages/s", "/s", true, false},
	{"s5_p99", "S5 long-polling, 10 broadcasts/s: broadcast latency p99", "ms", false, false},
	{"s5_server_cpu", "S5 long-polling, 10 broadcasts/s: server CPU (cores)", "", false, false},
	{"s5mid_msgs_per_cpu_s", "S5 long-polling, 30 broadcasts/s: messages per server CPU-second", "/s", true, false},
	{"s5mid_rate", "S5 long-polling, 30 broadcasts/s: messages/s", "/s", true, false},
	{"s5mid_p99", "S5 long-polling, 30 broadcasts/s: broadcast latency p99", "ms", false, false},
	{"s5sat_msgs_per_cpu_s", "S5 long-polling, top step, 100 broadcasts/s: messages per server CPU-second", "/s", true, true},
	{"s5sat_rate", "S5 long-polling, top step, 100 broadcasts/s: messages/s", "/s", true, false},
	{"s5sat_p99", "S5 long-polling, top step, 100 broadcasts/s: broadcast latency p99", "ms", false, false},
	{"s5sat_server_cpu", "S5 long-polling, top step, 100 broadcasts/s: server CPU (cores)", "", false, false},
	{"s6_hs_rate", "S6 handshakes/s (connect + CONNECT + close loop)", "/s", true, true},
	{"s6_hs_cpu_us", "S6 server CPU per handshake", "µs", false, false},
	{"s6_hs_p99", "S6 handshake p99", "ms", false, false},
	{"s6_storm_s", "S6 storm: all clients back after restart (from listening)", "s", false, false},
	{"s6_storm_hs_rate", "S6 storm: handshakes/s", "/s", true, false},
	// The host's steal of the VM's CPU time during the runs: a noisy
	// neighbour moves every figure above, so the report shows it. No ratio.
	{"s2_steal_pct", "S2 host CPU steal during the runs (informational)", "%", false, false},
	{"s3_steal_pct", "S3 host CPU steal during the runs (informational)", "%", false, false},
	{"s4_steal_pct", "S4 host CPU steal during the runs (informational)", "%", false, false},
	{"s5_steal_pct", "S5 host CPU steal during the runs (informational)", "%", false, false},
	{"s6_steal_pct", "S6 host CPU steal during the runs (informational)", "%", false, false},
}

// harness reports whether d measures the host or the load generator rather
// than the server: a ratio between the peers' runs would mean nothing.
func (d metricDef) harness() bool {
	return d.unit == "%" || strings.Contains(d.key, "_sendlate_")
}

func defOf(key string) (metricDef, bool) {
	for _, d := range metricDefs {
		if d.key == key {
			return d, true
		}
	}
	return metricDef{}, false
}

// stat is a median with its range over runs.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func newStat(xs []float64) stat {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{Median: med, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

func (s stat) MarshalJSON() ([]byte, error) {
	clean := func(f float64) any {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	}
	return json.Marshal(map[string]any{"median": clean(s.Median), "min": clean(s.Min), "max": clean(s.Max), "n": s.N})
}

// row is one line of the table.
type row struct {
	Key       string  `json:"key"`
	Label     string  `json:"label"`
	Unit      string  `json:"unit"`
	Herald    stat    `json:"herald"`
	Node      stat    `json:"node"`
	Advantage float64 `json:"herald_advantage"` // > 1: Herald better (Node/Herald for lower-is-better)
}

// goal is one goal of issue #6.
type goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      string `json:"met"` // "met", "not met", "not measured"
}

type allocResult struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

type report struct {
	Env        environment                `json:"environment"`
	ElapsedS   float64                    `json:"elapsed_s"`
	Results    map[string]*scenarioResult `json:"scenarios"`
	Rows       []row                      `json:"table"`
	Goals      []goal                     `json:"goals"`
	Allocs     []allocResult              `json:"allocations,omitempty"`
	AllocNote  string                     `json:"allocations_note,omitempty"`
	Forwarding json.RawMessage            `json:"forwarding,omitempty"`
	curves     map[string]map[string][]curvePoint
}

// medians of key for peer over all scenario results.
func (r *report) values(peer, key string) []float64 {
	var out []float64
	for _, sr := range r.Results {
		for _, m := range sr.Runs[peer] {
			if v, ok := m[key]; ok {
				out = append(out, v)
			}
		}
	}
	return out
}

func (r *report) build(o *options) {
	for _, d := range metricDefs {
		h, n := newStat(r.values("herald", d.key)), newStat(r.values("node", d.key))
		if h.N == 0 && n.N == 0 {
			continue
		}
		adv := h.Median / n.Median
		if !d.higherBetter {
			adv = n.Median / h.Median
		}
		if h.Median <= 0 || n.Median <= 0 || d.harness() {
			// A ratio of a figure at or below zero means nothing (S4's
			// Redis CPU with the idle baseline subtracted can be, for a
			// peer that sends Redis little), nor one of the host or the
			// load generator: no ratio.
			adv = math.NaN()
		}
		r.Rows = append(r.Rows, row{Key: d.key, Label: d.label, Unit: d.unit, Herald: h, Node: n, Advantage: adv})
	}
	r.curves = map[string]map[string][]curvePoint{}
	if sr := r.Results["s3"]; sr != nil {
		for peer, vs := range sr.Curves {
			r.curves[peer] = map[string][]curvePoint{}
			for variant, runs := range vs {
				r.curves[peer][variant] = medianCurve(runs)
			}
		}
	}
	r.Goals = r.goals(o)
}

// medianCurve merges the runs of a sweep point by point (median per rate).
func medianCurve(runs [][]curvePoint) []curvePoint {
	byRate := map[float64][]curvePoint{}
	var rates []float64
	for _, run := range runs {
		for _, p := range run {
			if _, ok := byRate[p.Rate]; !ok {
				rates = append(rates, p.Rate)
			}
			byRate[p.Rate] = append(byRate[p.Rate], p)
		}
	}
	slices.Sort(rates)
	var out []curvePoint
	for _, rate := range rates {
		ps := byRate[rate]
		pick := func(f func(curvePoint) float64) float64 {
			var xs []float64
			for _, p := range ps {
				xs = append(xs, f(p))
			}
			return newStat(xs).Median
		}
		out = append(out, curvePoint{Rate: rate,
			P50: pick(func(p curvePoint) float64 { return p.P50 }), P99: pick(func(p curvePoint) float64 { return p.P99 }),
			P999: pick(func(p curvePoint) float64 { return p.P999 }), Loss: pick(func(p curvePoint) float64 { return p.Loss }),
			CPUUs: pick(func(p curvePoint) float64 { return p.CPUUs })})
	}
	return out
}

func (r *report) row(key string) (row, bool) {
	for _, x := range r.Rows {
		if x.Key == key {
			return x, true
		}
	}
	return row{}, false
}

func (r *report) goals(o *options) []goal {
	var gs []goal
	ratioGoal := func(text, key string, want float64) {
		x, ok := r.row(key)
		g := goal{Goal: text, Met: "not measured"}
		if ok && (x.Herald.Median == 0 || x.Node.Median == 0) {
			g.Measured = fmt.Sprintf("ratio undefined: Herald %s, Node %s %s", fmtv(x.Herald.Median), fmtv(x.Node.Median), x.Unit)
		} else if ok && !math.IsNaN(x.Advantage) {
			g.Measured = fmt.Sprintf("%.2f× (Herald %s, Node %s %s)", x.Advantage, fmtv(x.Herald.Median), fmtv(x.Node.Median), x.Unit)
			g.Met = metText(x.Advantage >= want)
		}
		gs = append(gs, g)
	}
	memKey := "s1_rss_kb_10k"
	if _, ok := r.row(memKey); !ok {
		memKey = "s1_rss_kb_1k"
	}
	if x, ok := r.row(memKey); ok {
		gs = append(gs, goal{Goal: "S1 memory per idle connection ≤ 5 KB and ≤ 1/3 of Node's (" + memKey + ")",
			Measured: fmt.Sprintf("Herald %.2f KB, Node %.2f KB: %.2f×", x.Herald.Median, x.Node.Median, x.Advantage),
			Met:      metText(x.Herald.Median <= 5 && x.Advantage >= 3)})
	} else {
		gs = append(gs, goal{Goal: "S1 memory per idle connection ≤ 5 KB and ≤ 1/3 of Node's", Met: "not measured"})
	}
	ratioGoal("S2a CPU per delivered message ≤ 2/3 of Node's (single-frame fan-out)", "s2a_cpu_us", 1.5)
	ratioGoal("S2b ≥ 5× Node's deliveries/s when writes coalesce", "s2b_rate", 5)
	if x, ok := r.row("s3_echo_p99_10k"); ok && !math.IsNaN(x.Herald.Median) {
		gs = append(gs, goal{Goal: "S3 echo p99 ≤ 5 ms at 10k msg/s", Measured: fmt.Sprintf("Herald p99 %.2f ms (Node %s ms)", x.Herald.Median, fmtv(x.Node.Median)), Met: metText(x.Herald.Median <= 5)})
	} else {
		gs = append(gs, goal{Goal: "S3 echo p99 ≤ 5 ms at 10k msg/s", Met: "not measured", Measured: "no 10k msg/s step (saturated earlier or quick sizes)"})
	}
	ratioGoal("S3 ≥ 2.5× Node's highest echo rate at p99 ≤ 10 ms", "s3_echo_max_rate", 2.5)
	ratioGoal("S4 ≥ 3× Node's broadcast rate across 3 nodes over Redis (classic)", "s4c_rate", 3)
	ratioGoal("S4 ≥ 3× Node's broadcast rate across 3 nodes over Redis (sharded)", "s4s_rate", 3)
	if x, ok := r.row("s4c_hop_p50"); ok && !math.IsNaN(x.Herald.Median) {
		gs = append(gs, goal{Goal: "S4 Redis hop ≤ 1 ms p50 (classic)", Measured: fmt.Sprintf("Herald %.2f ms (Node %s ms)", x.Herald.Median, fmtv(x.Node.Median)), Met: metText(x.Herald.Median <= 1)})
	} else {
		gs = append(gs, goal{Goal: "S4 Redis hop ≤ 1 ms p50", Met: "not measured"})
	}
	ratioGoal("S5 ≥ 3× Node's polling messages per CPU-second (10 broadcasts/s: one request per message)", "s5_msgs_per_cpu_s", 3)
	ratioGoal("S5 ≥ 3× Node's polling messages per CPU-second (top step, 100 broadcasts/s: both servers saturated at full size)", "s5sat_msgs_per_cpu_s", 3)
	ratioGoal("S6 ≥ 4× Node's handshakes per second", "s6_hs_rate", 4)
	n := sizesFor(o).s6Storm
	if x, ok := r.row("s6_storm_s"); ok && !math.IsNaN(x.Herald.Median) {
		g := goal{Goal: "S6 9,000 reconnecting clients all back within 2 s",
			Measured: fmt.Sprintf("%d clients: Herald %.2f s, Node %s s", n, x.Herald.Median, fmtv(x.Node.Median)), Met: metText(x.Herald.Median <= 2)}
		if n < 9000 {
			g.Met += " (at quick size)"
		}
		gs = append(gs, g)
	} else {
		gs = append(gs, goal{Goal: "S6 9,000 reconnecting clients all back within 2 s", Met: "not measured"})
	}
	return gs
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// slower lists the primary metrics on which Herald is worse than Node.
func (r *report) slower() []string {
	var out []string
	for _, x := range r.Rows {
		if x.Herald.N == 0 || x.Node.N == 0 || x.Herald.Median == x.Node.Median {
			continue // one peer not run (-peers), or equal (neither reached a sweep's first step)
		}
		if d, _ := defOf(x.Key); d.primary && (math.IsNaN(x.Advantage) || x.Advantage < 1) {
			out = append(out, fmt.Sprintf("%s (%.2f×)", x.Key, x.Advantage))
		}
	}
	for s, sr := range r.Results {
		if sr.Error != "" {
			out = append(out, s+" failed")
		}
	}
	return out
}

func fmtv(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtRange(s stat) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 || s.Min == s.Max {
		return fmtv(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtv(s.Median), fmtv(s.Min), fmtv(s.Max))
}

// table is the plain-text table printed at the end.
func (r *report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-62s %14s %14s %9s\n", "metric", "Herald", "Node", "Herald ×")
	for _, x := range r.Rows {
		fmt.Fprintf(&b, "%-62s %14s %14s %9s\n", x.Label+unitSuffix(x.Unit), fmtv(x.Herald.Median), fmtv(x.Node.Median), fmtAdv(x.Advantage))
	}
	b.WriteString("\nHerald × = how many times better Herald is (Node/Herald when lower is better); < 1: Node is better.\n\nGoals (issue #6):\n")
	for _, g := range r.Goals {
		fmt.Fprintf(&b, "  [%s] %s: %s\n", g.Met, g.Goal, g.Measured)
	}
	return b.String()
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " (" + u + ")"
}

func fmtAdv(a float64) string {
	if math.IsNaN(a) || math.IsInf(a, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a)
}

func (r *report) markdown(o *options, png string) string {
	var b strings.Builder
	e := r.Env
	mode := "full"
	if e.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# Benchmark run %s (%s)\n\n", r.Env.Date, mode)
	fmt.Fprintf(&b, "Command: `%s` (%d run(s) per scenario and peer, median (min–max); %.0f s in all)\n\n", e.Command, e.Runs, r.ElapsedS)
	fmt.Fprintf(&b, "Machine: %d × %s, %s, kernel %s, RLIMIT_NOFILE %s. Load average %s at the start, %s at the end (shared machine: other jobs ran at the same time, so timings are noisy).\n\n",
		e.NProc, e.CPUModel, e.MemTotal, e.Kernel, e.NoFile, e.LoadStart, e.LoadEnd)
	fmt.Fprintf(&b, "Versions: Herald %s, %s; Node %s, socket.io %s, ws %s, @socket.io/redis-adapter %s; %s.\n\n",
		e.Commit, e.Go, e.Node, e.SocketIO, e.WS, e.Adapter, e.Redis)
	b.WriteString("| Metric | Herald | Node | Herald × |\n|---|---|---|---|\n")
	for _, x := range r.Rows {
		fmt.Fprintf(&b, "| %s%s | %s | %s | %s |\n", x.Label, unitSuffix(x.Unit), fmtRange(x.Herald), fmtRange(x.Node), fmtAdv(x.Advantage))
	}
	b.WriteString("\n*Herald ×*: how many times better Herald is (Node ÷ Herald where lower is better); below 1, Node is better.\n\n")
	b.WriteString("## Goals (issue #6)\n\n| Goal | Measured | |\n|---|---|---|\n")
	for _, g := range r.Goals {
		fmt.Fprintf(&b, "| %s | %s | **%s** |\n", g.Goal, g.Measured, g.Met)
	}
	if png != "" {
		fmt.Fprintf(&b, "\n![S3 latency vs rate, and Herald's advantage per scenario](%s)\n\n", png)
		b.WriteString("Left: S3 echo (solid) and ack (thin) p99 latency against the offered rate (log scale, ms); blue Herald, orange Node. Right: Herald × per primary metric (log scale; the grey line is 1×).\n")
	}
	if len(r.curves) > 0 {
		b.WriteString("\n## S3 sweep (medians)\n\n| Peer | Variant | Rate (msg/s) | p50 (ms) | p99 (ms) | p999 (ms) | late/lost | CPU/msg (µs) |\n|---|---|---|---|---|---|---|---|\n")
		for _, peer := range []string{"herald", "node"} {
			for _, v := range []string{"echo", "ack"} {
				for _, p := range r.curves[peer][v] {
					fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %.1f%% | %s |\n", peer, v, p.Rate, fmtv(p.P50), fmtv(p.P99), fmtv(p.P999), 100*p.Loss, fmtv(p.CPUUs))
				}
			}
		}
	}
	if len(r.Allocs) > 0 || r.AllocNote != "" {
		b.WriteString("\n## Allocations (go test -bench -benchmem)\n\n")
		if r.AllocNote != "" {
			b.WriteString(r.AllocNote + "\n\n")
		}
		if len(r.Allocs) > 0 {
			b.WriteString("| Benchmark | ns/op | B/op | allocs/op |\n|---|---|---|---|\n")
			for _, a := range r.Allocs {
				fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f |\n", a.Name, a.NsPerOp, a.BytesPerOp, a.AllocsPerOp)
			}
		}
	}
	if len(r.Forwarding) > 0 {
		var compact bytes.Buffer
		if json.Compact(&compact, r.Forwarding) != nil {
			compact.Write(r.Forwarding)
		}
		fmt.Fprintf(&b, "\n## Polling through forwarding (bench/forwarding)\n\n```json\n%s\n```\n", compact.Bytes())
	}
	var notes []string
	for _, s := range allScenarios {
		if sr := r.Results[s]; sr != nil {
			if sr.Error != "" {
				notes = append(notes, fmt.Sprintf("%s: **failed**: %s", strings.ToUpper(s), sr.Error))
			}
			for _, n := range sr.Notes {
				notes = append(notes, fmt.Sprintf("%s: %s", strings.ToUpper(s), n))
			}
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

func (r *report) write(o *options) error {
	dir := o.outDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(o.root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, o.name)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	png := ""
	if err := writePlot(base+".png", r); err != nil {
		logf("plot: %v", err)
	} else {
		png = o.name + ".png"
	}
	return os.WriteFile(base+".md", []byte(r.markdown(o, png)), 0o644)
}

// MarshalJSON keeps NaN out of the JSON (metrics maps may hold NaN).
func (m metrics) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out[k] = nil
		} else {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

func (p curvePoint) MarshalJSON() ([]byte, error) {
	type plain curvePoint
	c := plain(p)
	for _, f := range []*float64{&c.P50, &c.P99, &c.P999, &c.Loss, &c.CPUUs} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = -1
		}
	}
	return json.Marshal(c)
}

func (x row) MarshalJSON() ([]byte, error) {
	type plain row
	c := plain(x)
	if math.IsNaN(c.Advantage) || math.IsInf(c.Advantage, 0) {
		c.Advantage = 0
	}
	return json.Marshal(c)
}

// ---- allocation benchmarks ----

// benchLine matches a benchmark result line; its metrics ("<value> <unit>"
// pairs, custom ones such as ns/delivery included) are read by unit.
var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+\d+((?:\s+[\d.]+ \S+)+)`)

var benchMetric = regexp.MustCompile(`([\d.]+) (\S+)`)

// allocBenchmarks runs the Go benchmarks of the broadcast path (root
// package and engineio), of a connection's life and a long poll through
// Serve, and of the codecs, with -benchmem.
func allocBenchmarks(ctx context.Context, o *options) []allocResult {
	logf("=== allocations: go test -bench")
	benchtime := "2000x"
	if o.quick {
		benchtime = "200x"
	}
	pkgs := []string{".", "./engineio", "./parser"}
	out, err := child.Run(ctx, o.root, nil, 5*time.Minute, append([]string{"go", "test", "-run", "^$",
		"-bench", "Broadcast|Fanout|FanOut|Emit|Encode|Decode|Handshake|Connect|Send|Frame|Poll|Payload", "-benchmem", "-benchtime", benchtime}, pkgs...)...)
	if err != nil {
		logf("  go test -bench: %v", err)
	}
	return parseBenchOutput(out)
}

// parseBenchOutput reads the result lines of `go test -bench -benchmem`.
func parseBenchOutput(out string) []allocResult {
	var res []allocResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		a := allocResult{Name: m[1]}
		for _, mm := range benchMetric.FindAllStringSubmatch(m[2], -1) {
			v, _ := strconv.ParseFloat(mm[1], 64)
			switch mm[2] {
			case "ns/op":
				a.NsPerOp = v
			case "B/op":
				a.BytesPerOp = v
			case "allocs/op":
				a.AllocsPerOp = v
			}
		}
		res = append(res, a)
	}
	return res
}

// forwarding runs bench/forwarding (another engineer's program: polling
// throughput sticky vs round-robin through forwarding) if it exists, and
// keeps its JSON line.
func forwarding(ctx context.Context, o *options) json.RawMessage {
	argv := strings.Fields(o.forwardCmd)
	if len(argv) == 0 {
		if _, err := os.Stat(filepath.Join(o.root, "bench/forwarding")); err != nil {
			return nil
		}
		argv = []string{"go", "run", "./bench/forwarding"}
	}
	logf("=== forwarding: %s", strings.Join(argv, " "))
	env := []string{}
	if o.quick {
		env = append(env, "HERALD_BENCH_QUICK=1")
	}
	timeout := 15 * time.Minute
	if o.quick {
		timeout = time.Minute
	}
	out, err := child.Run(ctx, o.root, env, timeout, argv...)
	if err != nil {
		logf("  forwarding: %v", err)
		b, _ := json.Marshal(map[string]string{"error": child.LastLines(err.Error(), 5)})
		return b
	}
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "{") && json.Valid([]byte(l)) {
			return json.RawMessage(l)
		}
	}
	b, _ := json.Marshal(map[string]string{"error": "no JSON line in the output"})
	return b
}
