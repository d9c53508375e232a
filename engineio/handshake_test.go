package engineio

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var openKeys = []string{"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}

func TestHandshakePolling(t *testing.T) {
	e := newEnv(t, Config{NodeID: "node7"}, nil)
	r := e.mustRequest("GET", "EIO=4&transport=polling&t=abc123", "")
	if r.status != 200 {
		t.Fatalf("status = %d, want 200", r.status)
	}
	if got := r.header.Get("Content-Type"); got != "text/plain; charset=UTF-8" {
		t.Errorf("Content-Type = %q, want %q", got, "text/plain; charset=UTF-8")
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := r.header.Get("Set-Cookie"); got != "" {
		t.Errorf("Set-Cookie = %q, want none by default", got)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Access-Control-Allow-Origin = %q, want none by default", got)
	}
	if !strings.HasPrefix(r.body, "0{") {
		t.Fatalf("body = %q, want an open packet", r.body)
	}
	op := parseOpen(t, r.body[1:])
	if !slices.Equal(op.keys, openKeys) {
		t.Errorf("keys = %v, want %v", op.keys, openKeys)
	}
	want := fmt.Sprintf(`0{"sid":%q,"upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`, op.SID)
	if r.body != want {
		t.Errorf("body = %q, want %q", r.body, want)
	}
	s := e.srv.Session(op.SID)
	if s == nil {
		t.Fatalf("Session(%q) = nil after the handshake", op.SID)
	}
	if s.ID() != op.SID || s.Protocol() != 4 || s.Transport() != TransportPolling {
		t.Errorf("session: id %q protocol %d transport %q", s.ID(), s.Protocol(), s.Transport())
	}
	if s.CloseReason() != "" {
		t.Errorf("CloseReason() = %q on an open session", s.CloseReason())
	}
	h := s.Handshake()
	if got := h.Query.Get("t"); got != "abc123" {
		t.Errorf("Handshake().Query t = %q", got)
	}
	if !strings.HasPrefix(h.URL, "/engine.io/?") || h.RemoteAddr == "" || h.Secure || h.Time.IsZero() {
		t.Errorf("Handshake() = %+v", h)
	}
	if e.srv.Count() != 1 {
		t.Errorf("Count() = %d, want 1", e.srv.Count())
	}
}

func TestHandshakeConfigValues(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayload: 1000}, nil)
	_, op := e.handshake("")
	if op.PingInterval != 300 || op.PingTimeout != 200 || op.MaxPayload != 1000 {
		t.Errorf("open = %s, want pingInterval 300, pingTimeout 200, maxPayload 1000", op.raw)
	}
}

func TestHandshakeUpgrades(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		websocket bool
		want      []string
	}{
		{"polling", Config{}, false, []string{"websocket"}},
		{"polling DisableUpgrades", Config{DisableUpgrades: true}, false, []string{}},
		{"polling only", Config{Transports: []string{TransportPolling}}, false, []string{}},
		{"websocket only handshake", Config{}, true, []string{}},
		{"websocket only transports", Config{Transports: []string{TransportWebSocket}}, true, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg, nil)
			var op openPacket
			if tt.websocket {
				c := e.dialWS("EIO=4&transport=websocket")
				op = c.readOpen()
			} else {
				_, op = e.handshake("")
			}
			if !slices.Equal(op.Upgrades, tt.want) {
				t.Errorf("upgrades = %q, want %q (open %s)", op.Upgrades, tt.want, op.raw)
			}
			if !slices.Equal(op.keys, openKeys) {
				t.Errorf("keys = %v, want %v", op.keys, openKeys)
			}
		})
	}
}

var sidRandomPart = regexp.MustCompile(`^[A-Za-z0-9_-]{20}$`)

func TestSessionIDs(t *testing.T) {
	e := newEnv(t, Config{NodeID: "nodeA1"}, nil)
	seen := make(map[string]bool)
	for i := 0; i < 200; i++ {
		sid, _ := e.handshake("")
		node, ok := SessionNodeID(sid)
		if !ok || node != "nodeA1" {
			t.Fatalf("SessionNodeID(%q) = %q, %v; want nodeA1, true", sid, node, ok)
		}
		rnd := strings.TrimPrefix(sid, "nodeA1-")
		if !sidRandomPart.MatchString(rnd) {
			t.Fatalf("sid %q: random part %q is not 20 URL-safe characters", sid, rnd)
		}
		if seen[sid] {
			t.Fatalf("sid %q issued twice", sid)
		}
		seen[sid] = true
	}
	if e.srv.Count() != 200 {
		t.Errorf("Count() = %d, want 200", e.srv.Count())
	}

	// A WebSocket session id has the same shape.
	c := e.dialWS("EIO=4&transport=websocket")
	op := c.readOpen()
	if node, ok := SessionNodeID(op.SID); !ok || node != "nodeA1" || seen[op.SID] {
		t.Errorf("websocket sid %q: node %q, %v", op.SID, node, ok)
	}
}

func TestRandomNodeID(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	id := e.srv.NodeID()
	if !regexp.MustCompile(`^[A-Za-z0-9]{8}$`).MatchString(id) {
		t.Fatalf("NodeID() = %q, want 8 letters or digits", id)
	}
	sid, _ := e.handshake("")
	if node, ok := SessionNodeID(sid); !ok || node != id {
		t.Errorf("SessionNodeID(%q) = %q, %v; want %q, true", sid, node, ok, id)
	}
	if other := RandomNodeID(); other == id || ValidateNodeID(other) != nil {
		t.Errorf("RandomNodeID() = %q (server %q)", other, id)
	}
}

func TestSessionNodeID(t *testing.T) {
	rnd := "abcdefghij-_KLMNOPQR"
	tests := []struct {
		sid  string
		node string
		ok   bool
	}{
		{"n1-" + rnd, "n1", true},
		{"N-" + rnd, "N", true},
		{strings.Repeat("x", 32) + "-" + rnd, strings.Repeat("x", 32), true},
		{"n1-" + "-------------------", "", false}, // 19 characters
		{"n1-" + rnd + "A", "", false},
		{"-" + rnd, "", false},
		{rnd, "", false},
		{"", "", false},
		{"n_1-" + rnd, "", false},
		{strings.Repeat("x", 33) + "-" + rnd, "", false},
		{"nœ-" + rnd, "", false},
	}
	for _, tt := range tests {
		node, ok := SessionNodeID(tt.sid)
		if node != tt.node || ok != tt.ok {
			t.Errorf("SessionNodeID(%q) = %q, %v; want %q, %v", tt.sid, node, ok, tt.node, tt.ok)
		}
	}
}

// onSession runs before the client hears of the session: what it sends
// comes after the open packet.
func TestSendFromSessionHandler(t *testing.T) {
	e := newEnv(t, Config{}, func(s *Session) {
		echo(s)
		s.Send(NewMessage([]byte("welcome"), false))
	})
	sid, _ := e.handshake("")
	if r := e.poll(sid); r.status != 200 || r.body != "4welcome" {
		t.Errorf("first poll = %d %q, want 200 \"4welcome\"", r.status, r.body)
	}
	c := e.dialWS("EIO=4&transport=websocket")
	c.readOpen()
	c.expectText("4welcome")
}

func TestHandshakeDuringShutdown(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	sid, _ := e.handshake("")
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if e.srv.Count() != 0 {
		t.Errorf("Count() = %d after Shutdown", e.srv.Count())
	}
	if got := e.session(sid).CloseReason(); got != ReasonServerShutdown {
		t.Errorf("CloseReason() = %q, want %q", got, ReasonServerShutdown)
	}
	r := e.mustRequest("GET", "EIO=4&transport=polling", "")
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("handshake after Shutdown: status %d, want 503", r.status)
	}
}

func TestCORS(t *testing.T) {
	tests := []struct {
		name   string
		cors   CORSConfig
		origin string
		want   map[string]string // "" value: header must be absent
	}{
		{"default none", CORSConfig{}, "http://example.com", map[string]string{
			"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "", "Vary": ""}},
		{"allowed with credentials", CORSConfig{AllowedOrigins: []string{"http://example.com"}, AllowCredentials: true},
			"http://example.com", map[string]string{
				"Access-Control-Allow-Origin": "http://example.com", "Vary": "Origin",
				"Access-Control-Allow-Credentials": "true"}},
		{"other origin", CORSConfig{AllowedOrigins: []string{"http://example.com"}, AllowCredentials: true},
			"http://evil.com", map[string]string{
				"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": ""}},
		{"no origin header", CORSConfig{AllowedOrigins: []string{"http://example.com"}, AllowCredentials: true},
			"", map[string]string{
				"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": ""}},
		{"star", CORSConfig{AllowedOrigins: []string{"*"}},
			"http://any.example", map[string]string{
				"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "", "Vary": ""}},
		{"star with credentials echoes", CORSConfig{AllowedOrigins: []string{"*"}, AllowCredentials: true},
			"http://any.example", map[string]string{
				"Access-Control-Allow-Origin": "http://any.example", "Vary": "Origin",
				"Access-Control-Allow-Credentials": "true"}},
		{"second of two", CORSConfig{AllowedOrigins: []string{"http://a.example", "http://b.example"}},
			"http://b.example", map[string]string{
				"Access-Control-Allow-Origin": "http://b.example", "Vary": "Origin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{CORS: tt.cors}, nil)
			var hdr []string
			if tt.origin != "" {
				hdr = []string{"Origin", tt.origin}
			}
			// Handshake, then a poll and a post on the session: all carry CORS.
			r := e.mustRequest("GET", "EIO=4&transport=polling", "", hdr...)
			if r.status != 200 {
				t.Fatalf("handshake status %d", r.status)
			}
			op := parseOpen(t, r.body[1:])
			rp := e.mustRequest("POST", "EIO=4&transport=polling&sid="+op.SID, "4x", hdr...)
			rg := e.mustRequest("GET", "EIO=4&transport=polling&sid="+op.SID, "", hdr...)
			re := e.mustRequest("GET", "EIO=4&transport=polling&sid=unknown", "", hdr...)
			for what, resp := range map[string]response{"handshake": r, "post": rp, "poll": rg, "error": re} {
				for k, v := range tt.want {
					if got := strings.Join(resp.header.Values(k), ", "); got != v {
						t.Errorf("%s: %s = %q, want %q", what, k, got, v)
					}
				}
			}
		})
	}
}

func TestCORSPreflight(t *testing.T) {
	e := newEnv(t, Config{CORS: CORSConfig{AllowedOrigins: []string{"http://example.com"}, AllowCredentials: true}}, nil)
	r := e.mustRequest("OPTIONS", "EIO=4&transport=polling", "",
		"Origin", "http://example.com",
		"Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type,x-custom")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight status = %d, want 204 (body %q)", r.status, r.body)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":      "http://example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET,HEAD,PUT,PATCH,POST,DELETE",
		"Access-Control-Allow-Headers":     "content-type,x-custom",
		"Access-Control-Max-Age":           "",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r.body != "" {
		t.Errorf("body = %q, want empty", r.body)
	}
	if e.srv.Count() != 0 {
		t.Errorf("a preflight opened a session")
	}

	// Configured headers and max age replace the reflection.
	e2 := newEnv(t, Config{CORS: CORSConfig{AllowedOrigins: []string{"*"},
		AllowedHeaders: []string{"X-A", "X-B"}, MaxAge: 10 * time.Minute}}, nil)
	r = e2.mustRequest("OPTIONS", "", "",
		"Origin", "http://example.com",
		"Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "x-other")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight status = %d, want 204", r.status)
	}
	for k, v := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Headers": "X-A,X-B",
		"Access-Control-Max-Age":       "600",
		"Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestCookie(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		e := newEnv(t, Config{}, nil)
		r := e.mustRequest("GET", "EIO=4&transport=polling", "")
		if got := r.header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("Set-Cookie = %q, want none", got)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		e := newEnv(t, Config{Cookie: &CookieConfig{}}, nil)
		r := e.mustRequest("GET", "EIO=4&transport=polling", "")
		op := parseOpen(t, r.body[1:])
		want := "io=" + op.SID + "; Path=/; HttpOnly; SameSite=Lax"
		if got := r.header.Values("Set-Cookie"); len(got) != 1 || got[0] != want {
			t.Errorf("Set-Cookie = %q, want [%q]", got, want)
		}
		// Not on later polls or posts.
		rp := e.post(op.SID, "4x")
		rg := e.poll(op.SID)
		if rg.body != "4x" {
			t.Errorf("poll = %q, want 4x", rg.body)
		}
		for what, resp := range map[string]response{"post": rp, "poll": rg} {
			if got := resp.header.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("%s: Set-Cookie = %q, want none", what, got)
			}
		}
		// Not on a WebSocket-only handshake.
		var wsHeader http.Header
		u := e.base + e.path + "?EIO=4&transport=websocket"
		req, _ := http.NewRequest("GET", u, nil)
		for i := 0; i < len(upgradeHeaders); i += 2 {
			req.Header.Set(upgradeHeaders[i], upgradeHeaders[i+1])
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wsHeader = resp.Header
		resp.Body.Close()
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("websocket handshake status %d, want 101", resp.StatusCode)
		}
		if got := wsHeader.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("websocket handshake: Set-Cookie = %q, want none", got)
		}
	})
	t.Run("custom", func(t *testing.T) {
		e := newEnv(t, Config{Cookie: &CookieConfig{
			Name: "srv", Path: "/app", Domain: "example.com", Secure: true,
			AllowScripts: true, SameSite: http.SameSiteStrictMode, MaxAge: 60,
		}}, nil)
		r := e.mustRequest("GET", "EIO=4&transport=polling", "")
		op := parseOpen(t, r.body[1:])
		want := "srv=" + op.SID + "; Path=/app; Domain=example.com; Max-Age=60; Secure; SameSite=Strict"
		if got := r.header.Values("Set-Cookie"); len(got) != 1 || got[0] != want {
			t.Errorf("Set-Cookie = %q, want [%q]", got, want)
		}
	})
	t.Run("secure httponly", func(t *testing.T) {
		e := newEnv(t, Config{Cookie: &CookieConfig{Name: "lb", Secure: true, SameSite: http.SameSiteNoneMode}}, nil)
		r := e.mustRequest("GET", "EIO=4&transport=polling", "")
		op := parseOpen(t, r.body[1:])
		want := "lb=" + op.SID + "; Path=/; HttpOnly; Secure; SameSite=None"
		if got := r.header.Values("Set-Cookie"); len(got) != 1 || got[0] != want {
			t.Errorf("Set-Cookie = %q, want [%q]", got, want)
		}
	})
}
