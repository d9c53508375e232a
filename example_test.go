package herald_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/engineio"
)

// A complete chat server: rooms, messages to a room, who is here.
func Example_chat() {
	srv, err := herald.NewServer(herald.Config{})
	if err != nil {
		log.Fatal(err)
	}
	srv.OnConnection(func(s *herald.Socket) {
		s.On("join", func(e *herald.Event) {
			var room, nick string
			e.Bind(&room, &nick)
			s.SetData(nick)
			s.Join(room)
			s.To(room).Emit("joined", nick)
			e.Ack(true)
		})
		s.On("say", func(e *herald.Event) {
			var room, text string
			e.Bind(&room, &text)
			srv.To(room).Emit("said", s.Data(), text)
		})
		s.On("who", func(e *herald.Event) {
			var room string
			e.Bind(&room)
			go func() { // FetchSockets may wait on other nodes
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				sockets, _ := srv.In(room).FetchSockets(ctx)
				nicks := []json.RawMessage{}
				for _, rs := range sockets {
					nicks = append(nicks, rs.Data())
				}
				e.Ack(nicks)
			}()
		})
	})
	http.Handle("/socket.io/", srv)
	// log.Fatal(http.ListenAndServe(":3000", nil))
}

// Middleware rejects connections without a valid token; the client's
// connect_error gets the message and data.
func ExampleNamespace_Use() {
	srv, _ := herald.NewServer(herald.Config{})
	admin := srv.Of("/admin")
	admin.Use(func(s *herald.Socket) error {
		var auth struct {
			Token string `json:"token"`
		}
		json.Unmarshal(s.Handshake().Auth, &auth)
		if auth.Token != "let-me-in" {
			return herald.NewConnectError("not authorized", map[string]string{"hint": "send a token"})
		}
		return nil
	})
	admin.OnConnection(func(s *herald.Socket) { s.Emit("welcome") })
}

// Broadcast to a room and collect every client's acknowledgement.
func ExampleBroadcastOperator_EmitWithAck() {
	srv, _ := herald.NewServer(herald.Config{})
	replies, err := srv.To("voters").Timeout(2*time.Second).EmitWithAck(context.Background(), "vote?")
	if err != nil {
		fmt.Println("some clients did not answer:", err)
	}
	for _, r := range replies {
		var choice string
		r.Bind(&choice)
		fmt.Println(choice)
	}
}

// Serving a listener: Socket.IO's requests are answered on the connection,
// everything else (here the page at /) by the http.Server.
func ExampleServer_Serve() {
	srv, err := herald.NewServer(herald.Config{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv) // for the requests Serve hands over
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 75 * time.Second}

	ln, err := engineio.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, engineio.ServeOptions{HTTP: hs}) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	// Stop: the Socket.IO server first, then the http.Server, which ends Serve.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	hs.Shutdown(ctx)
	fmt.Println(<-done)
	// Output:
	// 200 OK
	// http: Server closed
}
