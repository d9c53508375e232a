package engineio_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/herald-rt/herald/engineio"
)

// An echo server, and a long-polling client's round trip: handshake, a
// message posted, the echo polled.
func ExampleNewServer() {
	srv, err := engineio.NewServer(engineio.Config{}, func(s *engineio.Session) {
		s.OnMessage(func(data []byte, binary bool) {
			s.SendDirect(engineio.NewMessage(data, binary)) // a reply to this client
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := engineio.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: srv, IdleTimeout: 75 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, engineio.ServeOptions{HTTP: hs}) }()

	base := "http://" + ln.Addr().String() + "/engine.io/?EIO=4&transport=polling"
	open := request("GET", base, "")
	sid := strings.Split(strings.Split(open, `"sid":"`)[1], `"`)[0]
	fmt.Println(request("POST", base+"&sid="+sid, "4hello"))
	fmt.Println(request("GET", base+"&sid="+sid, ""))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	hs.Shutdown(ctx)
	fmt.Println(<-done)
	// Output:
	// ok
	// 4hello
	// http: Server closed
}

// request makes one HTTP request and returns the response's body.
func request(method, url, body string) string {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	return string(b)
}
