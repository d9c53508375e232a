package emitter

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/herald-rt/herald/internal/clusterwire"
	"github.com/herald-rt/herald/parser"
)

// published is one message an Emitter handed to Redis.
type published struct {
	channel string
	msg     []byte
}

// recorder returns an Emitter whose messages are recorded instead of
// published.
func recorder(cfg Config) (*Emitter, *[]published) {
	var got []published
	e := newEmitter(cfg)
	e.c.publish = func(_ context.Context, channel string, msg []byte) error {
		got = append(got, published{channel, slices.Clone(msg)})
		return nil
	}
	return e, &got
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// step is one operation of the reference capture, run on an Emitter.
type step func(ctx context.Context, e *Emitter) error

// The emitter steps 07–13 of Appendix A, as @socket.io/redis-emitter
// 5.1.0 ran them.
var (
	step07 step = func(ctx context.Context, e *Emitter) error {
		return e.Emit(ctx, "from-emitter", map[string]int{"a": 1})
	}
	step08 step = func(ctx context.Context, e *Emitter) error { return e.To("r1").Emit(ctx, "em-room", "y") }
	step09 step = func(ctx context.Context, e *Emitter) error {
		return e.To("r1").To("r2").Except("r3").Volatile().Emit(ctx, "em-multi", 2)
	}
	step10 step = func(ctx context.Context, e *Emitter) error { return e.ServerSideEmit(ctx, "em-sse", 1, "two") }
	step11 step = func(ctx context.Context, e *Emitter) error { return e.In("r1").SocketsJoin(ctx, "r3") }
	step12 step = func(ctx context.Context, e *Emitter) error { return e.In("r3").SocketsLeave(ctx, "r3") }
	step13 step = func(ctx context.Context, e *Emitter) error { return e.In("nope").DisconnectSockets(ctx, true) }
)

// TestClassicGolden checks the classic messages byte for byte against the
// messages @socket.io/redis-emitter 5.1.0 published in the reference
// capture (Appendix A, steps 07–13).
func TestClassicGolden(t *testing.T) {
	tests := []struct {
		name    string
		run     step
		channel string
		hex     string
	}{
		{"07-emitter.emit(from-emitter,{a:1})", step07, "socket.io#/#",
			"93a7656d697474657283a47479706502a46461746192ac66726f6d2d656d697474657281a16101a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490"},
		{"08-emitter.to(r1).emit(em-room,y)", step08, "socket.io#/#r1#",
			"93a7656d697474657283a47479706502a46461746192a7656d2d726f6f6da179a36e7370a12f83a5726f6f6d7391a27231a5666c61677380a665786365707490"},
		{"09-emitter.to(r1).to(r2).except(r3).volatile.emit(em-multi,2)", step09, "socket.io#/#",
			"93a7656d697474657283a47479706502a46461746192a8656d2d6d756c746902a36e7370a12f83a5726f6f6d7392a27231a27232a5666c61677381a8766f6c6174696c65c3a665786365707491a27233"},
		{"10-emitter.serverSideEmit(em-sse,1,two)", step10, "socket.io-request#/#",
			"7b22756964223a22656d6974746572222c2274797065223a362c2264617461223a5b22656d2d737365222c312c2274776f225d7d"},
		{"11-emitter.in(r1).socketsJoin(r3)", step11, "socket.io-request#/#",
			"7b2274797065223a322c226f707473223a7b22726f6f6d73223a5b227231225d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b227233225d7d"},
		{"12-emitter.in(r3).socketsLeave(r3)", step12, "socket.io-request#/#",
			"7b2274797065223a332c226f707473223a7b22726f6f6d73223a5b227233225d2c22657863657074223a5b5d7d2c22726f6f6d73223a5b227233225d7d"},
		{"13-emitter.in(nope).disconnectSockets(true)", step13, "socket.io-request#/#",
			"7b2274797065223a342c226f707473223a7b22726f6f6d73223a5b226e6f7065225d2c22657863657074223a5b5d7d2c22636c6f7365223a747275657d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, got := recorder(Config{})
			if err := tt.run(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 {
				t.Fatalf("published %d messages, want 1", len(*got))
			}
			p := (*got)[0]
			if p.channel != tt.channel {
				t.Errorf("channel %q, want %q", p.channel, tt.channel)
			}
			if want := unhex(t, tt.hex); !bytes.Equal(p.msg, want) {
				t.Errorf("bytes\n got %x\nwant %x", p.msg, want)
			}
		})
	}
}

// TestShardedGolden checks the ClusterAdapter messages. Node.js has no
// sharded emitter; the expected bytes are the sharded adapter's own
// messages of Appendix C (steps 01–03, 16, 19, 21, 24) with uid
// "emitter".
func TestShardedGolden(t *testing.T) {
	const sid = "Z0a_kKJayfBjiYV9AAAA" // looks like a socket id: 20 characters
	emitSid := func(ctx context.Context, e *Emitter) error { return e.To(sid).Emit(ctx, "private", 1) }
	tests := []struct {
		name    string
		mode    string
		run     step
		channel string
		json    string
	}{
		{"emit", "", step07, "socket.io#/#",
			`{"type":3,"data":{"packet":{"type":2,"data":["from-emitter",{"a":1}]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}`},
		{"one room, dynamic", "dynamic", step08, "socket.io#/#r1#",
			`{"type":3,"data":{"packet":{"type":2,"data":["em-room","y"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}`},
		{"one room, static", "static", step08, "socket.io#/#",
			`{"type":3,"data":{"packet":{"type":2,"data":["em-room","y"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}`},
		{"one room, dynamic-private", "dynamic-private", step08, "socket.io#/#r1#",
			`{"type":3,"data":{"packet":{"type":2,"data":["em-room","y"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}`},
		{"socket id, dynamic", "", emitSid, "socket.io#/#",
			`{"type":3,"data":{"packet":{"type":2,"data":["private",1]},"opts":{"rooms":["` + sid + `"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}`},
		{"socket id, dynamic-private", "dynamic-private", emitSid, "socket.io#/#" + sid + "#",
			`{"type":3,"data":{"packet":{"type":2,"data":["private",1]},"opts":{"rooms":["` + sid + `"],"except":[],"flags":{}}},"uid":"emitter","nsp":"/"}`},
		{"rooms, except, volatile", "", step09, "socket.io#/#",
			`{"type":3,"data":{"packet":{"type":2,"data":["em-multi",2]},"opts":{"rooms":["r1","r2"],"except":["r3"],"flags":{"volatile":true}}},"uid":"emitter","nsp":"/"}`},
		{"compress", "", func(ctx context.Context, e *Emitter) error {
			return e.Volatile().Compress(false).Emit(ctx, "flags", 1.5, -3, 300, nil)
		},
			"socket.io#/#",
			`{"type":3,"data":{"packet":{"type":2,"data":["flags",1.5,-3,300,null]},"opts":{"rooms":[],"except":[],"flags":{"volatile":true,"compress":false}}},"uid":"emitter","nsp":"/"}`},
		{"server-side emit", "", step10, "socket.io#/#",
			`{"type":9,"data":{"packet":["em-sse",1,"two"]},"uid":"emitter","nsp":"/"}`},
		{"join", "", step11, "socket.io#/#",
			`{"type":4,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r3"]},"uid":"emitter","nsp":"/"}`},
		{"leave", "", step12, "socket.io#/#",
			`{"type":5,"data":{"opts":{"rooms":["r3"],"except":[],"flags":{}},"rooms":["r3"]},"uid":"emitter","nsp":"/"}`},
		{"disconnect", "", step13, "socket.io#/#",
			`{"type":6,"data":{"opts":{"rooms":["nope"],"except":[],"flags":{}},"close":true},"uid":"emitter","nsp":"/"}`},
		{"namespace", "", func(ctx context.Context, e *Emitter) error { return e.Of("admin").Emit(ctx, "adm", 1) }, "socket.io#/admin#",
			`{"type":3,"data":{"packet":{"type":2,"data":["adm",1]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"emitter","nsp":"/admin"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, got := recorder(Config{Sharded: true, SubscriptionMode: tt.mode})
			if err := tt.run(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 {
				t.Fatalf("published %d messages, want 1", len(*got))
			}
			p := (*got)[0]
			if p.channel != tt.channel {
				t.Errorf("channel %q, want %q", p.channel, tt.channel)
			}
			if string(p.msg) != tt.json {
				t.Errorf("bytes\n got %s\nwant %s", p.msg, tt.json)
			}
		})
	}
}

// TestBinary checks that []byte arguments travel as MessagePack bin in
// both protocols, and that a server-side emit with binary is MessagePack.
func TestBinary(t *testing.T) {
	ctx := context.Background()
	t.Run("classic broadcast", func(t *testing.T) {
		e, got := recorder(Config{})
		if err := e.Emit(ctx, "bin", []byte{1, 2, 3}, map[string]any{"nested": []byte{4}}); err != nil {
			t.Fatal(err)
		}
		// Appendix A step 05's shape with uid "emitter" and the emitter's
		// key order.
		want := "93a7656d697474657283a47479706502a46461746193a362696ec40301020381a66e6573746564c40104a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490"
		if p := (*got)[0]; !bytes.Equal(p.msg, unhex(t, want)) {
			t.Errorf("bytes\n got %x\nwant %s", p.msg, want)
		}
		b, err := clusterwire.DecodeBroadcast((*got)[0].msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(b.Packet.Data) != `["bin",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]` ||
			len(b.Packet.Attachments) != 2 || !bytes.Equal(b.Packet.Attachments[0], []byte{1, 2, 3}) {
			t.Errorf("decoded %s %x", b.Packet.Data, b.Packet.Attachments)
		}
	})
	t.Run("classic server-side emit", func(t *testing.T) {
		e, got := recorder(Config{})
		if err := e.ServerSideEmit(ctx, "sse", []byte{9}); err != nil {
			t.Fatal(err)
		}
		p := (*got)[0]
		if clusterwire.Sniff(p.msg) != clusterwire.FormatMsgpack {
			t.Fatalf("server-side emit with binary is not msgpack: %q", p.msg)
		}
		r, err := clusterwire.DecodeRequest(p.msg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != clusterwire.ReqServerSideEmit || r.UID != "emitter" || len(r.Attachments) != 1 || r.Attachments[0][0] != 9 {
			t.Errorf("decoded %+v", r)
		}
	})
	t.Run("sharded", func(t *testing.T) {
		e, got := recorder(Config{Sharded: true})
		if err := e.Emit(ctx, "bin", []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if err := e.ServerSideEmit(ctx, "sse", []byte{9}); err != nil {
			t.Fatal(err)
		}
		for i, p := range *got {
			if clusterwire.Sniff(p.msg) != clusterwire.FormatMsgpack {
				t.Fatalf("message %d with binary is not msgpack: %q", i, p.msg)
			}
			m, err := clusterwire.DecodeClusterMessage(p.msg)
			if err != nil {
				t.Fatal(err)
			}
			atts := m.Attachments
			if i == 0 {
				atts = m.Packet.Attachments
			}
			if m.UID != "emitter" || len(atts) != 1 {
				t.Errorf("message %d decoded %+v", i, m)
			}
		}
	})
}

func TestRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		cfg  Config
		run  step
		want error
	}{
		{"reserved emit", Config{}, func(ctx context.Context, e *Emitter) error { return e.Emit(ctx, "disconnect") }, ErrReservedEvent},
		{"reserved sharded emit", Config{Sharded: true}, func(ctx context.Context, e *Emitter) error { return e.Emit(ctx, "connect_error") }, ErrReservedEvent},
		{"reserved server-side", Config{}, func(ctx context.Context, e *Emitter) error { return e.ServerSideEmit(ctx, "connection") }, ErrReservedEvent},
		{"ack emit", Config{}, func(ctx context.Context, e *Emitter) error { return e.Emit(ctx, "ev", 1, func() {}) }, ErrAckNotSupported},
		{"ack server-side", Config{Sharded: true}, func(ctx context.Context, e *Emitter) error {
			return e.ServerSideEmit(ctx, "ev", func(json.RawMessage) {})
		}, ErrAckNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, got := recorder(tt.cfg)
			err := tt.run(ctx, e)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(*got) != 0 {
				t.Errorf("published %d messages", len(*got))
			}
		})
	}
	t.Run("bad mode", func(t *testing.T) {
		e := New(nil, Config{Sharded: true, SubscriptionMode: "sometimes"})
		if err := e.Emit(ctx, "ev"); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("nil client", func(t *testing.T) {
		if err := New(nil, Config{}).Emit(ctx, "ev"); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("bad JSON", func(t *testing.T) {
		e, _ := recorder(Config{})
		if err := e.Emit(ctx, "ev", json.RawMessage("{")); err == nil {
			t.Fatal("no error")
		}
	})
}

// TestImmutable checks that operators return new Emitters and never touch
// the receiver, even through shared slice capacity.
func TestImmutable(t *testing.T) {
	base, got := recorder(Config{})
	a := base.To("r1", "r2")
	b := a.To("r3")
	c := a.To("r4").Except("x").Volatile().Compress(false)
	a2 := a.To("r1") // already there: rooms are a set
	ctx := context.Background()
	for _, e := range []*Emitter{base, a, b, c, a2} {
		if err := e.Emit(ctx, "ev"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`[[] [] {}]`,
		`[[r1 r2] [] {}]`,
		`[[r1 r2 r3] [] {}]`,
		`[[r1 r2 r4] [x] {volatile compress=false}]`,
		`[[r1 r2] [] {}]`,
	}
	for i, p := range *got {
		bc, err := clusterwire.DecodeBroadcast(p.msg)
		if err != nil {
			t.Fatal(err)
		}
		if s := describe(bc); s != want[i] {
			t.Errorf("emitter %d: %s, want %s", i, s, want[i])
		}
	}
	if base.Namespace() != "/" || base.Of("").Namespace() != "/" || base.Of("chat").Namespace() != "/chat" || c.Of("/a").Namespace() != "/a" {
		t.Error("Of does not normalise the namespace")
	}
	// Of starts afresh, as in @socket.io/redis-emitter.
	if o := c.Of("/a"); len(o.rooms) != 0 || len(o.except) != 0 || o.flags.Volatile {
		t.Error("Of kept the targets or flags")
	}
}

func describe(b *clusterwire.Broadcast) string {
	flags := ""
	if b.Opts.Flags.Volatile {
		flags += "volatile"
	}
	if c := b.Opts.Flags.Compress; c != nil {
		if flags != "" {
			flags += " "
		}
		if *c {
			flags += "compress=true"
		} else {
			flags += "compress=false"
		}
	}
	rooms := b.Opts.Rooms
	if rooms == nil {
		rooms = []string{}
	}
	except := b.Opts.Except
	if except == nil {
		except = []string{}
	}
	return "[" + fmtList(rooms) + " " + fmtList(except) + " {" + flags + "}]"
}

func fmtList(l []string) string {
	s := "["
	for i, r := range l {
		if i > 0 {
			s += " "
		}
		s += r
	}
	return s + "]"
}

// The packet must be an EVENT even when it carries binary.
func TestPacketTypeIsEvent(t *testing.T) {
	e, got := recorder(Config{})
	if err := e.Emit(context.Background(), "bin", []byte{1}); err != nil {
		t.Fatal(err)
	}
	b, err := clusterwire.DecodeBroadcast((*got)[0].msg)
	if err != nil {
		t.Fatal(err)
	}
	if b.Packet.Type != parser.Event {
		t.Errorf("packet type %v", b.Packet.Type)
	}
}
