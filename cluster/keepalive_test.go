package cluster_test

import (
	"fmt"
	"testing"
	"time"
)

// TestPooledConnectionSurvivesSessionClosedDuringPOST: a session that
// closes while its own POST is being handled (a client's close packet) must
// not spoil the keep-alive connection that carried the POST. Forwarders
// (and any proxy with upstream keep-alive: nginx keepalive, Traefik, a Go
// ReverseProxy) reuse that connection for other sessions' requests.
//
// The bug this guards against (engineio/polling.go): the POST handler arms
// postAbort, which sets a read deadline on the connection when the session
// closes; if that fired after the body was read, net/http's background read
// failed and cancelled the connection's base context, so every later request
// on the connection arrived cancelled, and a long poll arriving that way
// closed its session with "transport error". postAbort is now disarmed as
// soon as the body is in. Without that fix this test fails in most runs.
func TestPooledConnectionSurvivesSessionClosedDuringPOST(t *testing.T) {
	nodes := startCluster(t, []string{"a", "b"}, clusterOpts{})
	for round := 0; round < 15; round++ {
		closing, polling := newClient(t), newClient(t)
		if err := closing.handshake(nodes[0].url); err != nil {
			t.Fatal(err)
		}
		if err := polling.handshake(nodes[0].url); err != nil {
			t.Fatal(err)
		}
		// One session closes itself through b (close packet in a POST).
		if status, body, err := closing.do("POST", nodes[1].url, closing.sid, "1"); err != nil || status != 200 {
			t.Fatalf("close POST: %d %q %v", status, body, err)
		}
		// The other long-polls through b, on b's pooled connection to a.
		done := make(chan string, 1)
		go func() {
			status, body, err := polling.do("GET", nodes[1].url, polling.sid, "")
			done <- fmt.Sprint(status, " ", body, " ", err)
		}()
		deadline := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(deadline) {
			if nodes[0].eio.Session(polling.sid) == nil {
				t.Fatalf("round %d: a long poll on the reused connection closed its session (%s)", round, <-done)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Release the poll.
		if status, body, err := polling.do("POST", nodes[1].url, polling.sid, "4release"); err != nil || status != 200 {
			t.Fatalf("round %d: release POST: %d %q %v", round, status, body, err)
		}
		if got := <-done; got != "200 4release <nil>" {
			t.Fatalf("round %d: poll: %s", round, got)
		}
	}
}
