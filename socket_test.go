package herald_test

import (
	"errors"
	"testing"
	"time"

	"github.com/herald-rt/herald"
)

// Handlers made once and given to every socket are shared between sockets
// (handlers.go); a socket that changes its handlers afterwards must get its
// own copy and leave the others alone.
func TestSharedHandlersCopyOnWrite(t *testing.T) {
	ping := func(e *herald.Event) { e.Ack("pong") }
	other := func(e *herald.Event) { e.Ack("other") }
	swap := func(e *herald.Event) {
		e.Socket().On("ping", other)
		e.Socket().On("extra", func(e *herald.Event) { e.Ack("extra") })
		e.Ack(true)
	}
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			s.On("ping", ping)
			s.On("swap", swap)
		})
	})
	a, b := dial(t, url), dial(t, url)
	a.connect("/", "")
	b.connect("/", "")
	a.send(`421["ping"]`)
	a.expect(`431["pong"]`)
	b.send(`421["ping"]`)
	b.expect(`431["pong"]`)

	a.send(`422["swap"]`)
	a.expect(`432[true]`)
	a.send(`423["ping"]`)
	a.expect(`433["other"]`)
	a.send(`424["extra"]`)
	a.expect(`434["extra"]`)
	b.send(`423["ping"]`)
	b.expect(`433["pong"]`)
	b.send(`424["extra"]`) // no handler on b: no answer
	b.expectNothing(100 * time.Millisecond)

	// A new socket still gets the shared handlers as they were.
	c := dial(t, url)
	c.connect("/", "")
	c.send(`425["ping"]`)
	c.expect(`435["pong"]`)
}

// The state kept out of Socket until first use (socketExtra) and the
// Handshake built on first use behave as when they were made up front.
func TestSocketLazyState(t *testing.T) {
	reasons := make(chan string, 4)
	handshakes := make(chan *herald.Handshake, 1)
	_, url := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) {
			hs := s.Handshake()
			handshakes <- hs
			if s.Handshake() != hs {
				t.Errorf("Handshake returned a new value on the second call")
			}
			if s.Data() != nil {
				t.Errorf("Data = %v before SetData", s.Data())
			}
			s.SetData(nil)
			s.Use(func(e *herald.Event) error {
				if e.Name == "blocked" {
					return errors.New("blocked")
				}
				return nil
			})
			s.OnAny(func(e *herald.Event) {
				if e.Name == "any" {
					e.Ack("any:" + e.Name)
				}
			})
			s.On("blocked", func(e *herald.Event) { e.Ack("not blocked") })
			s.On("data", func(e *herald.Event) {
				var v string
				e.Bind(&v)
				s.SetData(v)
				e.Ack(s.Data())
			})
			s.OnDisconnecting(func(r herald.DisconnectReason) { reasons <- "disconnecting " + string(r) })
			s.OnDisconnect(func(r herald.DisconnectReason) { reasons <- "disconnect " + string(r) })
		})
	})
	c := dial(t, url)
	c.connect("/", `{"token":"abc"}`)
	// The CONNECT answer may reach the client before the handler has run.
	var hs *herald.Handshake
	select {
	case hs = <-handshakes:
	case <-time.After(5 * time.Second):
	}
	if hs == nil || string(hs.Auth) != `{"token":"abc"}` || hs.Query.Get("EIO") != "4" || hs.Address == "" || hs.Time.IsZero() {
		t.Fatalf("handshake = %+v", hs)
	}
	c.send(`421["any"]`)
	c.expect(`431["any:any"]`)
	c.send(`422["blocked"]`)
	c.expectNothing(100 * time.Millisecond)
	c.send(`423["data","x"]`)
	c.expect(`433["x"]`)
	c.send(`41`)
	for _, want := range []string{"disconnecting client namespace disconnect", "disconnect client namespace disconnect"} {
		select {
		case got := <-reasons:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %q", want)
		}
	}

	// Without an auth payload, Auth is {}.
	auth := make(chan string, 1)
	_, url2 := newTestServer(t, herald.Config{}, func(srv *herald.Server) {
		srv.OnConnection(func(s *herald.Socket) { auth <- string(s.Handshake().Auth) })
	})
	dial(t, url2).connect("/", "")
	if got := <-auth; got != "{}" {
		t.Fatalf("Auth = %q, want {}", got)
	}
}
