package herald

import (
	"runtime"
	"testing"
)

func TestSameFunc(t *testing.T) {
	n := 0
	f := func(*Event) { n++ }
	g := func(*Event) { n++ } // same code, another closure
	copyOfF := f
	if !sameFunc(f, copyOfF) || !sameFunc(nil, nil) {
		t.Fatal("a func value differs from its copy")
	}
	if sameFunc(f, g) || sameFunc(f, nil) {
		t.Fatal("different closures compare equal")
	}
}

func TestHandlerTables(t *testing.T) {
	var tables handlerTables
	func() {
		// More distinct sets than are kept: each gets an equal copy.
		for i := range 3 * maxHandlerTables {
			fn := func(*Event) { _ = i }
			hs := []handler{{"a", fn}}
			if got := tables.intern(hs); !sameHandlers(got, hs) {
				t.Fatalf("intern returned %v for %v", got, hs)
			}
		}
		// An equal set is shared.
		first := tables.intern([]handler{{"a", nil}, {"b", nil}})
		if again := tables.intern([]handler{{"a", nil}, {"b", nil}}); &again[0] != &first[0] {
			t.Fatal("an equal handler set was not shared")
		}
	}()
	// Sets that no socket uses any more are not kept alive.
	for range 3 {
		runtime.GC()
	}
	for i, e := range tables.tables {
		if e.first.Value() != nil {
			t.Errorf("table %d is still alive with no user", i)
		}
	}
}
