package parser

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestDecodeErrors(t *testing.T) {
	for _, tt := range []struct {
		text string
		want error
	}{
		// Type digit (§2.2; the suite sends 4abc, i.e. "abc" here).
		{"", ErrInvalidPacket},
		{"abc", ErrUnknownType},
		{"7", ErrUnknownType},
		{"9[]", ErrUnknownType},
		{"/", ErrUnknownType},
		{"-1", ErrUnknownType},
		// Attachment count.
		{"5", ErrIllegalAttachments},
		{"5-[\"a\"]", ErrIllegalAttachments},
		{"5a-[\"a\"]", ErrIllegalAttachments},
		{"51[\"a\"]", ErrIllegalAttachments},
		{"51", ErrIllegalAttachments},
		{"6 1-[]", ErrIllegalAttachments},
		{"511-[\"a\"]", ErrTooManyAttachments},
		{"699999999999999999999999999999-[]", ErrTooManyAttachments},
		// Ack id overflow.
		{"318446744073709551616[]", ErrInvalidAckID},
		{"2999999999999999999999[\"a\"]", ErrInvalidAckID},
		// Payload must be JSON.
		{"2abc[\"x\"]", ErrInvalidPayload}, // suite: 42abc[...]
		{"2[\"x\"", ErrInvalidPayload},
		{"2[\"x\"]]", ErrInvalidPayload},
		{"0{", ErrInvalidPayload},
		{"2 ", ErrInvalidPayload},
		{"2/nsp, ", ErrInvalidPayload},
		// CONNECT payload is an object.
		{"0[]", ErrInvalidPayload},
		{"0\"x\"", ErrInvalidPayload},
		{"0/custom,[]", ErrInvalidPayload},
		{"0null", ErrInvalidPayload},
		// DISCONNECT has no payload.
		{"1{}", ErrInvalidPayload},
		{"1/custom,null", ErrInvalidPayload},
		// EVENT: non-empty array, name a string not reserved or a number.
		{"2{}", ErrInvalidPayload}, // suite: 42{}
		{"2", ErrInvalidPayload},
		{"2[]", ErrInvalidPayload},
		{"2 [ ] ", ErrInvalidPayload},
		{"2\"x\"", ErrInvalidPayload},
		{"2[null]", ErrInvalidPayload},
		{"2[true,1]", ErrInvalidPayload},
		{"2[{}]", ErrInvalidPayload},
		{"2[[\"a\"]]", ErrInvalidPayload},
		{"2[\"connect\"]", ErrInvalidPayload},
		{"2[\"connect_error\",1]", ErrInvalidPayload},
		{"2[\"disconnect\"]", ErrInvalidPayload},
		{"2[\"disconnecting\"]", ErrInvalidPayload},
		{"2[\"newListener\"]", ErrInvalidPayload},
		{"2[\"removeListener\"]", ErrInvalidPayload},
		{"2[\"\\u0063onnect\"]", ErrInvalidPayload}, // escaped "connect"
		{"50-[\"disconnect\"]", ErrInvalidPayload},
		{"50-{}", ErrInvalidPayload},
		{"50-", ErrInvalidPayload},
		// ACK: an array.
		{"3", ErrInvalidPayload},
		{"3{}", ErrInvalidPayload},
		{"31\"x\"", ErrInvalidPayload},
		{"60-{}", ErrInvalidPayload},
		// CONNECT_ERROR: a string or an object.
		{"4", ErrInvalidPayload},
		{"4[]", ErrInvalidPayload},
		{"412", ErrInvalidPayload}, // id 412, no payload
		{"4true", ErrInvalidPayload},
	} {
		var d Decoder
		p, err := d.Add([]byte(tt.text), false)
		if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("Add(%q) = %v, %v; want %v", tt.text, p, err, tt.want)
		}
		if d.Pending() {
			t.Errorf("Add(%q): decoder pending after error", tt.text)
		}
	}
}

func TestDecodeValidEdgeCases(t *testing.T) {
	for _, text := range []string{
		`2["Connect"]`,             // case matters
		`2["connect "]`,            // not reserved
		`2["constructor"]`,         // not reserved
		`2[0]`,                     // numeric event names are allowed
		`2[1.5e3,{}]`,              // any number
		`2[""]`,                    // empty name is a string
		`4{}`,                      // CONNECT_ERROR object
		`0{}`,                      // CONNECT empty object
		`0 {"a":1} `,               // whitespace around JSON is JSON
		`2/nsp,12["a"]`,            // nsp + id
		`2/nsp,["a"]`,              // nsp, no id
		`2/nsp?x=1&y=2,["a"]`,      // query-like namespace
		`2/ä,["ü"]`,                // UTF-8
		`3[{"_placeholder":true}]`, // placeholders in non-binary packets are plain objects
		`51-[1,{"_placeholder":false,"num":9},{"_placeholder":true,"num":0}]`,
	} {
		var d Decoder
		p, err := d.Add([]byte(text), false)
		if err != nil {
			t.Errorf("Add(%q) error: %v", text, err)
			continue
		}
		if p == nil {
			if p, err = d.Add([]byte{1}, true); p == nil || err != nil {
				t.Errorf("Add(%q) then attachment = %v, %v", text, p, err)
			}
		}
	}
}

func TestDecoderStreaming(t *testing.T) {
	var d Decoder
	// A plain packet passes straight through.
	if p, err := d.Add([]byte(`2["a"]`), false); err != nil || p == nil {
		t.Fatalf("Add = %v, %v", p, err)
	}
	// A binary packet waits for its two attachments.
	p, err := d.Add([]byte(`52-["m",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`), false)
	if p != nil || err != nil || !d.Pending() {
		t.Fatalf("Add(header) = %v, %v, pending %v", p, err, d.Pending())
	}
	if p, err = d.Add([]byte{1}, true); p != nil || err != nil {
		t.Fatalf("Add(att 0) = %v, %v", p, err)
	}
	p, err = d.Add([]byte{2}, true)
	if err != nil || p == nil {
		t.Fatalf("Add(att 1) = %v, %v", p, err)
	}
	if len(p.Attachments) != 2 || p.Attachments[0][0] != 1 || p.Attachments[1][0] != 2 || d.Pending() {
		t.Fatalf("packet attachments = %v", p.Attachments)
	}
	// And the decoder is ready for the next packet.
	if p, err := d.Add([]byte(`3[]`), false); err != nil || p == nil {
		t.Fatalf("Add after binary = %v, %v", p, err)
	}
}

func TestDecoderUnexpected(t *testing.T) {
	var d Decoder
	if _, err := d.Add([]byte{1, 2}, true); !errors.Is(err, ErrUnexpectedBinary) {
		t.Errorf("binary with nothing pending: %v, want ErrUnexpectedBinary", err)
	}
	if _, err := d.Add([]byte(`51-["a",{"_placeholder":true,"num":0}]`), false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Add([]byte(`2["a"]`), false); !errors.Is(err, ErrUnexpectedText) {
		t.Errorf("text while pending: %v, want ErrUnexpectedText", err)
	}
	if d.Pending() {
		t.Error("decoder still pending after error")
	}
	// Reset drops a pending packet.
	d.Add([]byte(`51-["a",{"_placeholder":true,"num":0}]`), false)
	d.Reset()
	if _, err := d.Add([]byte{1}, true); !errors.Is(err, ErrUnexpectedBinary) {
		t.Errorf("binary after Reset: %v, want ErrUnexpectedBinary", err)
	}
}

func TestDecoderPlaceholderIndexes(t *testing.T) {
	for _, tt := range []struct {
		text string
		ok   bool
	}{
		{`51-["a",{"_placeholder":true,"num":0}]`, true},
		{`51-["a",{"num":0,"_placeholder":true}]`, true},
		{`51-["a",{"_placeholder":true,"num":0.0}]`, true},
		{`51-["a",{"_placeholder":true,"num":-0}]`, true},
		{`51-["a",[{"x":{"_placeholder":true,"num":0}}]]`, true},
		{`51-["a",{"_placeholder":true,"num":1}]`, false},
		{`51-["a",{"_placeholder":true,"num":-1}]`, false},
		{`51-["a",{"_placeholder":true,"num":0.5}]`, false},
		{`51-["a",{"_placeholder":true,"num":"0"}]`, false},
		{`51-["a",{"_placeholder":true}]`, false},
		{`51-["a",{"_placeholder":true,"num":0,"num":7}]`, false}, // last key wins
		{`51-["a",{"_placeholder":true,"num":7,"num":0}]`, true},
		{`51-["a",{"\u005fplaceholder":true,"num":3}]`, false}, // escaped key still counts
		{`51-["a",{"_placeholder":"true","num":3}]`, true},     // not a placeholder
		// A placeholder replaces its whole object: what is inside does not count.
		{`51-["a",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":5}}]`, true},
		{`51-["a",{"x":{"_placeholder":true,"num":5},"_placeholder":true,"num":0}]`, true},
	} {
		var d Decoder
		if _, err := d.Add([]byte(tt.text), false); err != nil {
			t.Fatalf("Add(%q): %v", tt.text, err)
		}
		p, err := d.Add([]byte{9}, true)
		if tt.ok != (err == nil) || tt.ok != (p != nil) {
			t.Errorf("Add(%q)+attachment = %v, %v; want ok=%v", tt.text, p, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrIllegalAttachments) {
			t.Errorf("Add(%q)+attachment error %v, want ErrIllegalAttachments", tt.text, err)
		}
	}
}

func TestMaxAttachments(t *testing.T) {
	header := func(n int) []byte {
		var b strings.Builder
		b.WriteString("5")
		b.WriteString(itoa(n))
		b.WriteString(`-["a"`)
		for i := range n {
			b.WriteString(`,{"_placeholder":true,"num":` + itoa(i) + `}`)
		}
		b.WriteString("]")
		return []byte(b.String())
	}
	for _, tt := range []struct {
		max, n int
		ok     bool
	}{
		{0, 10, true}, {0, 11, false}, {3, 3, true}, {3, 4, false},
		{-1, 1, false}, {-1, 0, true}, {100, 100, true}, {100, 101, false},
		{math.MaxInt, 12, true},
	} {
		d := Decoder{MaxAttachments: tt.max}
		_, err := d.Add(header(tt.n), false)
		if tt.ok != (err == nil) {
			t.Errorf("MaxAttachments %d, %d attachments: %v", tt.max, tt.n, err)
		}
		if !tt.ok && !errors.Is(err, ErrTooManyAttachments) {
			t.Errorf("MaxAttachments %d, %d attachments: %v, want ErrTooManyAttachments", tt.max, tt.n, err)
		}
	}
}

// TestHugeAttachmentCount checks that a header claiming a huge count is
// rejected, even with a huge limit, without allocating for it.
func TestHugeAttachmentCount(t *testing.T) {
	d := Decoder{MaxAttachments: math.MaxInt}
	msg := []byte(`51000000000-["a"]`)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	for range 10 {
		d.Reset()
		if _, err := d.Add(msg, false); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms)
	if allocated := ms.TotalAlloc - before; allocated > 64<<10 {
		t.Errorf("10 headers claiming 1e9 attachments allocated %d bytes", allocated)
	}
	d = Decoder{}
	allocs := testing.AllocsPerRun(10, func() {
		d.Add(msg, false)
	})
	if allocs > 0 {
		t.Errorf("header with 1e9 attachments: %v allocations", allocs)
	}
}

func TestDecoderVersion4(t *testing.T) {
	for _, text := range []string{`412`, `4[1]`, `4true`, `4/private,{"why":"token"}`, `4"not authorized"`} {
		text += ""
		d := Decoder{Version: Version4}
		_, err := d.Add([]byte(text), false)
		if text == `412` {
			// "412" is CONNECT_ERROR with ack id 12 and no payload.
			if err == nil {
				t.Errorf("v4 Add(%q) = nil error", text)
			}
			continue
		}
		if err != nil {
			t.Errorf("v4 Add(%q) = %v", text, err)
		}
	}
}

func TestDecoderNamespaceReuse(t *testing.T) {
	var d Decoder
	msg := []byte(`2/chat,["a"]`)
	p1, _ := d.Add(msg, false)
	allocs := testing.AllocsPerRun(100, func() {
		d.Add(msg, false)
	})
	if p1.Namespace != "/chat" || allocs > 1 {
		t.Errorf("namespace %q, %v allocations per decode, want 1", p1.Namespace, allocs)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
