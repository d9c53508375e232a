package clusterwire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// notepackDir is where the interop tests install notepack.io.
var notepackDir = filepath.Join("..", "..", "interop", "node_modules", "notepack.io")

// TestNotepackDifferential compares this package with notepack.io 3.0.1
// itself when Node.js and the interop modules are installed: random values
// encoded by notepack.io must decode and re-encode to the same bytes and
// give the same JSON.stringify output; random byte strings must be
// accepted or refused alike, with the same JSON when accepted. JSON may
// differ only where JavaScript reorders integer-like keys or rounds
// integers above 2^53.
func TestNotepackDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	if _, err := os.Stat(filepath.Join(notepackDir, "package.json")); err != nil {
		t.Skip("notepack.io not installed: ", err)
	}
	out, err := exec.Command(node, filepath.Join("testdata", "notepack_diff.js"), notepackDir, "2000", "30000").Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	sameJSON := func(a, b string) bool {
		if a == b {
			return true
		}
		var x, y any
		return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
	}
	stats := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		line := sc.Text()
		random := strings.HasPrefix(line, "R")
		hx, js64, _ := strings.Cut(strings.TrimPrefix(line, "R"), " ")
		b, err1 := hex.DecodeString(hx)
		js, err2 := base64.StdEncoding.DecodeString(js64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad line %q", line)
		}
		v, err := DecodeMsgpack(b)
		switch {
		case string(js) == "ERR" && err == nil:
			t.Errorf("%s: notepack.io refuses it, we decode %v", hx, v)
			continue
		case string(js) == "ERR":
			stats["refused by both"]++
			continue
		case err != nil:
			t.Errorf("%s: notepack.io decodes %s, we fail: %v", hx, js, err)
			continue
		}
		got := string(EncodeJSON(v))
		switch {
		case got == string(js):
			stats["same JSON"]++
		case jsDiffers(v) && sameJSON(got, string(js)):
			stats["same JSON up to key order or integer precision"]++
		default:
			t.Errorf("%s: JSON %s, notepack.io %s", hx, got, js)
			continue
		}
		if !random {
			if re := EncodeMsgpack(v); !bytes.Equal(re, b) {
				t.Errorf("re-encoded %x, notepack.io %x", re, b)
				continue
			}
			stats["same bytes"]++
		}
	}
	t.Logf("%v", stats)
}

// jsDiffers reports whether JavaScript's JSON of v may legitimately differ
// from ours: an integer beyond 2^53, an integer-like key (which a
// JavaScript object enumerates first) or a duplicated key.
func jsDiffers(v Value) bool {
	switch v.kind {
	case KindInt:
		i := int64(v.bits)
		return i > 1<<53 || i < -(1<<53)
	case KindUint:
		return true
	case KindArray:
		for _, e := range v.arr {
			if jsDiffers(e) {
				return true
			}
		}
	case KindMap:
		seen := map[string]bool{}
		for _, m := range v.obj {
			if seen[m.Key] || jsDiffers(m.Value) {
				return true
			}
			seen[m.Key] = true
			if m.Key != "" && strings.Trim(m.Key, "0123456789") == "" {
				return true
			}
		}
	}
	return false
}
