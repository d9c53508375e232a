package herald

import (
	"slices"
	"strings"
	"sync"
	"unsafe"
	"weak"
)

// handler is one event handler of a socket.
type handler struct {
	event string
	fn    func(*Event)
}

// handlerTables lets the sockets of a namespace share their handler slices.
// Applications usually give every socket the same handlers; when they are
// the same func values (handlers that find their socket with Event.Socket
// instead of capturing it), every socket can use one immutable slice
// instead of a copy of its own (288 B for 12 handlers).
type handlerTables struct {
	mu     sync.Mutex
	tables [maxHandlerTables]sharedTable
	next   int // the entry to replace when every entry is in use
}

// maxHandlerTables bounds the tables a namespace looks for: a few distinct
// handler sets are common.
const maxHandlerTables = 8

// sharedTable is a kept handler slice, held weakly: it lives only as long
// as a socket uses it, so the namespace keeps no closed socket's handlers
// (nor what they capture) alive.
type sharedTable struct {
	first weak.Pointer[handler]
	n     int
}

// intern returns an immutable slice equal to hs: a kept one, or a new
// exact-size copy that is kept for the next sockets.
func (t *handlerTables) intern(hs []handler) []handler {
	t.mu.Lock()
	defer t.mu.Unlock()
	free := -1
	for i, e := range t.tables {
		p := e.first.Value()
		if p == nil {
			if free < 0 {
				free = i
			}
			continue
		}
		if kept := unsafe.Slice(p, e.n); sameHandlers(kept, hs) {
			return kept
		}
	}
	kept := slices.Clone(hs)
	if free < 0 {
		free = t.next
		t.next = (t.next + 1) % maxHandlerTables
	}
	t.tables[free] = sharedTable{first: weak.Make(&kept[0]), n: len(kept)}
	return kept
}

func sameHandlers(a, b []handler) bool {
	return slices.EqualFunc(a, b, func(x, y handler) bool {
		return x.event == y.event && sameFunc(x.fn, y.fn)
	})
}

// sameFunc reports whether f and g are the same func value. Go cannot
// compare func values, but a func value is a pointer to its closure (or to
// a static one for a plain function): equal pointers mean the very same
// closure, so calling either does the same thing. Equivalent closures made
// separately compare unequal, which only means they are not shared.
func sameFunc(f, g func(*Event)) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&f)) == *(*unsafe.Pointer)(unsafe.Pointer(&g))
}

// setHandlerLocked sets the handler of event, copying a shared slice first.
func (s *Socket) setHandlerLocked(event string, h func(*Event)) {
	if s.sharedHandlers {
		// Room for one more: On after sharing usually adds a handler.
		s.handlers = append(make([]handler, 0, len(s.handlers)+1), s.handlers...)
		s.sharedHandlers = false
	}
	i, found := s.handlerIndexLocked(event)
	if found {
		s.handlers[i].fn = h
	} else {
		s.handlers = slices.Insert(s.handlers, i, handler{event, h})
	}
}

// handlerLocked returns the handler of event, or nil.
func (s *Socket) handlerLocked(event string) func(*Event) {
	if i, found := s.handlerIndexLocked(event); found {
		return s.handlers[i].fn
	}
	return nil
}

// handlerIndexLocked finds event's handler in s.handlers (sorted by event
// name), or where it goes.
func (s *Socket) handlerIndexLocked(event string) (int, bool) {
	return slices.BinarySearchFunc(s.handlers, event, func(h handler, e string) int {
		return strings.Compare(h.event, e)
	})
}

// shareHandlers replaces the socket's handler slice with the namespace's
// shared copy of it. It runs once the connection handlers, which register
// most handlers, are done. A socket whose handlers are its own closures
// still gains: the kept copy has the exact size, where append grows the
// slice in steps (12 handlers would keep room for 16).
func (s *Socket) shareHandlers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sharedHandlers || len(s.handlers) == 0 {
		return
	}
	s.handlers = s.nsp.handlerTables.intern(s.handlers)
	s.sharedHandlers = true
}
