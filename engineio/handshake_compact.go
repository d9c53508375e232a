package engineio

import (
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// What a session keeps of its handshake request lives as long as the
// session, so it is stored compactly: at 10k idle connections the request's
// header map and parsed query were a quarter of Herald's heap per
// connection (docs/performance-work.md).

// compactHeader returns a copy of h whose values share one string and whose
// value slices share one array: two allocations besides the map instead of
// one per key and one per value.
func compactHeader(h http.Header) http.Header {
	keys := make([]string, 0, len(h))
	size, count := 0, 0
	for k, vs := range h {
		keys = append(keys, k)
		for _, v := range vs {
			size += len(v)
		}
		count += len(vs)
	}
	buf := make([]byte, 0, size)
	for _, k := range keys {
		for _, v := range h[k] {
			buf = append(buf, v...)
		}
	}
	all := string(buf)
	out := make(http.Header, len(h))
	values := make([]string, 0, count)
	off := 0
	for _, k := range keys {
		start := len(values)
		for _, v := range h[k] {
			values = append(values, all[off:off+len(v)])
			off += len(v)
		}
		out[k] = values[start:len(values):len(values)] // appending to one never overwrites another
	}
	return out
}

// maxSharedQueries bounds the cache of internQuery: clients send few
// distinct handshake queries, but a client can make every one unique.
const maxSharedQueries = 256

var (
	sharedQueries    sync.Map // raw query → url.Values, read-only
	sharedQueryCount atomic.Int32
)

// internQuery parses a raw query, returning the same read-only url.Values
// to every session whose raw query is the same (WebSocket-only clients all
// send "EIO=4&transport=websocket").
func internQuery(raw string) url.Values {
	if v, ok := sharedQueries.Load(raw); ok {
		return v.(url.Values)
	}
	q, _ := url.ParseQuery(raw)
	if sharedQueryCount.Load() < maxSharedQueries {
		if v, loaded := sharedQueries.LoadOrStore(raw, q); loaded {
			return v.(url.Values)
		}
		sharedQueryCount.Add(1)
	}
	return q
}
