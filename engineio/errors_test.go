package engineio

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"
)

var upgradeHeaders = []string{
	"Connection", "Upgrade",
	"Upgrade", "websocket",
	"Sec-WebSocket-Version", "13",
	"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==",
}

func TestRequestErrors(t *testing.T) {
	const unknownSID = "node1-AAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name    string
		cfg     Config
		method  string
		query   string
		headers []string
		status  int
		code    ErrorCode
		message string
	}{
		{name: "EIO missing", method: "GET", query: "transport=polling",
			status: 400, code: 5, message: "Unsupported protocol version"},
		{name: "EIO abc", method: "GET", query: "EIO=abc&transport=polling",
			status: 400, code: 5, message: "Unsupported protocol version"},
		{name: "EIO 3 without AllowEIO3", method: "GET", query: "EIO=3&transport=polling",
			status: 400, code: 5, message: "Unsupported protocol version"},
		{name: "EIO 5", method: "GET", query: "EIO=5&transport=polling",
			status: 400, code: 5, message: "Unsupported protocol version"},
		{name: "EIO 5 with AllowEIO3", cfg: Config{AllowEIO3: true}, method: "GET", query: "EIO=5&transport=polling",
			status: 400, code: 5, message: "Unsupported protocol version"},
		{name: "EIO abc with AllowEIO3", cfg: Config{AllowEIO3: true}, method: "GET", query: "EIO=abc&transport=polling",
			status: 400, code: 5, message: "Unsupported protocol version"},
		{name: "EIO missing on websocket", method: "GET", query: "transport=websocket", headers: upgradeHeaders,
			status: 400, code: 5, message: "Unsupported protocol version"},
		{name: "transport missing", method: "GET", query: "EIO=4",
			status: 400, code: 0, message: "Transport unknown"},
		{name: "transport unknown", method: "GET", query: "EIO=4&transport=abc",
			status: 400, code: 0, message: "Transport unknown"},
		{name: "transport webtransport", method: "GET", query: "EIO=4&transport=webtransport",
			status: 400, code: 0, message: "Transport unknown"},
		{name: "handshake POST", method: "POST", query: "EIO=4&transport=polling",
			status: 400, code: 2, message: "Bad handshake method"},
		{name: "handshake PUT", method: "PUT", query: "EIO=4&transport=polling",
			status: 400, code: 2, message: "Bad handshake method"},
		{name: "websocket without Upgrade", method: "GET", query: "EIO=4&transport=websocket",
			status: 400, code: 3, message: "Bad request"},
		{name: "unknown sid GET", method: "GET", query: "EIO=4&transport=polling&sid=" + unknownSID,
			status: 400, code: 1, message: "Session ID unknown"},
		{name: "unknown sid POST", method: "POST", query: "EIO=4&transport=polling&sid=" + unknownSID,
			status: 400, code: 1, message: "Session ID unknown"},
		{name: "unknown sid websocket", method: "GET", query: "EIO=4&transport=websocket&sid=" + unknownSID,
			headers: upgradeHeaders, status: 400, code: 1, message: "Session ID unknown"},
		{name: "unknown sid garbage", method: "GET", query: "EIO=4&transport=polling&sid=abc",
			status: 400, code: 1, message: "Session ID unknown"},
		{name: "AllowRequest rejects polling",
			cfg:    Config{AllowRequest: func(*http.Request) error { return errors.New("not on my watch") }},
			method: "GET", query: "EIO=4&transport=polling",
			status: 403, code: 4, message: "not on my watch"},
		{name: "AllowRequest rejects websocket",
			cfg:    Config{AllowRequest: func(*http.Request) error { return errors.New("go away") }},
			method: "GET", query: "EIO=4&transport=websocket", headers: upgradeHeaders,
			status: 403, code: 4, message: "go away"},
		{name: "polling not in Transports", cfg: Config{Transports: []string{TransportWebSocket}},
			method: "GET", query: "EIO=4&transport=polling",
			status: 400, code: 0, message: "Transport unknown"},
		{name: "websocket not in Transports", cfg: Config{Transports: []string{TransportPolling}},
			method: "GET", query: "EIO=4&transport=websocket", headers: upgradeHeaders,
			status: 400, code: 0, message: "Transport unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg, nil)
			body := ""
			if tt.method == "POST" || tt.method == "PUT" {
				body = "4hello"
			}
			r := e.request(tt.method, tt.query, body, tt.headers...)
			wantError(t, r, tt.status, tt.code, tt.message)
			if n := e.srv.Count(); n != 0 {
				t.Errorf("Count() = %d after a rejected request, want 0", n)
			}
		})
	}
}

// The exact body and headers of the most common error, byte for byte.
func TestUnknownSessionBody(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	r := e.mustRequest("GET", "EIO=4&transport=polling&sid=nope", "")
	if r.status != 400 {
		t.Fatalf("status = %d, want 400", r.status)
	}
	if got, want := r.body, `{"code":1,"message":"Session ID unknown"}`; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := r.header.Get("Content-Length"); got != "41" {
		t.Errorf("Content-Length = %q, want 41", got)
	}
}

// A WebSocket dial with an unknown sid is refused before the 101.
func TestUnknownSessionWebSocketDial(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	_, err := e.tryDialWS("EIO=4&transport=websocket&sid=nope")
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != 400 {
		t.Fatalf("dial error = %v, want status 400", err)
	}
	_, err = e.tryDialWS("EIO=5&transport=websocket")
	if !errors.As(err, &se) || int(se) != 400 {
		t.Fatalf("dial with EIO=5: error = %v, want status 400 before the upgrade", err)
	}
}

func TestWrongPath(t *testing.T) {
	e := newEnv(t, Config{}, nil)
	for _, path := range []string{"/", "/socket.io/", "/engine.io", "/engineio/", "/other/engine.io/"} {
		resp, err := e.client.Get(e.base + path + "?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
	// A custom path is honoured and the default is then a 404.
	e2 := newEnv(t, Config{Path: "/socket.io/"}, nil)
	resp, err := e2.client.Get(e2.base + "/engine.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("default path on a /socket.io/ server: status %d, want 404", resp.StatusCode)
	}
	sid, _ := e2.handshake("")
	if !strings.Contains(sid, "-") {
		t.Errorf("sid %q", sid)
	}
}

func TestAllowEIO3Handshakes(t *testing.T) {
	e := newEnv(t, Config{AllowEIO3: true}, nil)
	for _, q := range []string{"EIO=3&transport=polling", "transport=polling"} {
		r := e.mustRequest("GET", q, "")
		if r.status != 200 {
			t.Fatalf("?%s: status %d, body %q", q, r.status, r.body)
		}
		ps, err := decodePayloadV3String([]byte(r.body))
		if err != nil || len(ps) != 1 || ps[0].typ != packetOpen {
			t.Fatalf("?%s: body %q is not a v3 open payload (%v)", q, r.body, err)
		}
		// "<len>:0{...}" where len counts the packet.
		if want := strconv.Itoa(len(ps[0].data)+1) + ":0"; !strings.HasPrefix(r.body, want) {
			t.Errorf("?%s: body %q, want prefix %q", q, r.body, want)
		}
		op := parseOpen(t, string(ps[0].data))
		if got := e.session(op.SID).Protocol(); got != 3 {
			t.Errorf("?%s: Protocol() = %d, want 3", q, got)
		}
	}
	// EIO=4 is still v4 on the same server.
	sid, _ := e.handshake("EIO=4&transport=polling")
	if got := e.session(sid).Protocol(); got != 4 {
		t.Errorf("EIO=4: Protocol() = %d, want 4", got)
	}
}

func TestErrorCodeStrings(t *testing.T) {
	tests := []struct {
		code   ErrorCode
		msg    string
		status int
	}{
		{ErrTransportUnknown, "Transport unknown", 400},
		{ErrSessionIDUnknown, "Session ID unknown", 400},
		{ErrBadHandshakeMethod, "Bad handshake method", 400},
		{ErrBadRequest, "Bad request", 400},
		{ErrForbidden, "Forbidden", 403},
		{ErrUnsupportedProtocol, "Unsupported protocol version", 400},
		{ErrorCode(9), "ErrorCode(9)", 400},
	}
	for _, tt := range tests {
		if got := tt.code.String(); got != tt.msg {
			t.Errorf("ErrorCode(%d).String() = %q, want %q", int(tt.code), got, tt.msg)
		}
		if got := tt.code.HTTPStatus(); got != tt.status {
			t.Errorf("ErrorCode(%d).HTTPStatus() = %d, want %d", int(tt.code), got, tt.status)
		}
	}
	err := &RequestError{Code: ErrForbidden}
	if got := err.Error(); got != "engineio: Forbidden" {
		t.Errorf("Error() = %q", got)
	}
	err = &RequestError{Code: ErrForbidden, Message: "nope"}
	if got := err.Error(); got != "engineio: nope" {
		t.Errorf("Error() = %q", got)
	}
}

func TestNewServerConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{NodeID: "has-dash"},
		{NodeID: strings.Repeat("a", 33)},
		{NodeID: "ünï"},
		{Transports: []string{"polling", "webtransport"}},
	} {
		if _, err := NewServer(cfg, nil); err == nil {
			t.Errorf("NewServer(%+v) = nil error, want an error", cfg)
		}
	}
	srv, err := NewServer(Config{NodeID: strings.Repeat("Z9", 16)}, nil)
	if err != nil {
		t.Fatalf("32-char node id: %v", err)
	}
	if srv.NodeID() != strings.Repeat("Z9", 16) {
		t.Errorf("NodeID() = %q", srv.NodeID())
	}
}

type testForwarder struct {
	mu   sync.Mutex
	sids []string
}

func (f *testForwarder) ForwardSession(w http.ResponseWriter, r *http.Request, sid string) bool {
	f.mu.Lock()
	f.sids = append(f.sids, sid)
	f.mu.Unlock()
	node, ok := SessionNodeID(sid)
	if !ok || node != "other" {
		return false
	}
	w.Header().Set("X-Forwarded-To", node)
	w.WriteHeader(http.StatusAccepted)
	return true
}

func TestForwarder(t *testing.T) {
	f := &testForwarder{}
	e := newEnv(t, Config{NodeID: "self", Forwarder: f}, nil)
	remote := "other-AAAAAAAAAAAAAAAAAAAA"
	r := e.mustRequest("GET", "EIO=4&transport=polling&sid="+remote, "")
	if r.status != http.StatusAccepted || r.header.Get("X-Forwarded-To") != "other" {
		t.Errorf("forwarded GET = %d %v", r.status, r.header)
	}
	r = e.mustRequest("POST", "EIO=4&transport=polling&sid="+remote, "4x")
	if r.status != http.StatusAccepted {
		t.Errorf("forwarded POST = %d", r.status)
	}
	r = e.request("GET", "EIO=4&transport=websocket&sid="+remote, "", upgradeHeaders...)
	if r.status != http.StatusAccepted {
		t.Errorf("forwarded websocket = %d", r.status)
	}
	// Declined: the usual 400.
	wantError(t, e.mustRequest("GET", "EIO=4&transport=polling&sid=nobody-AAAAAAAAAAAAAAAAAAAA", ""),
		400, ErrSessionIDUnknown, "Session ID unknown")
	// Local sessions and handshakes never reach the forwarder.
	sid, _ := e.handshake("")
	e.post(sid, "4local")
	if g := e.poll(sid); g.body != "4local" {
		t.Errorf("local GET = %q", g.body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	want := []string{remote, remote, remote, "nobody-AAAAAAAAAAAAAAAAAAAA"}
	if !slices.Equal(f.sids, want) {
		t.Errorf("forwarder saw %q, want %q", f.sids, want)
	}
}
