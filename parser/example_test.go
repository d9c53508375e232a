package parser_test

import (
	"errors"
	"fmt"

	"github.com/herald-rt/herald/parser"
)

func ExampleNewEvent() {
	p, err := parser.NewEvent("/chat", "message", "hello", 42, []byte{1, 2, 3})
	if err != nil {
		panic(err)
	}
	text, attachments, err := parser.Encode(p)
	if err != nil {
		panic(err)
	}
	// Send "4"+text as an Engine.IO message, then each attachment as a
	// binary message.
	fmt.Printf("%s\n%v\n", text, attachments)
	// Output:
	// 51-/chat,["message","hello",42,{"_placeholder":true,"num":0}]
	// [[1 2 3]]
}

func ExampleDecoder() {
	var d parser.Decoder
	messages := []struct {
		data   string
		binary bool
	}{
		{`2/chat,7["message","hi"]`, false},
		{`51-["upload",{"_placeholder":true,"num":0}]`, false},
		{"\x01\x02", true},
	}
	for _, m := range messages {
		p, err := d.Add([]byte(m.data), m.binary)
		if err != nil {
			fmt.Println("close the connection:", err)
			return
		}
		if p == nil {
			fmt.Println("waiting for attachments")
			continue
		}
		name, _ := p.EventName()
		args, _ := p.Args()
		fmt.Printf("%v on %s: %q, %d args, ack=%v id=%d\n", p.Type, p.Namespace, name, len(args), p.HasID, p.ID)
	}
	// Output:
	// EVENT on /chat: "message", 1 args, ack=true id=7
	// waiting for attachments
	// BINARY_EVENT on /: "upload", 1 args, ack=false id=0
}

func ExampleDecoder_errors() {
	var d parser.Decoder
	for _, msg := range []string{`abc`, `2{}`, `2abc["x"]`, `2["disconnect"]`, `511-[]`} {
		_, err := d.Add([]byte(msg), false)
		fmt.Println(errors.Is(err, parser.ErrInvalidPacket), err)
	}
	// Output:
	// true parser: invalid packet: unknown packet type: 'a'
	// true parser: invalid packet: invalid payload: EVENT payload is not a non-empty array
	// true parser: invalid packet: invalid payload: not valid JSON
	// true parser: invalid packet: invalid payload: "disconnect" is a reserved event name
	// true parser: invalid packet: too many attachments
}

// Echo received arguments, binary included, exactly as they came.
func ExamplePacket_Args_echo() {
	var d parser.Decoder
	d.Add([]byte(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), false)
	d.Add([]byte{1, 2, 3}, true)
	in, _ := d.Add([]byte{4, 5, 6}, true)

	args, _ := in.Args()
	echo := make([]any, len(args))
	for i, a := range args {
		echo[i] = a
	}
	out, _ := parser.NewEvent(in.Namespace, "message-back", echo...)
	text, attachments, _ := parser.Encode(out)
	fmt.Printf("%s\n%v\n", text, attachments)
	// Output:
	// 52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]
	// [[1 2 3] [4 5 6]]
}

// Answer an event that asked for an ack.
func ExampleNewAck() {
	var d parser.Decoder
	in, _ := d.Add([]byte(`2456["message-with-ack",1,"2",{"3":[false]}]`), false)
	args, _ := in.Args()
	reply := make([]any, len(args))
	for i, a := range args {
		reply[i] = a
	}
	out, _ := parser.NewAck(in.Namespace, in.ID, reply...)
	text, _, _ := parser.Encode(out)
	fmt.Printf("%s\n", text)
	// Output:
	// 3456[1,"2",{"3":[false]}]
}

func ExampleUnmarshalArg() {
	type upload struct {
		Name string `json:"name"`
		Data []byte `json:"data"`
		Meta any    `json:"meta"`
	}
	var d parser.Decoder
	d.Add([]byte(`52-["upload",{"name":"a.bin","data":{"_placeholder":true,"num":0},"meta":{"_placeholder":true,"num":1}}]`), false)
	d.Add([]byte("content"), true)
	p, _ := d.Add([]byte("thumb"), true)

	args, _ := p.Args()
	var u upload
	if err := parser.UnmarshalArg(args[0].JSON, p.Attachments, &u); err != nil {
		panic(err)
	}
	fmt.Printf("%s %q %q\n", u.Name, u.Data, u.Meta)
	// Output:
	// a.bin "content" "thumb"
}

func ExampleMarshalArgs() {
	type point struct {
		X, Y int
		Tag  []byte `json:"tag,omitempty"`
	}
	data, attachments, err := parser.MarshalArgs(point{1, 2, []byte("t")}, map[string]any{"b": []byte{0}, "a": "<ok>"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n%q\n", data, attachments)
	// Output:
	// [{"X":1,"Y":2,"tag":{"_placeholder":true,"num":0}},{"a":"<ok>","b":{"_placeholder":true,"num":1}}]
	// ["t" "\x00"]
}

func ExampleSplitNamespace() {
	// A protocol v4 (socket.io 2.x) client connecting to /private with auth.
	var d parser.Decoder
	p, _ := d.Add([]byte(`0/private?token=abc,`), false)
	name, query := parser.SplitNamespace(p.Namespace)
	fmt.Println(name, query)
	// Output:
	// /private token=abc
}

func ExampleConnectErrorPayload() {
	v5, _ := parser.ConnectErrorPayload(parser.Version5, "Invalid namespace", nil)
	v4, _ := parser.ConnectErrorPayload(parser.Version4, "not authorized", []byte(`{"why":"token"}`))
	for _, data := range [][]byte{v5, v4} {
		text, _, _ := parser.Encode(&parser.Packet{Type: parser.ConnectError, Namespace: "/random", Data: data})
		fmt.Printf("%s\n", text)
	}
	// Output:
	// 4/random,{"message":"Invalid namespace"}
	// 4/random,{"why":"token"}
}
