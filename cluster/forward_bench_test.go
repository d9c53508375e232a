package cluster_test

import (
	"testing"
)

// BenchmarkPollRoundTrip measures one POST+GET echo round trip of a polling
// client, straight to the owner and through a node that forwards both.
func BenchmarkPollRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name    string
		through int // index of the node the client talks to
	}{{"direct", 0}, {"forwarded", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			nodes := startCluster(b, []string{"a", "b"}, clusterOpts{})
			c := newClient(b)
			if err := c.handshake(nodes[0].url); err != nil {
				b.Fatal(err)
			}
			base := nodes[bc.through].url
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if status, body, err := c.do("POST", base, c.sid, "4ping"); err != nil || status != 200 || body != "ok" {
					b.Fatalf("POST: %d %q %v", status, body, err)
				}
				if status, body, err := c.do("GET", base, c.sid, ""); err != nil || status != 200 || body != "4ping" {
					b.Fatalf("GET: %d %q %v", status, body, err)
				}
			}
		})
	}
}
