package clusterwire

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/herald-rt/herald/adapter"
)

// SocketRecord is one socket in a fetchSockets answer (REMOTE_FETCH
// response, FETCH_SOCKETS_RESPONSE): {id, handshake, rooms, data}.
// Handshake and Data are kept as Values so that a record passes through
// unchanged, member order included; see [NewSocketRecord] and
// [SocketRecord.Info] for the conversions from and to adapter.SocketInfo.
type SocketRecord struct {
	ID string
	// Handshake is socket.handshake without sessionStore: {headers, time,
	// address, xdomain, secure, issued, url, query, auth}. Undefined
	// leaves the member out.
	Handshake Value
	Rooms     []string
	// Data is socket.data. Undefined leaves the member out.
	Data Value
}

func (r *SocketRecord) value() Value {
	m := make(members, 0, 9)
	m.add("id", Str(r.ID))
	m.add("handshake", r.Handshake)
	m.add("rooms", stringsValue(r.Rooms))
	m.add("data", r.Data)
	return m.value()
}

func socketsValue(recs []SocketRecord) Value {
	elems := make([]Value, len(recs))
	for i := range recs {
		elems[i] = recs[i].value()
	}
	return Array(elems...)
}

func decodeSocketRecord(v Value) (SocketRecord, error) {
	var r SocketRecord
	if v.kind != KindMap {
		return r, malformed("socket is a %v, not a map", v.kind)
	}
	var err error
	if r.ID, err = optString(v.Get("id"), "socket id"); err != nil {
		return r, err
	}
	if r.Rooms, err = decodeRooms(v.Get("rooms"), "socket rooms"); err != nil {
		return r, err
	}
	r.Handshake = v.Get("handshake")
	r.Data = v.Get("data")
	return r, nil
}

// NewSocketRecord converts info to the record a Node.js node sends: the
// handshake members in socket.io's order (headers, time, address,
// xdomain, secure, issued, url, query, auth), headers and query sorted by
// name (a Go map has no order), auth and data parsed from their JSON ({}
// when empty, socket.io's defaults).
func NewSocketRecord(info adapter.SocketInfo) (SocketRecord, error) {
	h := &info.Handshake
	auth, err := jsonOrEmptyMap(h.Auth)
	if err != nil {
		return SocketRecord{}, err
	}
	data, err := jsonOrEmptyMap(info.Data)
	if err != nil {
		return SocketRecord{}, err
	}
	m := make(members, 0, 9)
	m.add("headers", stringMap(h.Headers))
	m.add("time", Str(h.Time))
	m.add("address", Str(h.Address))
	m.add("xdomain", Bool(h.XDomain))
	m.add("secure", Bool(h.Secure))
	m.add("issued", Int(h.Issued))
	m.add("url", Str(h.URL))
	m.add("query", stringMap(h.Query))
	m.add("auth", auth)
	return SocketRecord{ID: info.ID, Handshake: m.value(), Rooms: info.Rooms, Data: data}, nil
}

func jsonOrEmptyMap(raw json.RawMessage) (Value, error) {
	if len(raw) == 0 {
		return Map(), nil
	}
	return DecodeJSON(raw)
}

func stringMap(m map[string]string) Value {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ms := make([]Member, len(keys))
	for i, k := range keys {
		ms[i] = Member{Key: k, Value: Str(m[k])}
	}
	return Map(ms...)
}

// Info converts r to an adapter.SocketInfo. Handshake members of an
// unexpected type are converted as JavaScript's String() would (an array of
// header values is joined with ","); auth and data become JSON as
// JSON.stringify writes it (binary as Buffer objects), nil when undefined.
func (r *SocketRecord) Info() adapter.SocketInfo {
	info := adapter.SocketInfo{ID: r.ID, Rooms: r.Rooms}
	h := r.Handshake
	info.Handshake = adapter.Handshake{
		Headers: toStringMap(h.Get("headers")),
		Time:    jsString(h.Get("time")),
		Address: jsString(h.Get("address")),
		XDomain: h.Get("xdomain").Truthy(),
		Secure:  h.Get("secure").Truthy(),
		URL:     jsString(h.Get("url")),
		Query:   toStringMap(h.Get("query")),
	}
	if n, ok := h.Get("issued").AsFloat(); ok {
		info.Handshake.Issued = int64(clampInt(n))
	}
	if a := h.Get("auth"); a.kind != KindUndefined {
		info.Handshake.Auth = EncodeJSON(a)
	}
	if r.Data.kind != KindUndefined {
		info.Data = EncodeJSON(r.Data)
	}
	return info
}

func toStringMap(v Value) map[string]string {
	if v.kind != KindMap {
		return nil
	}
	out := make(map[string]string, len(v.obj))
	for _, m := range v.obj {
		if m.Value.kind == KindUndefined {
			continue
		}
		out[m.Key] = jsString(m.Value)
	}
	return out
}

// jsString returns String(v) for scalars and arrays of scalars (joined with
// ","); "" for undefined and null; JSON for other values.
func jsString(v Value) string {
	switch v.kind {
	case KindUndefined, KindNil:
		return ""
	case KindString:
		return v.str
	case KindArray:
		parts := make([]string, len(v.arr))
		for i, e := range v.arr {
			parts[i] = jsString(e)
		}
		return strings.Join(parts, ",")
	case KindMap, KindBinary, KindDate:
		return string(EncodeJSON(v))
	}
	return jsScalarString(v)
}
