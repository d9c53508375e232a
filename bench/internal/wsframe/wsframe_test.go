package wsframe

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// TestAppendMasked reads the frames back with gobwas/ws: header, mask and
// payload for each length encoding.
func TestAppendMasked(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000} {
		p := bytes.Repeat([]byte{'a', 'b', 'c'}, n/3+1)[:n]
		buf := AppendMasked([]byte("prefix"), byte(ws.OpText), p)
		if !bytes.HasPrefix(buf, []byte("prefix")) {
			t.Fatalf("n=%d: prefix lost", n)
		}
		f, err := ws.ReadFrame(bytes.NewReader(buf[len("prefix"):]))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !f.Header.Fin || !f.Header.Masked || f.Header.OpCode != ws.OpText || f.Header.Length != int64(n) {
			t.Fatalf("n=%d: header %+v", n, f.Header)
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		if !bytes.Equal(f.Payload, p) {
			t.Fatalf("n=%d: payload differs", n)
		}
	}
}
