package adapter

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNextOffset checks that offsets are unique and increase as (time,
// sequence) pairs, within a millisecond and when the clock goes back.
func TestNextOffset(t *testing.T) {
	m := &Memory{}
	base := time.UnixMilli(1_767_225_600_000)
	times := []time.Time{
		base, base, base.Add(100 * time.Microsecond), base.Add(-5 * time.Millisecond),
		base.Add(time.Millisecond), base.Add(time.Millisecond), base.Add(time.Second),
	}
	for range 12 {
		times = append(times, base.Add(time.Second))
	}
	type key struct{ ms, seq int64 }
	var prev key
	seen := map[string]bool{}
	for i, now := range times {
		off := m.nextOffsetLocked(now)
		if seen[off] {
			t.Fatalf("offset %q given twice", off)
		}
		seen[off] = true
		msPart, seqPart, ok := strings.Cut(off, ".")
		if !ok {
			t.Fatalf("offset %q has no sequence part", off)
		}
		ms, err1 := strconv.ParseInt(msPart, 36, 64)
		seq, err2 := strconv.ParseInt(seqPart, 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("offset %q: %v %v", off, err1, err2)
		}
		k := key{ms, seq}
		if i > 0 && (k.ms < prev.ms || k.ms == prev.ms && k.seq <= prev.seq) {
			t.Errorf("offset %d %q = %v does not follow %v", i, off, k, prev)
		}
		if now.UnixMilli() > prev.ms && k != (key{now.UnixMilli(), 0}) {
			t.Errorf("offset %d %q = %v, want a new millisecond %d with sequence 0", i, off, k, now.UnixMilli())
		}
		prev = k
	}
}
