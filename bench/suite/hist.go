package main

import (
	"math/bits"
	"sync/atomic"
)

// histBuckets covers 0 µs .. ~2^30 µs (≈ 18 min) with 64 sub-buckets per
// power of two (≈ 1.6% resolution).
const histBuckets = 24*64 + 128

// hist is a lock-free latency histogram in microseconds. Many reader
// goroutines record into it at once.
type hist struct {
	b [histBuckets]atomic.Uint64
}

func bucketOf(us uint64) int {
	if us < 128 {
		return int(us)
	}
	e := bits.Len64(us) - 7
	i := e*64 + int(us>>e)
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketValue is the lower bound (µs) of bucket i.
func bucketValue(i int) uint64 {
	if i < 128 {
		return uint64(i)
	}
	e := i/64 - 1
	return uint64(i-e*64) << e
}

func (h *hist) record(us int64) {
	if us < 0 {
		us = 0
	}
	h.b[bucketOf(uint64(us))].Add(1)
}

// snapshot returns the counts as a sparse map (bucket -> count), the form
// children send to the orchestrator.
func (h *hist) snapshot() map[int]uint64 {
	out := map[int]uint64{}
	for i := range h.b {
		if v := h.b[i].Load(); v > 0 {
			out[i] = v
		}
	}
	return out
}

func (h *hist) reset() {
	for i := range h.b {
		h.b[i].Store(0)
	}
}

// sparseHist is a merged histogram on the orchestrator side.
type sparseHist map[int]uint64

func (s sparseHist) merge(o map[int]uint64) {
	for k, v := range o {
		s[k] += v
	}
}

func (s sparseHist) count() uint64 {
	var n uint64
	for _, v := range s {
		n += v
	}
	return n
}

// quantileMs returns the q-quantile in milliseconds (NaN-free: 0 when empty).
func (s sparseHist) quantileMs(q float64) float64 {
	n := s.count()
	if n == 0 {
		return 0
	}
	rank := uint64(q * float64(n-1))
	var seen uint64
	for i := 0; i < histBuckets; i++ {
		seen += s[i]
		if seen > rank {
			return float64(bucketValue(i)) / 1000
		}
	}
	return float64(bucketValue(histBuckets-1)) / 1000
}
