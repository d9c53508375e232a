package cluster_test

import (
	"maps"
	"testing"

	"github.com/herald-rt/herald/cluster"
)

func TestParsePeers(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", map[string]string{}, false},
		{"a=http://127.0.0.1:3001", map[string]string{"a": "http://127.0.0.1:3001"}, false},
		{" a=http://h:1 , b=https://h:2/ ,", map[string]string{"a": "http://h:1", "b": "https://h:2/"}, false},
		{"a", nil, true},                   // no URL
		{"a-b=http://h:1", nil, true},      // not a node id
		{"a=h:1", nil, true},               // no scheme
		{"a=ftp://h:1", nil, true},         // not HTTP
		{"a=http://", nil, true},           // no host
		{"=http://h:1", nil, true},         // empty id
		{"a=http://h:1,b=nope", nil, true}, // one bad entry spoils the list
	}
	for _, tc := range tests {
		got, err := cluster.ParsePeers(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePeers(%q) error %v, want error: %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !maps.Equal(got, tc.want) {
			t.Errorf("ParsePeers(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNewForwarderNeedsSecretAndNodeID(t *testing.T) {
	for _, cfg := range []cluster.Config{
		{NodeID: "a"},                // no secret
		{Secret: "s"},                // no node id
		{NodeID: "a-b", Secret: "s"}, // bad node id
		{NodeID: "a", Secret: "s", Peers: map[string]string{"b": "nope"}},
	} {
		if f, err := cluster.NewForwarder(cfg); err == nil {
			f.Close()
			t.Errorf("NewForwarder(%+v) succeeded", cfg)
		}
	}
}
