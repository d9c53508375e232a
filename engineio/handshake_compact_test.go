package engineio

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestPackHeader(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
	}{
		{"empty", http.Header{}},
		{"one", http.Header{"Host": {"example.com"}}},
		{"long value", http.Header{"Cookie": {strings.Repeat("c", 70000)}, "X": {"y"}}},
		{"several", http.Header{
			"Host":              {"127.0.0.1:3000"},
			"Upgrade":           {"websocket"},
			"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
			"X-Multi":           {"a", "", "bcd"},
			"X-Empty":           {},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unpackHeader(packHeader(tt.h))
			if !reflect.DeepEqual(got, tt.h) {
				t.Fatalf("unpackHeader(packHeader(h)) = %v, want %v", got, tt.h)
			}
			// The slices are capped: appending to one must not change another.
			for k := range got {
				got[k] = append(got[k], "appended")
			}
			for k, vs := range tt.h {
				if want := append(append([]string(nil), vs...), "appended"); !reflect.DeepEqual(got[k], want) {
					t.Fatalf("%s after append = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestInternQuery(t *testing.T) {
	a := internQuery("EIO=4&transport=websocket&x=1")
	b := internQuery("EIO=4&transport=websocket&x=1")
	want := url.Values{"EIO": {"4"}, "transport": {"websocket"}, "x": {"1"}}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("internQuery = %v, want %v", a, want)
	}
	if reflect.ValueOf(a).Pointer() != reflect.ValueOf(b).Pointer() {
		t.Fatal("the same raw query was parsed into two maps")
	}
	if c := internQuery("EIO=4&transport=polling"); reflect.DeepEqual(c, a) {
		t.Fatalf("different queries share a result: %v", c)
	}
}

// FuzzUnpackHeader feeds unpackHeader arbitrary strings (it only ever gets
// packHeader's output, but must not panic or loop on anything) and checks
// that what it decodes survives another round trip.
func FuzzUnpackHeader(f *testing.F) {
	f.Add(packHeader(http.Header{"Host": {"a"}, "X-Multi": {"1", "", "3"}}))
	f.Add("")
	f.Add("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")
	f.Add("\x05Hos")
	f.Fuzz(func(t *testing.T, packed string) {
		h := unpackHeader(packed)
		if again := unpackHeader(packHeader(h)); !reflect.DeepEqual(again, h) {
			t.Fatalf("round trip of %q: %v, then %v", packed, h, again)
		}
	})
}
