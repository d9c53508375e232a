package parser

import (
	"testing"
)

// BenchmarkEncodeEvent builds and frames an event with a few small args:
// one allocation for the payload, the text appended to a reused buffer.
func BenchmarkEncodeEvent(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		data, atts, err := MarshalEvent("message", 1, "two", true, nil)
		if err != nil {
			b.Fatal(err)
		}
		p := Packet{Type: Event, Namespace: "/chat", Data: data, Attachments: atts}
		buf, err = p.AppendText(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeEventPacket is the convenient path: NewEvent then Encode.
func BenchmarkEncodeEventPacket(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p, err := NewEvent("/chat", "message", 1, "two", true)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := Encode(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBinaryEvent(b *testing.B) {
	b.ReportAllocs()
	blob := make([]byte, 1024)
	buf := make([]byte, 0, 256)
	for b.Loop() {
		data, atts, err := MarshalEvent("upload", "name", blob)
		if err != nil {
			b.Fatal(err)
		}
		p := Packet{Type: Event, Data: data, Attachments: atts}
		buf, _ = p.AppendText(buf[:0])
	}
}

func BenchmarkEncodeStruct(b *testing.B) {
	type msg struct {
		User string  `json:"user"`
		Text string  `json:"text"`
		Seq  int     `json:"seq"`
		Data []byte  `json:"data,omitempty"`
		Rate float64 `json:"rate"`
	}
	b.Run("no-binary", func(b *testing.B) {
		b.ReportAllocs()
		v := msg{User: "u", Text: "hello", Seq: 1}
		for b.Loop() {
			if _, _, err := MarshalEvent("chat", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		v := msg{User: "u", Text: "hello", Seq: 1, Data: []byte{1, 2, 3}}
		for b.Loop() {
			if _, _, err := MarshalEvent("chat", v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeEvent decodes an event and reads its name and args.
func BenchmarkDecodeEvent(b *testing.B) {
	b.ReportAllocs()
	msg := []byte(`2/chat,12["message",1,"two",{"three":[true,null]}]`)
	b.SetBytes(int64(len(msg)))
	var d Decoder
	for b.Loop() {
		p, err := d.Add(msg, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := p.EventName(); !ok {
			b.Fatal("no event name")
		}
	}
}

func BenchmarkDecodeEventArgs(b *testing.B) {
	b.ReportAllocs()
	msg := []byte(`2/chat,12["message",1,"two",{"three":[true,null]}]`)
	var d Decoder
	for b.Loop() {
		p, _ := d.Add(msg, false)
		if _, err := p.Args(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBinaryEvent(b *testing.B) {
	b.ReportAllocs()
	msg := []byte(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	a0, a1 := []byte{1, 2, 3}, []byte{4, 5, 6}
	var d Decoder
	for b.Loop() {
		d.Add(msg, false)
		d.Add(a0, true)
		if p, err := d.Add(a1, true); p == nil || err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEchoBinary(b *testing.B) {
	b.ReportAllocs()
	msg := []byte(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	var d Decoder
	d.Add(msg, false)
	d.Add([]byte{1, 2, 3}, true)
	p, _ := d.Add([]byte{4, 5, 6}, true)
	args, _ := p.Args()
	echo := []any{args[0], args[1]}
	for b.Loop() {
		if _, _, err := MarshalEvent("message-back", echo...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalArgStruct(b *testing.B) {
	type upload struct {
		Name string `json:"name"`
		Data []byte `json:"data"`
	}
	raw := []byte(`{"name":"a.bin","data":{"_placeholder":true,"num":0}}`)
	atts := [][]byte{make([]byte, 1024)}
	b.ReportAllocs()
	for b.Loop() {
		var u upload
		if err := UnmarshalArg(raw, atts, &u); err != nil {
			b.Fatal(err)
		}
	}
}
