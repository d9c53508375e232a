package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// Fuzz inputs are sequences of Engine.IO messages separated by 0x1e (as in
// a polling payload); a message starting with 'b' is binary (the rest of
// it), any other is text.
func splitMessages(in []byte) (msgs [][]byte, binary []bool) {
	for _, m := range bytes.Split(in, []byte{0x1e}) {
		if len(m) > 0 && m[0] == 'b' {
			msgs, binary = append(msgs, m[1:]), append(binary, true)
		} else {
			msgs, binary = append(msgs, m), append(binary, false)
		}
	}
	return msgs, binary
}

func fuzzSeeds(f *testing.F) {
	for _, tt := range roundTripTests {
		seed := []byte(tt.text)
		for _, a := range tt.atts {
			seed = append(append(seed, 0x1e, 'b'), a...)
		}
		f.Add(seed)
	}
	for _, s := range []string{
		"", "abc", "2{}", "2abc[\"x\"]", "0/custom", "1/custom", "0/random",
		"2[\"connect\"]", "511-[\"a\"]", "51-[\"a\",{\"_placeholder\":true,\"num\":1}]\x1eb\x01",
		"51-[\"a\"]\x1e2[\"b\"]", "b\x01", "318446744073709551616[]",
		"52-[\"m\",{\"_placeholder\":true,\"num\":0,\"x\":{\"_placeholder\":true,\"num\":9}}]\x1eb\x01\x1ebxy",
		"2[\"e\",{\"a\":[1,2,{\"b\":null}]},\"\\u00e9\\\"\"]",
		"0/nsp?token=abc,", "4\"x\"", "2[1e400]",
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecode feeds message sequences to a Decoder. It must never panic,
// and any packet it returns must be valid, re-encode, decode again to the
// same packet, and encode to the same text again. Its arguments must be
// usable: split, decoded into any, and echoed.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		msgs, binary := splitMessages(in)
		var d Decoder
		for i, m := range msgs {
			p, err := d.Add(m, binary[i])
			if err != nil || p == nil {
				continue
			}
			checkDecoded(t, p)
		}
	})
}

func checkDecoded(t *testing.T, p *Packet) {
	if err := p.Validate(); err != nil {
		t.Fatalf("decoded %v fails Validate: %v", p, err)
	}
	text, atts, err := Encode(p)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", p, err)
	}
	var d Decoder
	q, err := d.Add(bytes.Clone(text), false)
	for _, a := range atts {
		if err != nil {
			break
		}
		q, err = d.Add(a, true)
	}
	if err != nil || q == nil {
		t.Fatalf("decode(Encode(%+v)) = %v, %v (text %q)", p, q, err, text)
	}
	if !packetsEqual(p, q) {
		t.Fatalf("decode(Encode(p)) = %+v, want %+v", q, p)
	}
	if text2, _, _ := Encode(q); !bytes.Equal(text, text2) {
		t.Fatalf("Encode not stable: %q then %q", text, text2)
	}

	name, ok := p.EventName()
	if p.Type.IsEvent() != ok {
		t.Fatalf("EventName(%v) = %q, %v", p, name, ok)
	}
	if !p.Type.IsEvent() && !p.Type.IsAck() {
		return
	}
	args, err := p.Args()
	if err != nil {
		t.Fatalf("Args(%v): %v", p, err)
	}
	echo := make([]any, len(args))
	for i, a := range args {
		var v any
		if err := a.Unmarshal(&v); err != nil {
			// Valid JSON numbers beyond float64 (1e700; JavaScript reads
			// Infinity) are the one thing encoding/json refuses here.
			var rangeErr *json.UnmarshalTypeError
			if !errors.As(err, &rangeErr) || !strings.HasPrefix(rangeErr.Value, "number") {
				t.Fatalf("Args(%v)[%d].Unmarshal: %v", p, i, err)
			}
		}
		echo[i] = a
	}
	if !ok {
		name = "x"
	}
	if IsReservedEvent(name) {
		t.Fatalf("decoded reserved event %q", name)
	}
	e, err := NewEvent(p.Namespace, name, echo...)
	if err != nil {
		t.Fatalf("echo of %v: %v", p, err)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("echo of %v = %v, invalid: %v", p, e, err)
	}
}

// FuzzPlaceholders compares findPlaceholders with a reference that walks
// the value tree encoding/json builds, following socket.io-parser's
// reconstructPacket. Go maps are unordered, so the indexes are compared
// sorted.
func FuzzPlaceholders(f *testing.F) {
	for _, s := range []string{
		`[{"_placeholder":true,"num":0},{"a":[{"_placeholder":true,"num":1}]}]`,
		`{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":5}}`,
		`{"x":{"_placeholder":true,"num":5},"_placeholder":true,"num":0}`,
		`{"_placeholder":true,"_placeholder":false,"num":1}`,
		`{"\u005fplaceholder":true,"num":1e0}`,
		`[{"_placeholder":true,"num":-0.0},{"_placeholder":true,"num":"1"},{"_placeholder":true}]`,
		`[[],{},"{\"_placeholder\":true}",{"num":[1],"_placeholder":true}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := findPlaceholders(data, nil)
		var v any
		if json.Unmarshal(data, &v) != nil {
			return // not JSON, or numbers out of float64 range
		}
		if err != nil {
			t.Fatalf("findPlaceholders(%q): %v", data, err)
		}
		want := referencePlaceholders(v, nil)
		gotNums := make([]int, len(got))
		for i, ph := range got {
			gotNums[i] = ph.num
			if !json.Valid(data[ph.start:ph.end]) || data[ph.start] != '{' {
				t.Fatalf("findPlaceholders(%q): bad bounds %d:%d", data, ph.start, ph.end)
			}
		}
		slices.Sort(gotNums)
		slices.Sort(want)
		if !slices.Equal(gotNums, want) {
			t.Fatalf("findPlaceholders(%q) nums = %v, want %v", data, gotNums, want)
		}
	})
}

func referencePlaceholders(v any, out []int) []int {
	switch x := v.(type) {
	case map[string]any:
		if x["_placeholder"] == true {
			num := -1
			if f, ok := x["num"].(float64); ok && f >= 0 && f < 1<<31 && f == math.Trunc(f) {
				num = int(f)
			}
			return append(out, num)
		}
		for _, e := range x {
			out = referencePlaceholders(e, out)
		}
	case []any:
		for _, e := range x {
			out = referencePlaceholders(e, out)
		}
	}
	return out
}
