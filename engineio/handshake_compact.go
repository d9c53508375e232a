package engineio

import (
	"encoding/binary"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// What a session keeps of its handshake request lives as long as the
// session, so it is stored compactly: at 10k idle connections the request's
// header map and parsed query were a quarter of Herald's heap per
// connection (docs/performance-work.md).

// packHeader encodes h into one string: for each key, its length, the key,
// the number of values, and each value with its length (uvarints). A
// session keeps this string and builds the header map only if someone asks
// for it (Session.Handshake): the map and its value slices were 470 B of
// the ≈ 2.4 KB of live heap per idle connection.
func packHeader(h http.Header) string {
	size := 0
	for k, vs := range h {
		size += len(k) + 2*binary.MaxVarintLen16
		for _, v := range vs {
			size += len(v) + binary.MaxVarintLen32
		}
	}
	buf := make([]byte, 0, size)
	for k, vs := range h {
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(vs)))
		for _, v := range vs {
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		}
	}
	return string(buf)
}

// unpackHeader decodes what packHeader made. Keys and values are
// substrings of packed, and the value slices share one array: three
// allocations in all. It never fails on packHeader's output; on anything
// else it returns what it could decode.
func unpackHeader(packed string) http.Header {
	// uvarint reads one length at packed[i:].
	uvarint := func(i int) (int, int) {
		var n uint64
		for shift := 0; i < len(packed) && shift < 64; shift += 7 {
			b := packed[i]
			i++
			n |= uint64(b&0x7f) << shift
			if b < 0x80 {
				return int(min(n, uint64(len(packed)))), i
			}
		}
		return 0, len(packed)
	}
	// First pass: count keys and values, to size the map and the array.
	keys, count := 0, 0
	for i := 0; i < len(packed); {
		var n int
		n, i = uvarint(i)
		i += n
		var vs int
		vs, i = uvarint(i)
		keys++
		for ; vs > 0 && i < len(packed); vs-- {
			n, i = uvarint(i)
			i += n
			count++
		}
	}
	h := make(http.Header, keys)
	values := make([]string, 0, count)
	for i := 0; i < len(packed); {
		var n int
		n, i = uvarint(i)
		k := packed[i:min(i+n, len(packed))]
		i += n
		var vs int
		vs, i = uvarint(i)
		start := len(values)
		for ; vs > 0 && i < len(packed) && len(values) < count; vs-- {
			n, i = uvarint(i)
			values = append(values, packed[i:min(i+n, len(packed))])
			i += n
		}
		h[k] = values[start:len(values):len(values)] // appending to one never overwrites another
	}
	return h
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
