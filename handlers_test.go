package herald

import "testing"

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

func TestHandlerTablesBounded(t *testing.T) {
	var tables handlerTables
	for i := range 3 * maxHandlerTables {
		fn := func(*Event) { _ = i }
		hs := []handler{{"a", fn}}
		if got := tables.intern(hs); !sameHandlers(got, hs) {
			t.Fatalf("intern returned %v for %v", got, hs)
		}
	}
	if len(tables.tables) != maxHandlerTables {
		t.Fatalf("%d tables kept, want %d", len(tables.tables), maxHandlerTables)
	}
	hs := []handler{{"a", nil}, {"b", nil}}
	first := tables.intern(hs)
	if again := tables.intern([]handler{{"a", nil}, {"b", nil}}); &again[0] != &first[0] {
		t.Fatal("an equal handler set was not shared")
	}
}
