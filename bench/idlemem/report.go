package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// stat is the median, minimum and maximum of one figure over the good runs.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// MarshalJSON writes null for a figure no run produced (JSON has no NaN).
func (s stat) MarshalJSON() ([]byte, error) {
	if s.N == 0 {
		return []byte("null"), nil
	}
	type plain stat
	return json.Marshal(plain(s))
}

func newStat(xs []float64) stat {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
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

type targetSummary struct {
	Target         string `json:"target"`
	Runs           int    `json:"runs"`
	Failed         int    `json:"failed_runs"`
	RSS0MB         stat   `json:"rss0_mb"`
	RSSNMB         stat   `json:"rssN_mb"`
	KBPerConn      stat   `json:"kb_per_conn"`
	KBPerConnGC    stat   `json:"kb_per_conn_after_gc"`
	HeapKBPerConn  stat   `json:"heap_kb_per_conn"`
	GoStacksMB     stat   `json:"go_stacks_mb"`
	Goroutines     stat   `json:"goroutines"`
	SlabKBPerConn  stat   `json:"slab_kb_per_conn"`
	ConnectS       stat   `json:"connect_s"`
	ClientKBPerCon stat   `json:"client_rss_kb_per_conn"`
}

// sumTargets orders targets as given on the command line.
func summarize(o *options, all []*measurement) []targetSummary {
	var out []targetSummary
	for _, t := range o.targets {
		s := targetSummary{Target: t}
		var rss0, rssN, kb, kbgc, heap, stacks, gor, slab, conn, client []float64
		for _, m := range all {
			if m.Target != t {
				continue
			}
			s.Runs++
			if m.Error != "" {
				s.Failed++
				continue
			}
			rss0 = append(rss0, float64(m.RSS0KB)/1024)
			rssN = append(rssN, float64(m.RSSNKB)/1024)
			kb = append(kb, m.KBPerConn)
			kbgc = append(kbgc, nanIfZero(m.KBPerConnGC, m.RSSNGCKB))
			heap = append(heap, nanIfZero(m.HeapKBPerConn, m.HeapNKB))
			stacks = append(stacks, nanIfZero(float64(m.GoStacksMB), int64(len(m.GoGCLine))))
			gor = append(gor, nanIfZero(float64(m.Goroutines), int64(m.Goroutines)))
			slab = append(slab, m.SlabKBPerConn)
			conn = append(conn, m.ConnectS)
			client = append(client, float64(m.ClientRSSKB)/float64(m.N))
		}
		s.RSS0MB, s.RSSNMB, s.KBPerConn = newStat(rss0), newStat(rssN), newStat(kb)
		s.KBPerConnGC, s.HeapKBPerConn, s.GoStacksMB = newStat(kbgc), newStat(heap), newStat(stacks)
		s.Goroutines, s.SlabKBPerConn, s.ConnectS = newStat(gor), newStat(slab), newStat(conn)
		s.ClientKBPerCon = newStat(client)
		out = append(out, s)
	}
	return out
}

// nanIfZero marks a figure as missing when the reading it comes from is absent.
func nanIfZero(v float64, reading int64) float64 {
	if reading == 0 {
		return math.NaN()
	}
	return v
}

func f1(s stat) string {
	if s.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", s.Median)
}

func f2range(s stat) string {
	if s.N == 0 {
		return "n/a"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.2f", s.Median)
	}
	return fmt.Sprintf("**%.2f** (%.2f–%.2f)", s.Median, s.Min, s.Max)
}

func f0(s stat) string {
	if s.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", s.Median)
}

func f2(s stat) string {
	if s.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", s.Median)
}

func markdown(o *options, env environment, sum []targetSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Idle memory per WebSocket connection, N = %d (median of %d runs)\n\n", o.n, o.runs)
	fmt.Fprintf(&b, "%s · %d × %s · %s · kernel %s · %s · node %s (engine.io %s, socket.io %s, ws %s) · commit %s · RLIMIT_NOFILE %s · load %s → %s\n\n",
		env.Date, env.NProc, env.CPUModel, env.MemTotal, env.Kernel, env.Go, orNA(env.Node), orNA(env.EngineIO), orNA(env.SocketIO), orNA(env.WS),
		env.Commit, env.NoFile, env.LoadStart, env.LoadEnd)
	b.WriteString("| Target | runs ok | RSS @0 (MB) | RSS @N (MB) | **RSS/conn (KB)** (min–max) | RSS/conn after GC (KB) | heap/conn (KB) | Go stacks @N (MB) | goroutines @N | kernel slab/conn, both ends (KB) | connect phase (s) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sum {
		fmt.Fprintf(&b, "| %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			s.Target, s.Runs-s.Failed, s.Runs, f1(s.RSS0MB), f1(s.RSSNMB), f2range(s.KBPerConn), f2(s.KBPerConnGC),
			f2(s.HeapKBPerConn), goOnly(s.Target, f1(s.GoStacksMB)), goOnly(s.Target, f0(s.Goroutines)), f2(s.SlabKBPerConn), f2(s.ConnectS))
	}
	// Ratios to the Node peer of the same protocol.
	byName := map[string]targetSummary{}
	for _, s := range sum {
		byName[s.Target] = s
	}
	var ratios []string
	for _, mode := range []string{"eio", "sio"} {
		h, okH := byName["herald-"+mode]
		n, okN := byName["node-"+mode]
		if okH && okN && h.KBPerConn.N > 0 && n.KBPerConn.N > 0 && h.KBPerConn.Median > 0 {
			ratios = append(ratios, fmt.Sprintf("%s: Node/Herald = %.2f×", mode, n.KBPerConn.Median/h.KBPerConn.Median))
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintf(&b, "\nRSS/conn ratio, %s.\n", strings.Join(ratios, "; "))
	}
	fmt.Fprintf(&b, "\nCommand: `%s`\n", env.Command)
	return b.String()
}

func goOnly(target, v string) string {
	if strings.HasPrefix(target, "herald-") {
		return v
	}
	return "—"
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}
