package clusterwire

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// vectorKind tells which decoder a captured message belongs to.
type vectorKind int

const (
	kindBroadcast vectorKind = iota
	kindRequest
	kindResponse
	kindCluster
)

func (c *captured) kind() vectorKind {
	switch {
	case c.appendix == "D" || c.cmd == "SPUBLISH":
		return kindCluster
	case strings.HasPrefix(c.channel, "socket.io-request#"):
		return kindRequest
	case strings.HasPrefix(c.channel, "socket.io-response#"):
		return kindResponse
	}
	return kindBroadcast
}

func (c *captured) bytes(t testing.TB) []byte {
	b, err := hex.DecodeString(c.hex)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *captured) name() string { return c.appendix + "/" + c.step + "/" + c.channel }

// handWritten reports whether the vector was written by hand with
// non-minimal encodings (Appendix F requests to Node.js), so that
// re-encoding it is not expected to give the same bytes.
func (c *captured) handWritten() bool {
	return c.appendix == "F" && c.step != "response"
}

// TestCapturedValues decodes every captured message generically and checks
// it against the capture tool's decoded view, then re-encodes the Value.
func TestCapturedValues(t *testing.T) {
	for _, c := range capturedVectors {
		b := c.bytes(t)
		v, err := decodeAny(b)
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		if c.view != "" {
			if got := v.String(); got != c.view {
				t.Errorf("%s: view\n got %s\nwant %s", c.name(), got, c.view)
			}
		}
		if c.handWritten() {
			continue
		}
		got := encodeValue(nil, v, Sniff(b))
		if !bytes.Equal(got, b) {
			t.Errorf("%s: re-encoded\n got %x\nwant %x", c.name(), got, b)
		}
	}
}

// TestCapturedMessages decodes every captured message with its message
// decoder and encodes the result again: the bytes must be the captured
// ones, except where a date was turned into its ISO string.
func TestCapturedMessages(t *testing.T) {
	counts := map[vectorKind]int{}
	for _, c := range capturedVectors {
		b := c.bytes(t)
		var got []byte
		var err error
		switch c.kind() {
		case kindBroadcast:
			var m *Broadcast
			if m, err = DecodeBroadcast(b); err != nil {
				break
			}
			order := AdapterOrder
			if m.UID == EmitterUID {
				order = EmitterOrder
			}
			got, err = EncodeBroadcast(m, order)
		case kindRequest:
			var r *Request
			if r, err = DecodeRequest(b); err != nil {
				break
			}
			got, err = EncodeRequest(r, Sniff(b))
		case kindResponse:
			var r *Response
			if r, err = DecodeResponse(b); err != nil {
				break
			}
			got, err = EncodeResponse(r, Sniff(b))
		case kindCluster:
			var m *ClusterMessage
			if m, err = DecodeClusterMessage(b); err != nil {
				break
			}
			f := FormatDefault
			if c.appendix == "D" {
				f = FormatMsgpack // the streams adapter always uses msgpack on pub/sub
			}
			got, err = AppendClusterMessage(nil, m, f)
		}
		if err != nil {
			if c.appendix == "F" && (c.step == "case 5" || c.step == "case 6") {
				continue // rejected by Node.js too
			}
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		counts[c.kind()]++
		if c.handWritten() || strings.Contains(c.view, "1970-01-01T") {
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s: re-encoded\n got %x\nwant %x\n got %q", c.name(), got, b, got)
		}
	}
	t.Logf("decoded %d broadcasts, %d requests, %d responses, %d cluster messages",
		counts[kindBroadcast], counts[kindRequest], counts[kindResponse], counts[kindCluster])
}
