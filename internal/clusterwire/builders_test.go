package clusterwire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

// vector returns the bytes of the n-th capture (from 0) of an appendix
// whose step starts with step and whose channel is channel.
func vector(t *testing.T, appendix, step, channel string, n int) []byte {
	t.Helper()
	for _, c := range capturedVectors {
		if c.appendix == appendix && strings.HasPrefix(c.step, step) && c.channel == channel {
			if n == 0 {
				return c.bytes(t)
			}
			n--
		}
	}
	t.Fatalf("no capture %s %s %s", appendix, step, channel)
	return nil
}

// event builds the packet Herald would broadcast for emit(name, args...).
func event(t *testing.T, nsp, name string, args ...any) parser.Packet {
	t.Helper()
	p, err := parser.NewEvent(nsp, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return *p
}

func boolp(b bool) *bool { return &b }

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func mustValue(t *testing.T, s string) Value {
	t.Helper()
	v, err := DecodeJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func checkBytes(t *testing.T, name string, got []byte, err error, want []byte) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x\n got %q\nwant %q", name, got, want, got, want)
	}
}

// TestBuildClassicBroadcasts builds the classic broadcasts of Appendices A,
// B and E from Herald's types and compares them with the captures.
func TestBuildClassicBroadcasts(t *testing.T) {
	const key = DefaultKey
	cases := []struct {
		appendix, step string
		b              Broadcast
		order          KeyOrder
	}{
		{"A", "01", Broadcast{"ew8yp-", event(t, "/", "hi", 1), adapter.BroadcastOptions{}}, AdapterOrder},
		{"A", "02", Broadcast{"ew8yp-", event(t, "/", "room-msg", "x"), adapter.BroadcastOptions{Rooms: []string{"r1"}, Except: []string{"r2"}}}, AdapterOrder},
		{"A", "03", Broadcast{"ew8yp-", event(t, "", "multi", true), adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}}}, AdapterOrder},
		{"A", "04", Broadcast{"ew8yp-", event(t, "/", "flags", 1.5, -3, 300, nil),
			adapter.BroadcastOptions{Flags: adapter.Flags{Volatile: true, Compress: boolp(false)}}}, AdapterOrder},
		{"A", "07", Broadcast{EmitterUID, event(t, "/", "from-emitter", map[string]int{"a": 1}), adapter.BroadcastOptions{}}, EmitterOrder},
		{"A", "08", Broadcast{EmitterUID, event(t, "/", "em-room", "y"), adapter.BroadcastOptions{Rooms: []string{"r1"}}}, EmitterOrder},
		{"A", "09", Broadcast{EmitterUID, event(t, "/", "em-multi", 2),
			adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}, Except: []string{"r3"}, Flags: adapter.Flags{Volatile: true}}}, EmitterOrder},
		{"A", "22", Broadcast{"ew8yp-", event(t, "/", "private", 1), adapter.BroadcastOptions{Rooms: []string{"TNjnDNw97xqBOg7oAAAA"}}}, AdapterOrder},
		{"A", "25", Broadcast{"jOt2l2", event(t, "/admin", "adm", 1), adapter.BroadcastOptions{}}, AdapterOrder},
		{"B", "E1", Broadcast{"RV1Ujy", event(t, "/", "rs", 1),
			adapter.BroadcastOptions{Rooms: []string{"sAg4mMxf5-PNyz0uAAAA"}, Flags: adapter.Flags{ExpectSingleResponse: true}}}, AdapterOrder},
		{"B", "E2", Broadcast{"RV1Ujy", event(t, "/", "from-sock", 1),
			adapter.BroadcastOptions{Rooms: []string{"r1"}, Except: []string{"XlW_pkyAWxS8MQpeAAAC"}}}, AdapterOrder},
		{"B", "E3", Broadcast{"RV1Ujy", event(t, "/", "bcast", 1), adapter.BroadcastOptions{Except: []string{"XlW_pkyAWxS8MQpeAAAC"}}}, AdapterOrder},
		{"B", "E6", Broadcast{"RV1Ujy", event(t, "/", "unicode", "héllo✓", raw(`{"nested":[1,{"k":null}]}`)),
			adapter.BroadcastOptions{Flags: adapter.Flags{Compress: boolp(true)}}}, AdapterOrder},
		{"E", "classic", Broadcast{"WfXwqJ", event(t, "/", "direct", 1), adapter.BroadcastOptions{Rooms: []string{"lzrXebnClInUGhkSAAAA"}}}, AdapterOrder},
	}
	for _, c := range cases {
		ch := PublishChannel(key, c.b.Packet.Namespace, c.b.Opts.Rooms)
		if c.b.Packet.Namespace == "" {
			ch = PublishChannel(key, "/", c.b.Opts.Rooms)
		}
		want := vector(t, c.appendix, c.step, ch, 0)
		got, err := EncodeBroadcast(&c.b, c.order)
		checkBytes(t, c.appendix+c.step, got, err, want)

		if uid, ok := BroadcastUID(want); !ok || uid != c.b.UID {
			t.Errorf("%s%s: BroadcastUID %q %v", c.appendix, c.step, uid, ok)
		}
		// Decoding gives the same broadcast back.
		d, err := DecodeBroadcast(want)
		if err != nil {
			t.Errorf("%s%s: decode: %v", c.appendix, c.step, err)
			continue
		}
		exp := c.b
		if exp.Packet.Namespace == "" {
			exp.Packet.Namespace = "/"
		}
		if !reflect.DeepEqual(*d, exp) {
			t.Errorf("%s%s: decoded %+v\nwant %+v", c.appendix, c.step, *d, exp)
		}
	}
}

// TestBuildBinaryBroadcast builds step 05 of Appendix A: binary as bin,
// the Date as timestamp 32. Herald's packets cannot hold a Date (JSON has
// none), so the date part is built as a Value.
func TestBuildBinaryBroadcast(t *testing.T) {
	want := vector(t, "A", "05", "socket.io#/#", 0)
	b := Broadcast{UID: "ew8yp-", Packet: event(t, "/", "bin", []byte{1, 2, 3}, raw(`{"d":0}`))}
	v, err := b.Value(AdapterOrder)
	if err != nil {
		t.Fatal(err)
	}
	// Replace {"d":0} by {d: new Date(0)}.
	v.Elems()[1].Get("data").Elems()[2].Members()[0].Value = Date(0)
	if got := EncodeMsgpack(v); !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	d, err := DecodeBroadcast(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Packet.Data) != `["bin",{"_placeholder":true,"num":0},{"d":"1970-01-01T00:00:00.000Z"}]` ||
		len(d.Packet.Attachments) != 1 || !bytes.Equal(d.Packet.Attachments[0], []byte{1, 2, 3}) || d.Packet.Type != parser.Event {
		t.Errorf("decoded %+v", d.Packet)
	}
	// A BINARY_EVENT is published as EVENT with bin.
	b.Packet.Type = parser.BinaryEvent
	got, err := EncodeBroadcast(&b, AdapterOrder)
	if err != nil || !bytes.Contains(got, []byte{0xa4, 't', 'y', 'p', 'e', 0x02}) || !bytes.Contains(got, []byte{0xc4, 3, 1, 2, 3}) {
		t.Errorf("binary event: %x %v", got, err)
	}
}

// TestDecodeForeignBroadcasts decodes the hand-written payloads of
// Appendix F that Node.js delivered.
func TestDecodeForeignBroadcasts(t *testing.T) {
	cases := []struct {
		step, channel string
		want          Broadcast
	}{
		{"case 1", "socket.io#/#", Broadcast{"go1", parser.Packet{Type: parser.Event, Namespace: "/", Data: raw(`["g1",7,1.5]`)}, adapter.BroadcastOptions{}}},
		{"case 2", "socket.io#/#", Broadcast{"emitter", parser.Packet{Type: parser.Event, Namespace: "/", Data: raw(`["g2",1]`)}, adapter.BroadcastOptions{}}},
		{"case 3", "socket.io#/#42#", Broadcast{"go1", parser.Packet{Type: parser.Event, Namespace: "/", Data: raw(`["g3",1]`)}, adapter.BroadcastOptions{Rooms: []string{"42"}}}},
		{"case 4", "socket.io#/#", Broadcast{"go1", parser.Packet{Type: parser.Event, Namespace: "/",
			Data: raw(`["g4",{"_placeholder":true,"num":0},"1970-01-01T00:00:01.000Z"]`), Attachments: [][]byte{{0xca, 0xfe}}}, adapter.BroadcastOptions{}}},
		{"case 5", "socket.io#/#", Broadcast{"go1", parser.Packet{Type: parser.BinaryEvent, Namespace: "/",
			Data: raw(`["g5",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}}}, adapter.BroadcastOptions{}}},
	}
	for _, c := range cases {
		d, err := DecodeBroadcast(vector(t, "F", c.step, c.channel, 0))
		if err != nil {
			t.Errorf("%s: %v", c.step, err)
			continue
		}
		if !reflect.DeepEqual(*d, c.want) {
			t.Errorf("%s: decoded %+v\nwant %+v", c.step, *d, c.want)
		}
	}
	// Case 6, the 2015 Go emitter's [packet, opts] on socket.io#emitter,
	// is not a broadcast.
	if _, err := DecodeBroadcast(vector(t, "F", "case 6", "socket.io#emitter", 0)); err == nil {
		t.Error("case 6 decoded")
	}
	room, ok := ChannelRoom(DefaultKey, "/", "socket.io#/#42#")
	if !ok || room != "42" {
		t.Errorf("ChannelRoom: %q %v", room, ok)
	}
}

func TestBuildClassicRequests(t *testing.T) {
	opts := func(rooms, except []string) *adapter.BroadcastOptions {
		return &adapter.BroadcastOptions{Rooms: rooms, Except: except}
	}
	req := RequestChannel(DefaultKey, "/")
	cases := []struct {
		appendix, step string
		r              Request
	}{
		{"A", "10", Request{Type: ReqServerSideEmit, UID: EmitterUID, Data: raw(`["em-sse",1,"two"]`)}},
		{"A", "11", Request{Type: ReqRemoteJoin, Opts: opts([]string{"r1"}, nil), Rooms: []string{"r3"}}},
		{"A", "12", Request{Type: ReqRemoteLeave, Opts: opts([]string{"r3"}, nil), Rooms: []string{"r3"}}},
		{"A", "13", Request{Type: ReqRemoteDisconnect, Opts: opts([]string{"nope"}, nil), Close: true}},
		{"A", "14", Request{Type: ReqRemoteFetch, UID: "ew8yp-", RequestID: "_5lZA8", Opts: opts(nil, nil)}},
		{"A", "15", Request{Type: ReqRemoteFetch, UID: "jbWazL", RequestID: "2WGvYN", Opts: opts([]string{"r2"}, nil)}},
		{"A", "16", Request{Type: ReqServerSideEmit, UID: "ew8yp-", Data: raw(`["sse",{"a":1}]`)}},
		{"A", "17", Request{Type: ReqServerSideEmit, UID: "ew8yp-", RequestID: "9LdbNq", Data: raw(`["sse-ack",2]`)}},
		{"A", "18", Request{Type: ReqBroadcast, UID: "ew8yp-", RequestID: "lWBlua", Packet: event(t, "/", "ack-me", 3),
			Opts: &adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: 2 * time.Second}}}},
		{"A", "19", Request{Type: ReqRemoteJoin, UID: "ew8yp-", Opts: opts([]string{"r1"}, nil), Rooms: []string{"r4"}}},
		{"A", "20", Request{Type: ReqAllRooms, UID: "ew8yp-", RequestID: "C19YL6"}},
		{"A", "21", Request{Type: ReqRemoteLeave, UID: "ew8yp-", Opts: opts([]string{"r4"}, nil), Rooms: []string{"r4"}}},
		{"A", "24", Request{Type: ReqRemoteDisconnect, UID: "ew8yp-", Opts: opts([]string{"r2"}, nil)}},
		{"B", "E4", Request{Type: ReqBroadcast, UID: "RV1Ujy", RequestID: "9OOJzw", Packet: event(t, "/", "room-ack", 1),
			Opts: &adapter.BroadcastOptions{Rooms: []string{"r1"}, Flags: adapter.Flags{Timeout: time.Second}}}},
		{"B", "E5", Request{Type: ReqBroadcast, UID: "RV1Ujy", RequestID: "MmeYom", Packet: event(t, "/", "one-ack", 1),
			Opts: &adapter.BroadcastOptions{Rooms: []string{"sAg4mMxf5-PNyz0uAAAA"}, Flags: adapter.Flags{Timeout: time.Second, ExpectSingleResponse: true}}}},
		// Foreign requests of Appendix F, in their captured format.
		{"F", "case 7", Request{Type: ReqServerSideEmit, UID: "go1", Data: raw(`["go-sse-noack",1]`)}},
		{"F", "case 8", Request{Type: ReqServerSideEmit, UID: "go1", RequestID: "abc123", Data: raw(`["go-sse","x"]`)}},
		{"F", "case 10", Request{Type: ReqBroadcast, UID: "go1", RequestID: "req10", Packet: event(t, "/", "go-ack", 1),
			Opts: &adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: time.Second}}}},
	}
	for _, c := range cases {
		n := 0
		if c.step == "E5" {
			n = 1 // after the fetchSockets request of the RemoteSocket
		}
		want := vector(t, c.appendix, c.step, req, n)
		got, err := EncodeRequest(&c.r, Sniff(want))
		checkBytes(t, c.appendix+c.step, got, err, want)
		if c.appendix != "F" {
			// Node.js's own choice of format.
			got, err = EncodeRequest(&c.r, FormatDefault)
			checkBytes(t, c.appendix+c.step+" default format", got, err, want)
		}
		d, err := DecodeRequest(want)
		if err != nil {
			t.Errorf("%s%s: decode: %v", c.appendix, c.step, err)
			continue
		}
		exp := c.r
		if exp.Opts != nil && exp.Type != ReqBroadcast && exp.Opts.Rooms == nil && exp.Opts.Except == nil {
			exp.Opts = &adapter.BroadcastOptions{}
		}
		if !reflect.DeepEqual(*d, exp) {
			t.Errorf("%s%s: decoded %+v\nwant %+v", c.appendix, c.step, *d, exp)
		}
	}
	// Case 9: REMOTE_FETCH in msgpack, with opts lacking flags.
	d, err := DecodeRequest(vector(t, "F", "case 9", req, 0))
	if err != nil || d.Type != ReqRemoteFetch || d.UID != "go1" || d.RequestID != "req9" || d.Opts == nil || !reflect.DeepEqual(d.Opts.Rooms, []string{"r1"}) {
		t.Errorf("case 9: %+v %v", d, err)
	}
}

func TestLegacyRequests(t *testing.T) {
	cases := []struct {
		r    Request
		json string
	}{
		{Request{Type: ReqRemoteJoin, UID: "abc", RequestID: "r1", SID: "s1", Room: "room"}, `{"uid":"abc","requestId":"r1","type":2,"sid":"s1","room":"room"}`},
		{Request{Type: ReqRemoteLeave, UID: "abc", RequestID: "r2", SID: "s1", Room: "room"}, `{"uid":"abc","requestId":"r2","type":3,"sid":"s1","room":"room"}`},
		{Request{Type: ReqRemoteDisconnect, UID: "abc", RequestID: "r3", SID: "s1", Close: true}, `{"uid":"abc","requestId":"r3","type":4,"sid":"s1","close":true}`},
		{Request{Type: ReqSockets, UID: "abc", RequestID: "r4", Rooms: []string{"a", "b"}}, `{"uid":"abc","requestId":"r4","type":0,"rooms":["a","b"]}`},
	}
	for _, c := range cases {
		got, err := EncodeRequest(&c.r, FormatDefault)
		checkBytes(t, c.json, got, err, []byte(c.json))
		d, err := DecodeRequest([]byte(c.json))
		if err != nil || !reflect.DeepEqual(*d, c.r) {
			t.Errorf("%s: decoded %+v %v", c.json, d, err)
		}
		// The same request in msgpack decodes the same.
		mp, err := EncodeRequest(&c.r, FormatMsgpack)
		if err != nil {
			t.Fatal(err)
		}
		d, err = DecodeRequest(mp)
		if err != nil || !reflect.DeepEqual(*d, c.r) {
			t.Errorf("%s msgpack: decoded %+v %v", c.json, d, err)
		}
	}
	resp := []struct {
		r    Response
		json string
	}{
		{Response{Type: ReqRemoteJoin, RequestID: "r1"}, `{"requestId":"r1"}`},
		{Response{Type: ReqSockets, RequestID: "r4", SocketIDs: []string{"s1", "s2"}}, `{"requestId":"r4","sockets":["s1","s2"]}`},
	}
	for _, c := range resp {
		got, err := EncodeResponse(&c.r, FormatDefault)
		checkBytes(t, c.json, got, err, []byte(c.json))
		d, err := DecodeResponse([]byte(c.json))
		if err != nil || !reflect.DeepEqual(*d, c.r) {
			t.Errorf("%s: decoded %+v %v", c.json, d, err)
		}
	}
	if _, err := EncodeRequest(&Request{Type: ReqBroadcastAck}, FormatDefault); err == nil {
		t.Error("BROADCAST_ACK encoded as a request")
	}
	if _, err := EncodeResponse(&Response{Type: ReqBroadcast}, FormatDefault); err == nil {
		t.Error("BROADCAST encoded as a response")
	}
}

// socketRecords builds the records of a fetchSockets answer from the
// handshake and data JSON shown in a capture's view.
func socketRecords(t *testing.T, view string) []SocketRecord {
	t.Helper()
	v := mustValue(t, view)
	if d := v.Get("data"); d.Kind() == KindMap {
		v = d // ClusterAdapter message
	}
	var recs []SocketRecord
	for _, s := range v.Get("sockets").Elems() {
		var rooms []string
		for _, r := range s.Get("rooms").Elems() {
			rooms = append(rooms, r.AsString())
		}
		recs = append(recs, SocketRecord{
			ID:        s.Get("id").AsString(),
			Handshake: mustValue(t, string(EncodeJSON(s.Get("handshake")))),
			Rooms:     rooms,
			Data:      s.Get("data"),
		})
	}
	return recs
}

func viewOf(t *testing.T, appendix, step, channel string) string {
	t.Helper()
	for _, c := range capturedVectors {
		if c.appendix == appendix && strings.HasPrefix(c.step, step) && c.channel == channel {
			return c.view
		}
	}
	t.Fatalf("no capture %s %s %s", appendix, step, channel)
	return ""
}

func TestBuildClassicResponses(t *testing.T) {
	shared := ResponseChannel(DefaultKey, "/")
	specA := SpecificResponseChannel(DefaultKey, "/", "ew8yp-")
	specB := SpecificResponseChannel(DefaultKey, "/", "RV1Ujy")
	cases := []struct {
		appendix, step, channel string
		n                       int
		r                       Response
	}{
		{"A", "14", specA, 0, Response{Type: ReqRemoteFetch, RequestID: "_5lZA8", Sockets: socketRecords(t, viewOf(t, "A", "14", specA))}},
		{"A", "15", shared, 0, Response{Type: ReqRemoteFetch, RequestID: "2WGvYN", Sockets: socketRecords(t, viewOf(t, "A", "15", shared))}},
		{"A", "17", shared, 0, Response{Type: ReqServerSideEmit, RequestID: "9LdbNq", Data: raw(`{"from":"B"}`)}},
		{"A", "18", specA, 0, Response{Type: ReqBroadcastClientCount, RequestID: "lWBlua", ClientCount: 2}},
		{"A", "18", specA, 1, Response{Type: ReqBroadcastAck, RequestID: "lWBlua", Data: raw(`"ack-from-c1"`)}},
		{"A", "18", specA, 2, Response{Type: ReqBroadcastAck, RequestID: "lWBlua", Data: raw(`"ack-from-c2"`)}},
		{"A", "20", specA, 0, Response{Type: ReqAllRooms, RequestID: "C19YL6", Rooms: []string{"TNjnDNw97xqBOg7oAAAA", "r1", "jEwYYHaowoCV3PHgAAAB", "r2", "r4"}}},
		{"B", "E4", specB, 0, Response{Type: ReqBroadcastClientCount, RequestID: "9OOJzw", ClientCount: 2}},
		{"B", "E4", specB, 1, Response{Type: ReqBroadcastAck, RequestID: "9OOJzw", Data: raw(`"ack-from-c1"`)}},
		{"B", "E5", specB, 1, Response{Type: ReqBroadcastClientCount, RequestID: "MmeYom", ClientCount: 1}},
		{"F", "response", shared, 1, Response{Type: ReqBroadcastClientCount, RequestID: "req10", ClientCount: 1}},
		{"F", "response", shared, 2, Response{Type: ReqBroadcastAck, RequestID: "req10", Data: raw(`"pong-1"`)}},
	}
	for _, c := range cases {
		want := vector(t, c.appendix, c.step, c.channel, c.n)
		got, err := EncodeResponse(&c.r, FormatDefault)
		checkBytes(t, c.appendix+c.step, got, err, want)
		d, err := DecodeResponse(want)
		if err != nil {
			t.Errorf("%s%s: decode: %v", c.appendix, c.step, err)
			continue
		}
		if !reflect.DeepEqual(*d, c.r) {
			t.Errorf("%s%s: decoded %+v\nwant %+v", c.appendix, c.step, *d, c.r)
		}
	}
	// The decoded records convert to adapter.SocketInfo.
	d, err := DecodeResponse(vector(t, "A", "15", shared, 0))
	if err != nil {
		t.Fatal(err)
	}
	info := d.Sockets[0].Info()
	want := adapter.SocketInfo{
		ID: "5wtBDJsq1a9jZp-3AAAC",
		Handshake: adapter.Handshake{
			Headers: map[string]string{"sec-websocket-version": "13", "sec-websocket-key": "1oD7gsyjhPnFw50T+WfiVQ==", "connection": "Upgrade",
				"upgrade": "websocket", "sec-websocket-extensions": "permessage-deflate; client_max_window_bits", "host": "127.0.0.1:3101"},
			Time:    "Sun Nov 22 2026 15:41:25 GMT+0000 (Coordinated Universal Time)",
			Address: "::ffff:127.0.0.1",
			Issued:  1795362085272,
			URL:     "/socket.io/?name=c3&rooms=r2&EIO=4&transport=websocket",
			Query:   map[string]string{"name": "c3", "rooms": "r2", "EIO": "4", "transport": "websocket"},
			Auth:    raw(`{}`),
		},
		Rooms: []string{"5wtBDJsq1a9jZp-3AAAC", "r2"},
		Data:  raw(`{"name":"c3","server":"A"}`),
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Info:\n got %+v\nwant %+v", info, want)
	}
	// And back: the record of a Go SocketInfo has socket.io's member order
	// (headers and query sorted, Go maps having no order).
	rec, err := NewSocketRecord(info)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(EncodeJSON(rec.value())); got != `{"id":"5wtBDJsq1a9jZp-3AAAC","handshake":{"headers":{"connection":"Upgrade","host":"127.0.0.1:3101",`+
		`"sec-websocket-extensions":"permessage-deflate; client_max_window_bits","sec-websocket-key":"1oD7gsyjhPnFw50T+WfiVQ==",`+
		`"sec-websocket-version":"13","upgrade":"websocket"},"time":"Sun Nov 22 2026 15:41:25 GMT+0000 (Coordinated Universal Time)",`+
		`"address":"::ffff:127.0.0.1","xdomain":false,"secure":false,"issued":1795362085272,`+
		`"url":"/socket.io/?name=c3&rooms=r2&EIO=4&transport=websocket","query":{"EIO":"4","name":"c3","rooms":"r2","transport":"websocket"},`+
		`"auth":{}},"rooms":["5wtBDJsq1a9jZp-3AAAC","r2"],"data":{"name":"c3","server":"A"}}` {
		t.Errorf("NewSocketRecord: %s", got)
	}
	if again := rec.Info(); !reflect.DeepEqual(again, info) {
		t.Errorf("Info of NewSocketRecord:\n got %+v\nwant %+v", again, info)
	}
	// The REMOTE_FETCH answer of Appendix F case 9 (socket in rooms r1 and "42").
	d, err = DecodeResponse(vector(t, "F", "response", shared, 0))
	if err != nil || d.Type != ReqRemoteFetch || len(d.Sockets) != 1 || !reflect.DeepEqual(d.Sockets[0].Rooms, []string{"ftIJ-FxzRF99I11EAAAB", "r1", "42"}) {
		t.Errorf("case 9 answer: %+v %v", d, err)
	}
}

func TestBuildClusterMessages(t *testing.T) {
	const a, b = "939d07c6268f5c1c", "997cd38ea46862a6"
	main := BroadcastChannel(DefaultKey, "/")
	respA := ShardedResponseChannel(DefaultKey, "/", a)
	respB := ShardedResponseChannel(DefaultKey, "/", b)
	opts := func(rooms, except []string) adapter.BroadcastOptions {
		return adapter.BroadcastOptions{Rooms: rooms, Except: except}
	}
	cases := []struct {
		appendix, step, channel string
		n                       int
		m                       ClusterMessage
	}{
		{"C", "01", main, 0, ClusterMessage{Type: MsgBroadcast, UID: a, Nsp: "/", Packet: event(t, "/", "hi", 1)}},
		{"C", "02", "socket.io#/#r1#", 0, ClusterMessage{Type: MsgBroadcast, UID: a, Nsp: "/", Packet: event(t, "/", "room-msg", "x"), Opts: opts([]string{"r1"}, []string{"r2"})}},
		{"C", "03", main, 0, ClusterMessage{Type: MsgBroadcast, UID: a, Nsp: "/", Packet: event(t, "/", "multi", true), Opts: opts([]string{"r1", "r2"}, nil)}},
		{"C", "04", main, 0, ClusterMessage{Type: MsgBroadcast, UID: a, Nsp: "/", Packet: event(t, "/", "flags", 1.5, -3, 300, nil),
			Opts: adapter.BroadcastOptions{Flags: adapter.Flags{Volatile: true, Compress: boolp(false)}}}},
		{"C", "14", main, 0, ClusterMessage{Type: MsgFetchSockets, UID: a, Nsp: "/", RequestID: "2442a45d33967fff"}},
		{"C", "14", respA, 0, ClusterMessage{Type: MsgFetchSocketsResponse, UID: b, Nsp: "/", RequestID: "2442a45d33967fff",
			Sockets: socketRecords(t, viewOf(t, "C", "14", respA))}},
		{"C", "15", main, 0, ClusterMessage{Type: MsgFetchSockets, UID: b, Nsp: "/", RequestID: "707b4ebc75730305", Opts: opts([]string{"r2"}, nil)}},
		{"C", "15", respB, 0, ClusterMessage{Type: MsgFetchSocketsResponse, UID: a, Nsp: "/", RequestID: "707b4ebc75730305",
			Sockets: socketRecords(t, viewOf(t, "C", "15", respB))}},
		{"C", "16", main, 0, ClusterMessage{Type: MsgServerSideEmit, UID: a, Nsp: "/", Data: raw(`["sse",{"a":1}]`)}},
		{"C", "17", main, 0, ClusterMessage{Type: MsgServerSideEmit, UID: a, Nsp: "/", RequestID: "34239465b1980aa1", Data: raw(`["sse-ack",2]`)}},
		{"C", "17", respA, 0, ClusterMessage{Type: MsgServerSideEmitResponse, UID: b, Nsp: "/", RequestID: "34239465b1980aa1", Data: raw(`{"from":"B"}`)}},
		{"C", "18", main, 0, ClusterMessage{Type: MsgBroadcast, UID: a, Nsp: "/", RequestID: "8bc1502b7a86b686", Packet: event(t, "/", "ack-me", 3),
			Opts: adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: 2 * time.Second}}}},
		{"C", "18", respA, 0, ClusterMessage{Type: MsgBroadcastClientCount, UID: b, Nsp: "/", RequestID: "8bc1502b7a86b686", ClientCount: 2}},
		{"C", "18", respA, 1, ClusterMessage{Type: MsgBroadcastAck, UID: b, Nsp: "/", RequestID: "8bc1502b7a86b686", Data: raw(`"ack-from-c1"`)}},
		{"C", "18", respA, 2, ClusterMessage{Type: MsgBroadcastAck, UID: b, Nsp: "/", RequestID: "8bc1502b7a86b686", Data: raw(`"ack-from-c2"`)}},
		{"C", "19", main, 0, ClusterMessage{Type: MsgSocketsJoin, UID: a, Nsp: "/", Opts: opts([]string{"r1"}, nil), Rooms: []string{"r4"}}},
		{"C", "21", main, 0, ClusterMessage{Type: MsgSocketsLeave, UID: a, Nsp: "/", Opts: opts([]string{"r4"}, nil), Rooms: []string{"r4"}}},
		{"C", "22", main, 0, ClusterMessage{Type: MsgBroadcast, UID: a, Nsp: "/", Packet: event(t, "/", "private", 1), Opts: opts([]string{"Z0a_kKJayfBjiYV9AAAA"}, nil)}},
		{"C", "24", main, 0, ClusterMessage{Type: MsgDisconnectSockets, UID: a, Nsp: "/", Opts: opts([]string{"r2"}, nil)}},
		{"C", "25", "socket.io#/admin#", 0, ClusterMessage{Type: MsgBroadcast, UID: "2e10a27159149bb3", Nsp: "/admin", Packet: event(t, "/admin", "adm", 1)}},
		{"E", "sharded", main, 0, ClusterMessage{Type: MsgBroadcast, UID: "a8f4d862af191656", Nsp: "/", Packet: event(t, "/", "direct", 1), Opts: opts([]string{"ksZxdPmvWGvQUdHsAAAC"}, nil)}},
		{"E", "sharded", main, 1, ClusterMessage{Type: MsgBroadcast, UID: "a8f4d862af191656", Nsp: "/", Packet: event(t, "/", "all", 2)}},
	}
	for _, c := range cases {
		want := vector(t, c.appendix, c.step, c.channel, c.n)
		got, err := EncodeClusterMessage(&c.m)
		checkBytes(t, c.appendix+c.step+" "+c.m.Type.String(), got, err, want)
		if !c.m.Type.IsResponse() {
			if ch := ShardedChannel(DefaultKey, c.m.Nsp, Dynamic, &c.m); ch != c.channel {
				t.Errorf("%s%s: channel %s, want %s", c.appendix, c.step, ch, c.channel)
			}
		}
		d, err := DecodeClusterMessage(want)
		if err != nil {
			t.Errorf("%s%s: decode: %v", c.appendix, c.step, err)
			continue
		}
		if !reflect.DeepEqual(*d, c.m) {
			t.Errorf("%s%s: decoded %+v\nwant %+v", c.appendix, c.step, *d, c.m)
		}
	}
}

// TestBuildClusterBinary builds step 05 of Appendix C: binary data makes
// the whole message msgpack.
func TestBuildClusterBinary(t *testing.T) {
	want := vector(t, "C", "05", BroadcastChannel(DefaultKey, "/"), 0)
	m := ClusterMessage{Type: MsgBroadcast, UID: "939d07c6268f5c1c", Nsp: "/", Packet: event(t, "/", "bin", []byte{1, 2, 3}, raw(`{"d":0}`))}
	v, err := m.Value()
	if err != nil {
		t.Fatal(err)
	}
	v.Get("data").Get("packet").Get("data").Elems()[2].Members()[0].Value = Date(0)
	if got := EncodeMsgpack(v); !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	got, err := EncodeClusterMessage(&m)
	if err != nil || got[0] != 0x84 {
		t.Errorf("binary broadcast not msgpack: %x %v", got, err)
	}
	d, err := DecodeClusterMessage(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Packet.Data) != `["bin",{"_placeholder":true,"num":0},{"d":"1970-01-01T00:00:00.000Z"}]` || d.Packet.Namespace != "/" {
		t.Errorf("decoded %+v", d.Packet)
	}
	// An ack value holding binary makes the response msgpack too.
	j := ClusterMessage{Type: MsgServerSideEmitResponse, UID: "u", Nsp: "/", RequestID: "r", Data: raw(`{"_placeholder":true,"num":0}`), Attachments: [][]byte{{7}}}
	got, err = EncodeClusterMessage(&j)
	checkBytes(t, "binary ack", got, err, EncodeMsgpack(mustValueWith(t, j)))
	h := ClusterMessage{Type: MsgHeartbeat, UID: "u", Nsp: "/"}
	got, err = EncodeClusterMessage(&h)
	checkBytes(t, "heartbeat", got, err, []byte(`{"type":2,"uid":"u","nsp":"/"}`))
}

func mustValueWith(t *testing.T, m ClusterMessage) Value {
	v, err := m.Value()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDecodeStreamsMessages decodes the pub/sub messages of the Redis
// streams adapter (Appendix D, @msgpack/msgpack) and the base64-decoded
// stream entry data.
func TestDecodeStreamsMessages(t *testing.T) {
	main := BroadcastChannel(DefaultKey, "/")
	d, err := DecodeClusterMessage(vector(t, "D", "07", main, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := ClusterMessage{Type: MsgBroadcast, UID: "32f19d54aa564dce", Nsp: "/", RequestID: "6f8fe5acd05b5f14",
		Packet: parser.Packet{Type: parser.Event, Namespace: "/", Data: raw(`["ack-me",3]`)},
		Opts:   adapter.BroadcastOptions{Flags: adapter.Flags{Timeout: 2 * time.Second}}}
	if !reflect.DeepEqual(*d, want) {
		t.Errorf("decoded %+v\nwant %+v", *d, want)
	}
	// A stream entry of step 02: fields uid, nsp, type "3", data (JSON).
	data := mustValue(t, `{"packet":{"type":2,"data":["room-msg","x"]},"opts":{"rooms":["r1"],"except":["r2"],"flags":{}}}`)
	e, err := ClusterMessageFromValue(Map(Member{"type", Int(3)}, Member{"data", data}, Member{"uid", Str("32f19d54aa564dce")}, Member{"nsp", Str("/")}))
	if err != nil {
		t.Fatal(err)
	}
	wantE := ClusterMessage{Type: MsgBroadcast, UID: "32f19d54aa564dce", Nsp: "/", Packet: event(t, "/", "room-msg", "x"), Opts: adapter.BroadcastOptions{Rooms: []string{"r1"}, Except: []string{"r2"}}}
	if !reflect.DeepEqual(*e, wantE) {
		t.Errorf("stream entry: %+v\nwant %+v", *e, wantE)
	}
	dv, err := wantE.DataValue()
	if err != nil || string(EncodeJSON(dv)) != `{"packet":{"type":2,"data":["room-msg","x"]},"opts":{"rooms":["r1"],"except":["r2"],"flags":{}}}` {
		t.Errorf("DataValue: %s %v", EncodeJSON(dv), err)
	}
	// XADD data of step 03: msgpack of {packet, opts} (base64 on the stream).
	v, err := DecodeMsgpack(mustHex(t, "82a67061636b657482a47479706502a46461746192a362696ec403010203a46f70747383a5726f6f6d7390a665786365707490a5666c61677380"))
	if err != nil {
		t.Fatal(err)
	}
	if got := v.String(); got != `{"packet":{"type":2,"data":["bin","<bin 010203>"]},"opts":{"rooms":[],"except":[],"flags":{}}}` {
		t.Errorf("stream data: %s", got)
	}
}

func TestShardedChannels(t *testing.T) {
	sid := "YVkhz8tTc52ue6BeAAAA"
	cases := []struct {
		mode SubscriptionMode
		m    ClusterMessage
		want string
	}{
		{Dynamic, ClusterMessage{Type: MsgBroadcast, Opts: adapter.BroadcastOptions{Rooms: []string{"r1"}}}, "socket.io#/#r1#"},
		{Dynamic, ClusterMessage{Type: MsgBroadcast, Opts: adapter.BroadcastOptions{Rooms: []string{sid}}}, "socket.io#/#"},
		{Dynamic, ClusterMessage{Type: MsgBroadcast, RequestID: "x", Opts: adapter.BroadcastOptions{Rooms: []string{"r1"}}}, "socket.io#/#"},
		{Dynamic, ClusterMessage{Type: MsgBroadcast, Opts: adapter.BroadcastOptions{Rooms: []string{"r1", "r2"}}}, "socket.io#/#"},
		{Dynamic, ClusterMessage{Type: MsgSocketsJoin, Opts: adapter.BroadcastOptions{Rooms: []string{"r1"}}}, "socket.io#/#"},
		{Static, ClusterMessage{Type: MsgBroadcast, Opts: adapter.BroadcastOptions{Rooms: []string{"r1"}}}, "socket.io#/#"},
		{DynamicPrivate, ClusterMessage{Type: MsgBroadcast, Opts: adapter.BroadcastOptions{Rooms: []string{sid}}}, "socket.io#/#" + sid + "#"},
	}
	for _, c := range cases {
		if got := ShardedChannel(DefaultKey, "/", c.mode, &c.m); got != c.want {
			t.Errorf("%v %+v: %s, want %s", c.mode, c.m.Opts.Rooms, got, c.want)
		}
	}
	if !LooksLikeSocketID(sid) || LooksLikeSocketID("r1") || LooksLikeSocketID("ééééééééééééééééééé") != false || !LooksLikeSocketID("éééééééééééééééééééé") {
		t.Error("LooksLikeSocketID")
	}
	if !ShardedRoomSubscribed(Dynamic, false) || ShardedRoomSubscribed(Dynamic, true) || ShardedRoomSubscribed(Static, false) || !ShardedRoomSubscribed(DynamicPrivate, true) {
		t.Error("ShardedRoomSubscribed")
	}
}

func TestClassicChannels(t *testing.T) {
	checks := map[string]string{
		BroadcastChannel("socket.io", "/"):               "socket.io#/#",
		RoomChannel("socket.io", "/", "r1"):              "socket.io#/#r1#",
		BroadcastPattern("socket.io", "/admin"):          "socket.io#/admin#*",
		RequestChannel("socket.io", "/"):                 "socket.io-request#/#",
		ResponseChannel("socket.io", "/"):                "socket.io-response#/#",
		SpecificResponseChannel("socket.io", "/", "ab"):  "socket.io-response#/#ab#",
		ShardedResponseChannel("socket.io", "/", "0a1b"): "socket.io#/#0a1b#",
		PublishChannel("k", "/", nil):                    "k#/#",
		PublishChannel("k", "/", []string{"r"}):          "k#/#r#",
		PublishChannel("k", "/", []string{"r", "r"}):     "k#/#r#",
		PublishChannel("k", "/", []string{"r", "s"}):     "k#/#",
	}
	for got, want := range checks {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
	for _, c := range []struct {
		ch, room string
		ok       bool
	}{
		{"socket.io#/#", "", true},
		{"socket.io#/#r1#", "r1", true},
		{"socket.io#/admin#", "", false},
		{"socket.io-request#/#", "", false},
	} {
		room, ok := ChannelRoom("socket.io", "/", c.ch)
		if room != c.room || ok != c.ok {
			t.Errorf("ChannelRoom(%s) = %q %v", c.ch, room, ok)
		}
	}
	if id := NewClassicID(); len(id) != 6 || strings.Trim(id, uidChars) != "" {
		t.Errorf("NewClassicID %q", id)
	}
	if id := NewClusterID(); len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("NewClusterID %q", id)
	}
}
