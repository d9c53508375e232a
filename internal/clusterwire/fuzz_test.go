package clusterwire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"testing"
)

// addSeeds adds every captured message and every encoder case.
func addSeeds(f *testing.F) {
	for _, c := range capturedVectors {
		b, _ := hex.DecodeString(c.hex)
		f.Add(b)
	}
	for _, c := range encodeCases {
		b, _ := hex.DecodeString(c.hex)
		f.Add(b)
	}
	for _, h := range []string{"dd7fffffff", "df7fffffff01", "c70cff0000000000000000000001", "d700ffffffffffffffff", "92d40000c0",
		"93a3676f3183a47479706502a46461746192c40101" + "81ab5f706c616365686f6c646572c3" + "a36e7370a12f80"} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
}

// countValues returns the number of values in v.
func countValues(v Value) int {
	n := 1
	for _, e := range v.arr {
		n += countValues(e)
	}
	for _, m := range v.obj {
		n += countValues(m.Value)
	}
	return n
}

// jsNormal returns what v becomes after a trip through notepack.io: the
// encoder writes integral floats as integers, skips undefined members,
// writes undefined elements as nil, and an invalid date as the epoch.
func jsNormal(v Value) Value {
	switch v.kind {
	case KindUndefined:
		return Nil()
	case KindFloat:
		f := math.Float64frombits(v.bits)
		if f == math.Trunc(f) {
			switch {
			case f >= 0 && f < 1<<64:
				return Uint(uint64(f))
			case f < 0 && f >= -(1<<63):
				return Int(int64(f))
			}
		}
	case KindDate:
		if _, ok := v.DateMillis(); !ok {
			return Date(0)
		}
	case KindArray:
		elems := make([]Value, len(v.arr))
		for i, e := range v.arr {
			elems[i] = jsNormal(e)
		}
		return Array(elems...)
	case KindMap:
		var ms []Member
		for _, m := range v.obj {
			if m.Value.kind != KindUndefined {
				ms = append(ms, Member{m.Key, jsNormal(m.Value)})
			}
		}
		return Map(ms...)
	}
	return v
}

func FuzzDecodeMsgpack(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeMsgpack(b)
		if err != nil {
			return
		}
		// Bounded allocation: every value took at least one input byte.
		if n := countValues(v); n > len(b) {
			t.Fatalf("%d values from %d bytes", n, len(b))
		}
		b1 := EncodeMsgpack(v)
		v1, err := DecodeMsgpack(b1)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", b1, err)
		}
		if !v1.Equal(jsNormal(v)) {
			t.Fatalf("round trip: %v, want %v", v1, jsNormal(v))
		}
		// From there the encoding is stable (the first trip may turn an
		// invalid date into the epoch, as notepack.io does).
		b2 := EncodeMsgpack(v1)
		v2, err := DecodeMsgpack(b2)
		if err != nil || !v2.Equal(v1) {
			t.Fatalf("second trip of %x: %v %v", b2, v2, err)
		}
		if b3 := EncodeMsgpack(v2); !bytes.Equal(b2, b3) {
			t.Fatalf("not stable: %x then %x", b2, b3)
		}
		// The JSON views are valid JSON.
		if j := EncodeJSON(v); !json.Valid(j) {
			t.Fatalf("EncodeJSON: invalid %q", j)
		}
		data, atts := ValueToData(v)
		if v.IsUndefined() {
			if data != nil || atts != nil {
				t.Fatalf("ValueToData(undefined) = %q %x", data, atts)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("ValueToData: invalid %q", data)
		}
		if len(atts) > 0 && hasPlaceholderMap(v) {
			return // ambiguous, refused by the message decoders
		}
		dv, err := DataToValue(data, atts)
		if err != nil {
			t.Fatalf("DataToValue(%s): %v", data, err)
		}
		data2, atts2 := ValueToData(dv)
		if !bytes.Equal(data, data2) || !slices.EqualFunc(atts, atts2, bytes.Equal) {
			t.Fatalf("data not stable: %s then %s", data, data2)
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range capturedVectors {
		if c.encoding == "JSON" {
			b, _ := hex.DecodeString(c.hex)
			f.Add(b)
		}
	}
	for _, s := range []string{`[1,1.5,-0,1e400,"\ud800",{"a":null}]`, `{"_placeholder":true,"num":0}`, `"\u0000\u001f"`, `18446744073709551616`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeJSON(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("DecodeJSON accepted invalid JSON %q", b)
		}
		j := EncodeJSON(v)
		v1, err := DecodeJSON(j)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", j, err)
		}
		if j2 := EncodeJSON(v1); !bytes.Equal(j, j2) {
			t.Fatalf("not stable: %q then %q", j, j2)
		}
		// Data conversion to msgpack and back is stable too.
		mp := EncodeMsgpack(v)
		data, atts, err := MsgpackToData(mp)
		if err != nil {
			t.Fatalf("MsgpackToData: %v", err)
		}
		if !bytes.Equal(data, j) || len(atts) != 0 {
			t.Fatalf("via msgpack: %q, want %q", data, j)
		}
	})
}

func FuzzDataToMsgpack(f *testing.F) {
	f.Add([]byte(`["bin",{"_placeholder":true,"num":0},{"x":[{"_placeholder":true,"num":1}]}]`), uint8(2))
	f.Add([]byte(`["flags",1.5,-3,300,null]`), uint8(0))
	f.Add([]byte(`["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]`), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		atts := make([][]byte, n%8)
		for i := range atts {
			atts[i] = []byte{byte(i), 0xff}
		}
		mp, err := DataToMsgpack(nil, data, atts)
		if err != nil {
			return
		}
		data1, atts1, err := MsgpackToData(mp)
		if err != nil {
			t.Fatalf("MsgpackToData(%x): %v", mp, err)
		}
		// From there the conversion is stable (the first trip turns ±Inf
		// from overflowing numbers into null, as JSON.stringify does).
		mp2, err := DataToMsgpack(nil, data1, atts1)
		if err != nil {
			t.Fatalf("DataToMsgpack(%s): %v", data1, err)
		}
		data2, atts2, err := MsgpackToData(mp2)
		if err != nil || !bytes.Equal(data1, data2) || !slices.EqualFunc(atts1, atts2, bytes.Equal) {
			t.Fatalf("data not stable: %s then %s (%v)", data1, data2, err)
		}
		if mp3, err := DataToMsgpack(nil, data2, atts2); err != nil || !bytes.Equal(mp2, mp3) {
			t.Fatalf("not stable: %x then %x (%v)", mp2, mp3, err)
		}
	})
}

func FuzzDecodeBroadcast(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		uid, uidOK := BroadcastUID(b)
		m, err := DecodeBroadcast(b)
		if err != nil {
			return
		}
		if !uidOK || uid != m.UID {
			t.Fatalf("BroadcastUID %q %v, decoded %q", uid, uidOK, m.UID)
		}
		for _, order := range []KeyOrder{AdapterOrder, EmitterOrder} {
			b1, err := EncodeBroadcast(m, order)
			if err != nil {
				t.Fatalf("encode %+v: %v", m, err)
			}
			m1, err := DecodeBroadcast(b1)
			if err != nil {
				t.Fatalf("re-decode of %x: %v", b1, err)
			}
			if m1.UID != m.UID || !reflect.DeepEqual(m1.Opts, m.Opts) || m1.Packet.Namespace != m.Packet.Namespace ||
				m1.Packet.Type != wirePacketType(m.Packet.Type) || m1.Packet.ID != m.Packet.ID || m1.Packet.HasID != m.Packet.HasID {
				t.Fatalf("round trip: %+v, want %+v", m1, m)
			}
			if !bytes.Equal(m1.Packet.Data, m.Packet.Data) || !slices.EqualFunc(m1.Packet.Attachments, m.Packet.Attachments, bytes.Equal) {
				t.Fatalf("data: %s %x, want %s %x", m1.Packet.Data, m1.Packet.Attachments, m.Packet.Data, m.Packet.Attachments)
			}
			b2, err := EncodeBroadcast(m1, order)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("not stable: %x then %x (%v)", b1, b2, err)
			}
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		format := Sniff(b)
		b1, err := EncodeRequest(r, format)
		if err != nil {
			if r.Type < ReqSockets || r.Type > ReqBroadcast {
				return // not a request type
			}
			t.Fatalf("encode %+v: %v", r, err)
		}
		r1, err := DecodeRequest(b1)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", b1, err)
		}
		if r1.Type != r.Type || r1.UID != r.UID || r1.RequestID != r.RequestID {
			t.Fatalf("round trip: %+v, want %+v", r1, r)
		}
		b2, err := EncodeRequest(r1, format)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("not stable: %q then %q (%v)", b1, b2, err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err != nil {
			return
		}
		format := Sniff(b)
		b1, err := EncodeResponse(r, format)
		if err != nil {
			switch r.Type {
			case ReqSockets, ReqAllRooms, ReqRemoteJoin, ReqRemoteLeave, ReqRemoteDisconnect, ReqRemoteFetch,
				ReqServerSideEmit, ReqBroadcastClientCount, ReqBroadcastAck:
				t.Fatalf("encode %+v: %v", r, err)
			}
			return // not a response type
		}
		r1, err := DecodeResponse(b1)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", b1, err)
		}
		if r1.RequestID != r.RequestID {
			t.Fatalf("round trip: %+v, want %+v", r1, r)
		}
		b2, err := EncodeResponse(r1, format)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("not stable: %q then %q (%v)", b1, b2, err)
		}
	})
}

func FuzzDecodeClusterMessage(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeClusterMessage(b)
		if err != nil {
			return
		}
		b1, err := EncodeClusterMessage(m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		m1, err := DecodeClusterMessage(b1)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", b1, err)
		}
		if m1.Type != m.Type || m1.UID != m.UID || m1.Nsp != m.Nsp {
			t.Fatalf("round trip: %+v, want %+v", m1, m)
		}
		b2, err := EncodeClusterMessage(m1)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("not stable: %q then %q (%v)", b1, b2, err)
		}
	})
}
