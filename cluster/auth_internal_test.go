package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestVerifier checks every way a request claiming to be forwarded can be
// wrong, against requests signed as a forwarding node signs them.
func TestVerifier(t *testing.T) {
	key := []byte("cluster-secret")
	const uri = "/engine.io/?EIO=4&transport=polling&sid=a-AAAAAAAAAAAAAAAAAAAA"
	now := time.Now()
	signed := func(method, body string, at time.Time, k []byte) *http.Request {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r := httptest.NewRequest(method, uri, rd)
		r.RemoteAddr = "127.0.0.1:40000" // the forwarding node
		sum := sha256Sum([]byte(body))
		sign(k, r, "198.51.100.7:5555", "b", sum, at)
		return r
	}
	type seen struct {
		remote, from, body string
		leaked             bool
	}
	serve := func(v *verifier, r *http.Request) (int, seen) {
		var got seen
		h := v.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.remote = r.RemoteAddr
			got.from, _ = ForwardedBy(r)
			b, _ := io.ReadAll(r.Body)
			got.body = string(b)
			got.leaked = claimsForwarded(r)
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code, got
	}

	tests := []struct {
		name   string
		req    func() *http.Request
		noKey  bool
		status int
	}{
		{"genuine GET", func() *http.Request { return signed("GET", "", now, key) }, false, 200},
		{"genuine POST", func() *http.Request { return signed("POST", "4hello", now, key) }, false, 200},
		{"slightly in the future", func() *http.Request { return signed("GET", "", now.Add(5*time.Second), key) }, false, 200},
		{"wrong secret", func() *http.Request { return signed("GET", "", now, []byte("guess")) }, false, 403},
		{"too old", func() *http.Request { return signed("GET", "", now.Add(-31*time.Second), key) }, false, 403},
		{"too far ahead", func() *http.Request { return signed("GET", "", now.Add(31*time.Second), key) }, false, 403},
		{"body changed", func() *http.Request {
			r := signed("POST", "4hello", now, key)
			r.Body = io.NopCloser(strings.NewReader("4evil!"))
			return r
		}, false, 403},
		{"client changed", func() *http.Request {
			r := signed("GET", "", now, key)
			r.Header.Set(HeaderClient, "10.0.0.1:1")
			return r
		}, false, 403},
		{"sender changed", func() *http.Request {
			r := signed("GET", "", now, key)
			r.Header.Set(HeaderForwardedBy, "c")
			return r
		}, false, 403},
		{"method changed", func() *http.Request {
			r := signed("GET", "", now, key)
			r.Method = "POST"
			return r
		}, false, 403},
		{"uri changed", func() *http.Request {
			r := signed("GET", "", now, key)
			r.RequestURI = strings.Replace(uri, "a-AAAA", "a-BBBB", 1)
			return r
		}, false, 403},
		{"signature only", func() *http.Request {
			r := httptest.NewRequest("GET", uri, nil)
			r.Header.Set(HeaderSignature, strings.Repeat("0", 64))
			return r
		}, false, 403},
		{"client address only", func() *http.Request {
			r := httptest.NewRequest("GET", uri, nil)
			r.Header.Set(HeaderClient, "10.0.0.1:1")
			return r
		}, false, 403},
		{"bad nonce", func() *http.Request {
			r := signed("GET", "", now, key)
			r.Header.Set(HeaderNonce, "short")
			return r
		}, false, 403},
		{"forwarding disabled here", func() *http.Request { return signed("GET", "", now, key) }, true, 403},
		{"not forwarded at all", func() *http.Request { return httptest.NewRequest("GET", uri, nil) }, false, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(key, 0, 0, 0, nil)
			if tc.noKey {
				v.key = nil
			}
			r := tc.req()
			claimed := claimsForwarded(r)
			status, got := serve(v, r)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if status != 200 || !claimed {
				return
			}
			if got.remote != "198.51.100.7:5555" || got.from != "b" || got.leaked {
				t.Errorf("handler saw %+v: want the client's address, sender b, no forwarding headers", got)
			}
			if r.Method == "POST" && got.body != "4hello" {
				t.Errorf("body %q, want 4hello", got.body)
			}
		})
	}

	t.Run("replay", func(t *testing.T) {
		v := newVerifier(key, 0, 0, 0, nil)
		r := signed("POST", "4hello", now, key)
		again := r.Clone(r.Context())
		again.Body = io.NopCloser(strings.NewReader("4hello"))
		if status, _ := serve(v, r); status != 200 {
			t.Fatalf("first delivery: %d", status)
		}
		if status, _ := serve(v, again); status != 403 {
			t.Fatalf("replay: %d, want 403", status)
		}
	})
	t.Run("nonce cache full", func(t *testing.T) {
		v := newVerifier(key, 0, 4, 0, nil) // two per generation
		for i, want := range []int{200, 200, 403} {
			if status, _ := serve(v, signed("GET", "", now, key)); status != want {
				t.Fatalf("request %d: %d, want %d", i, status, want)
			}
		}
	})
}

func TestNonceCacheForgetsOnlyAfterTwoWindows(t *testing.T) {
	c := newNonceCache(time.Minute, 100)
	n := [16]byte{1}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		want nonceResult
	}{
		{0, nonceFresh},
		{time.Second, nonceReplayed},
		{61 * time.Second, nonceReplayed},  // rotated: still in the previous generation
		{119 * time.Second, nonceReplayed}, // a window after the rotation not yet reached
		{122 * time.Second, nonceFresh},    // two rotations later: forgotten
	}
	for _, s := range steps {
		if got := c.add(n, t0.Add(s.at)); got != s.want {
			t.Fatalf("at %v: %v, want %v", s.at, got, s.want)
		}
	}
}
