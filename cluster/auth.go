package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Headers of a forwarded request. A request that carries any of them claims
// to come from another node and is refused unless its signature checks out.
const (
	HeaderForwardedBy = "X-Herald-Forwarded-By" // id of the forwarding node
	HeaderClient      = "X-Herald-Client"       // the client's address, host:port
	HeaderTime        = "X-Herald-Time"         // Unix milliseconds when signed
	HeaderNonce       = "X-Herald-Nonce"        // 16 random bytes, base64url
	HeaderSignature   = "X-Herald-Signature"    // hex HMAC-SHA256, see signature
)

// ForwardingHeaderPrefix starts the name of every forwarding header. A
// node that answers Engine.IO requests with engineio.Server.Serve names it
// in ServeOptions.PassThroughHeaderPrefixes, so that forwarded requests
// reach the verifier (Forwarder.Handler) rather than the direct path.
const ForwardingHeaderPrefix = "X-Herald-"

var forwardHeaders = []string{HeaderForwardedBy, HeaderClient, HeaderTime, HeaderNonce, HeaderSignature}

// Defaults of the authentication limits.
const (
	DefaultMaxSkew   = 30 * time.Second
	DefaultMaxNonces = 1 << 20
	DefaultMaxBody   = 16 << 20
)

// AuthError says why a request that claims to be forwarded was refused.
type AuthError struct{ Reason string }

func (e *AuthError) Error() string { return "cluster: forwarded request refused: " + e.Reason }

// signature is the HMAC-SHA256, under the cluster secret, of everything a
// forwarded request's meaning depends on. Fields are newline separated and
// none may contain a newline (the request line and header values cannot).
func signature(key []byte, method, requestURI, client, from, ts, nonce string, bodySum []byte) string {
	m := hmac.New(sha256.New, key)
	for _, f := range []string{"herald-forward-v1", method, requestURI, client, from, ts, nonce} {
		io.WriteString(m, f)
		m.Write([]byte{'\n'})
	}
	m.Write(bodySum)
	return hex.EncodeToString(m.Sum(nil))
}

// sign sets the forwarding headers on out, which will be sent as the
// request line "out.Method out.URL.RequestURI()".
func sign(key []byte, out *http.Request, client, from string, bodySum []byte, now time.Time) {
	var n [16]byte
	rand.Read(n[:])
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	h := out.Header
	h.Set(HeaderForwardedBy, from)
	h.Set(HeaderClient, client)
	h.Set(HeaderTime, ts)
	h.Set(HeaderNonce, nonce)
	h.Set(HeaderSignature, signature(key, out.Method, out.URL.RequestURI(), client, from, ts, nonce, bodySum))
}

// claimsForwarded reports whether r carries any forwarding header.
func claimsForwarded(r *http.Request) bool {
	for _, k := range forwardHeaders {
		if _, ok := r.Header[k]; ok {
			return true
		}
	}
	return false
}

type forwardedKey struct{}

// ForwardedBy returns the id of the node that forwarded r, when r reached
// this node through a verified forwarding hop.
func ForwardedBy(r *http.Request) (string, bool) {
	from, ok := r.Context().Value(forwardedKey{}).(string)
	return from, ok
}

// verifier checks forwarded requests: signature, age and nonce reuse.
type verifier struct {
	key     []byte // nil: forwarding is off, every forwarded request is refused
	maxSkew time.Duration
	maxBody int64
	nonces  *nonceCache
	log     *slog.Logger
	now     func() time.Time
}

// verify checks r and, if it is genuine, returns the body it read (so it
// can be replayed to the handler).
func (v *verifier) verify(r *http.Request) ([]byte, error) {
	if v.key == nil {
		return nil, &AuthError{"forwarding is disabled on this node (no cluster secret)"}
	}
	h := r.Header
	from, client, ts, nonce, sig := h.Get(HeaderForwardedBy), h.Get(HeaderClient), h.Get(HeaderTime), h.Get(HeaderNonce), h.Get(HeaderSignature)
	if from == "" || client == "" || ts == "" || nonce == "" || sig == "" {
		return nil, &AuthError{"incomplete forwarding headers"}
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, &AuthError{"bad timestamp"}
	}
	now := v.now()
	if age := now.Sub(time.UnixMilli(ms)); age > v.maxSkew || age < -v.maxSkew {
		return nil, &AuthError{"timestamp outside the allowed skew"}
	}
	var n [16]byte
	if nb, err := base64.RawURLEncoding.DecodeString(nonce); err != nil || len(nb) != len(n) {
		return nil, &AuthError{"bad nonce"}
	} else {
		copy(n[:], nb)
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		body, err = io.ReadAll(io.LimitReader(r.Body, v.maxBody+1))
		if err != nil {
			return nil, &AuthError{"reading the body: " + err.Error()}
		}
		if int64(len(body)) > v.maxBody {
			return nil, &AuthError{"body too large"}
		}
	}
	sum := sha256.Sum256(body)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	want := signature(v.key, r.Method, uri, client, from, ts, nonce, sum[:])
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return nil, &AuthError{"bad signature"}
	}
	// Only a correctly signed request may spend a nonce, so outsiders
	// cannot fill the cache.
	switch v.nonces.add(n, now) {
	case nonceReplayed:
		return nil, &AuthError{"nonce replayed"}
	case nonceCacheFull:
		return nil, &AuthError{"too many forwarded requests to remember"}
	}
	return body, nil
}

// wrap returns next behind verification: requests that claim to be
// forwarded are checked and refused with 403 unless genuine; genuine ones
// get the client's address as RemoteAddr and are marked (see ForwardedBy)
// so they are never forwarded again.
func (v *verifier) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !claimsForwarded(r) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := v.verify(r)
		if err != nil {
			v.log.Warn("cluster: refused a forwarded request", "remote", r.RemoteAddr, "uri", r.RequestURI, "err", err)
			http.Error(w, "forbidden: "+err.(*AuthError).Reason, http.StatusForbidden)
			return
		}
		from := r.Header.Get(HeaderForwardedBy)
		r2 := r.WithContext(context.WithValue(r.Context(), forwardedKey{}, from))
		r2.RemoteAddr = r.Header.Get(HeaderClient)
		r2.Header = r.Header.Clone()
		for _, k := range forwardHeaders {
			r2.Header.Del(k)
		}
		if body != nil {
			r2.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r2)
	})
}

type nonceResult uint8

const (
	nonceFresh nonceResult = iota
	nonceReplayed
	nonceCacheFull
)

// nonceCache remembers the nonces of accepted forwarded requests for as long
// as their timestamps stay acceptable. It keeps two generations of at most
// half the limit each and drops the older one every window (twice the skew:
// a nonce first seen at t carries a timestamp ≥ t−skew, so it can be
// replayed only until t+2·skew).
type nonceCache struct {
	mu        sync.Mutex
	cur, prev map[[16]byte]struct{}
	started   time.Time // of cur
	window    time.Duration
	max       int // per generation
}

func newNonceCache(window time.Duration, max int) *nonceCache {
	return &nonceCache{cur: map[[16]byte]struct{}{}, window: window, max: max / 2}
}

func (c *nonceCache) add(n [16]byte, now time.Time) nonceResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started.IsZero() {
		c.started = now
	}
	if now.Sub(c.started) >= c.window {
		c.prev, c.cur, c.started = c.cur, make(map[[16]byte]struct{}, len(c.cur)), now
	}
	if _, ok := c.cur[n]; ok {
		return nonceReplayed
	}
	if _, ok := c.prev[n]; ok {
		return nonceReplayed
	}
	if len(c.cur) >= c.max {
		return nonceCacheFull
	}
	c.cur[n] = struct{}{}
	return nonceFresh
}

var errNoSecret = errors.New("cluster: forwarding needs a cluster secret")

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
