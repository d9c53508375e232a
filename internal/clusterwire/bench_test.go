package clusterwire

import (
	"testing"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/parser"
)

func benchBroadcast(b *testing.B) *Broadcast {
	p, err := parser.NewEvent("/", "chat message", map[string]any{"user": "alice", "text": "hello, world", "ts": int64(1795362085258)})
	if err != nil {
		b.Fatal(err)
	}
	return &Broadcast{UID: "ew8yp-", Packet: *p, Opts: adapter.BroadcastOptions{Rooms: []string{"room-1"}, Except: []string{"TNjnDNw97xqBOg7oAAAA"}}}
}

func BenchmarkEncodeBroadcast(b *testing.B) {
	m := benchBroadcast(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeBroadcast(m, AdapterOrder); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBroadcast(b *testing.B) {
	msg, err := EncodeBroadcast(benchBroadcast(b), AdapterOrder)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBroadcast(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func benchClusterMessage(b *testing.B) *ClusterMessage {
	m := benchBroadcast(b)
	return &ClusterMessage{Type: MsgBroadcast, UID: "939d07c6268f5c1c", Nsp: "/", Packet: m.Packet, Opts: m.Opts}
}

func BenchmarkEncodeClusterMessage(b *testing.B) {
	m := benchClusterMessage(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeClusterMessage(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeClusterMessage(b *testing.B) {
	msg, err := EncodeClusterMessage(benchClusterMessage(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeClusterMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
