package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// encFrame builds one server frame (unmasked unless mask is set).
func encFrame(fin bool, op byte, p []byte, mask []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	mbit := byte(0)
	if mask != nil {
		mbit = 0x80
	}
	switch n := len(p); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if mask != nil {
		out = append(out, mask...)
		for i, c := range p {
			out = append(out, c^mask[i&3])
		}
		return out
	}
	return append(out, p...)
}

// recSink records what the reader delivers, as strings.
type recSink struct {
	events []string
	stopAt string // stop after this message
}

func (s *recSink) message(p []byte) bool {
	s.events = append(s.events, "msg:"+string(p))
	return s.stopAt != "" && string(p) == s.stopAt
}

func (s *recSink) ping(p []byte) { s.events = append(s.events, "ping:"+string(p)) }

// feedChunks feeds stream cut at the given sizes (the rest in one piece).
func feedChunks(stream []byte, cuts []int, s frameSink) error {
	var r frameReader
	for _, n := range cuts {
		n = min(n, len(stream))
		// A fresh copy per read, as the pooled buffer is reused.
		if err := r.feed(bytes.Clone(stream[:n]), s); err != nil {
			return err
		}
		stream = stream[n:]
	}
	if len(stream) > 0 {
		return r.feed(bytes.Clone(stream), s)
	}
	return nil
}

func TestFrameReader(t *testing.T) {
	news := []byte(`42["news",{"t":1763840000123456789,"p":"xxxxxxxx"}]`)
	mid := bytes.Repeat([]byte("m"), 300)   // 16-bit length
	big := bytes.Repeat([]byte("b"), 70000) // 64-bit length
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	tests := []struct {
		name   string
		stream []byte
		cuts   []int
		want   []string
		err    error
	}{
		{"one frame", encFrame(true, opText, news, nil), nil, []string{"msg:" + string(news)}, nil},
		{"many frames in one read",
			cat(encFrame(true, opText, []byte("a"), nil), encFrame(true, opText, []byte("bb"), nil), encFrame(true, opText, []byte("ccc"), nil)),
			nil, []string{"msg:a", "msg:bb", "msg:ccc"}, nil},
		{"split in the header", cat(encFrame(true, opText, news, nil), encFrame(true, opText, []byte("z"), nil)),
			[]int{1}, []string{"msg:" + string(news), "msg:z"}, nil},
		{"split in the payload", cat(encFrame(true, opText, news, nil), encFrame(true, opText, []byte("z"), nil)),
			[]int{10, 30}, []string{"msg:" + string(news), "msg:z"}, nil},
		{"byte by byte", cat(encFrame(true, opText, []byte("hello"), nil), encFrame(true, opText, []byte("x"), nil)),
			[]int{1, 1, 1, 1, 1, 1, 1, 1, 1}, []string{"msg:hello", "msg:x"}, nil},
		{"16-bit length", cat(encFrame(true, opText, mid, nil), encFrame(true, opText, []byte("e"), nil)),
			nil, []string{"msg:" + string(mid), "msg:e"}, nil},
		{"16-bit length split inside the length", encFrame(true, opText, mid, nil),
			[]int{3, 100}, []string{"msg:" + string(mid)}, nil},
		{"64-bit length split inside the length", cat(encFrame(true, opText, big, nil), encFrame(true, opText, []byte("e"), nil)),
			[]int{5, 4, 65536}, []string{"msg:" + string(big), "msg:e"}, nil},
		{"fragmented message with a ping between",
			cat(encFrame(false, opText, []byte("he"), nil), encFrame(true, opPing, []byte("pp"), nil),
				encFrame(false, opCont, []byte("ll"), nil), encFrame(true, opCont, []byte("o"), nil),
				encFrame(true, opText, []byte("next"), nil)),
			[]int{3, 5}, []string{"ping:pp", "msg:hello", "msg:next"}, nil},
		{"pong ignored", cat(encFrame(true, opPong, nil, nil), encFrame(true, opText, []byte("a"), nil)),
			nil, []string{"msg:a"}, nil},
		{"masked frame", encFrame(true, opText, []byte("masked!"), []byte{1, 2, 3, 4}),
			[]int{4}, []string{"msg:masked!"}, nil},
		{"close stops", cat(encFrame(true, opText, []byte("a"), nil), encFrame(true, opClose, []byte{3, 232}, nil), encFrame(true, opText, []byte("b"), nil)),
			nil, []string{"msg:a"}, errClosed},
		{"close split across reads", cat(encFrame(true, opText, []byte("a"), nil), encFrame(true, opClose, []byte{3, 232}, nil)),
			[]int{4}, []string{"msg:a"}, errClosed},
		{"too large", []byte{0x81, 127, 0, 0, 0, 0, 0x7f, 0, 0, 0}, nil, nil, errFrameTooLarge},
		{"too large, 64-bit top bit", []byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, []int{2}, nil, errFrameTooLarge},
		{"empty message", encFrame(true, opText, nil, nil), nil, []string{"msg:"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &recSink{}
			err := feedChunks(tc.stream, tc.cuts, s)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got, want := strings.Join(s.events, "|"), strings.Join(tc.want, "|"); got != want {
				t.Errorf("got  %.200s\nwant %.200s", got, want)
			}
		})
	}
}

func TestFrameReaderStop(t *testing.T) {
	s := &recSink{stopAt: "1"}
	stream := bytes.Join([][]byte{encFrame(true, opText, []byte("a"), nil), encFrame(true, opText, []byte("1"), nil), encFrame(true, opText, []byte("b"), nil)}, nil)
	if err := feedChunks(stream, nil, s); err != errClosed {
		t.Fatalf("err = %v, want errClosed", err)
	}
	if got := strings.Join(s.events, "|"); got != "msg:a|msg:1" {
		t.Errorf("got %s", got)
	}
}

// TestFrameReaderKeepsSmallBuffers: a frame split across reads or a
// fragmented message leaves no large buffer behind.
func TestFrameReaderKeepsSmallBuffers(t *testing.T) {
	var r frameReader
	s := &recSink{}
	f := encFrame(true, opText, bytes.Repeat([]byte("b"), 70000), nil)
	if err := r.feed(f[:100], s); err != nil {
		t.Fatal(err)
	}
	if err := r.feed(f[100:], s); err != nil {
		t.Fatal(err)
	}
	if len(s.events) != 1 || cap(r.carry) > 4096 {
		t.Errorf("events %d, carry cap %d", len(s.events), cap(r.carry))
	}
}

// FuzzFrameReader: any way of cutting a stream into reads gives the same
// messages as one read, and nothing panics on arbitrary bytes.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte("\x81\x05hello\x89\x00\x01\x7e\x01\x00"), uint16(3), uint16(7))
	f.Add(encFrame(false, opText, []byte("ab"), nil), uint16(1), uint16(1))
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'}, uint16(9), uint16(2))
	f.Fuzz(func(t *testing.T, stream []byte, a, b uint16) {
		whole := &recSink{}
		errWhole := feedChunks(stream, nil, whole)
		cut := &recSink{}
		cuts := []int{int(a) % (len(stream) + 1), int(b)%7 + 1, int(a)%5 + 1, int(b) % 64}
		errCut := feedChunks(stream, cuts, cut)
		if (errWhole == nil) != (errCut == nil) {
			t.Fatalf("whole: %v, cut %v: %v", errWhole, cuts, errCut)
		}
		if fmt.Sprint(whole.events) != fmt.Sprint(cut.events) {
			t.Fatalf("whole %q\ncut %v %q", whole.events, cuts, cut.events)
		}
	})
}

// FuzzFrameRoundTrip: frames built from the input come back as sent, however
// they are cut.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint32(200), uint8(3), uint16(5))
	f.Add([]byte("x"), uint32(70000), uint8(1), uint16(1))
	f.Fuzz(func(t *testing.T, payload []byte, size uint32, nframes uint8, cut uint16) {
		size %= 100000
		var stream []byte
		var want []string
		p := bytes.Repeat(append(payload, '.'), int(size)/(len(payload)+1)+1)[:size]
		for i := 0; i < int(nframes%8)+1; i++ {
			q := p[:len(p)*(i+1)/(int(nframes%8)+1)]
			if i%3 == 2 && len(q) > 1 { // fragmented, with a ping between
				stream = append(stream, encFrame(false, opText, q[:1], nil)...)
				stream = append(stream, encFrame(true, opPing, []byte("p"), nil)...)
				stream = append(stream, encFrame(true, opCont, q[1:], nil)...)
				want = append(want, "ping:p")
			} else {
				stream = append(stream, encFrame(true, opText, q, nil)...)
			}
			want = append(want, "msg:"+string(q))
		}
		s := &recSink{}
		n := int(cut)%(len(stream)) + 1
		var cuts []int
		for k := 0; k < len(stream); k += n {
			cuts = append(cuts, n)
			n = n%13 + 1
		}
		if err := feedChunks(stream, cuts, s); err != nil {
			t.Fatal(err)
		}
		if strings.Join(s.events, "|") != strings.Join(want, "|") {
			t.Fatalf("cuts %v: got %d events, want %d", cuts, len(s.events), len(want))
		}
	})
}

// BenchmarkFrameFeed: 1,000 broadcast frames in one read, parsed and
// counted as the loop does (ns/frame is the client's user-space cost per
// broadcast delivery, without the read syscall).
func BenchmarkFrameFeed(b *testing.B) {
	var stream []byte
	for i := 0; i < 1000; i++ {
		stream = append(stream, encFrame(true, opText, []byte(`42["news",{"t":1763840000123456789,"p":"xxxxxxxx"}]`), nil)...)
	}
	st := &clientState{newsByNode: make([]hist, 1)}
	w := &wsConn{st: st, phase: phaseServe}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.feed(stream); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/frame")
}
