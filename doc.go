// Package herald is a Socket.IO v5 server for Go, built to run on many nodes.
//
// It speaks Engine.IO v4 (and v3 with Config.Engine.AllowEIO3, for
// socket.io-client 2.x) through package engineio, encodes packets with
// package parser, and shares rooms and broadcasts across nodes through an
// adapter (package adapter; in memory by default).
//
// # A chat server
//
//	srv, _ := herald.NewServer(herald.Config{})
//	srv.OnConnection(func(s *herald.Socket) {
//		s.On("join", func(e *herald.Event) {
//			var room string
//			e.Bind(&room)
//			s.Join(room)
//			e.Ack(true)
//		})
//		s.On("say", func(e *herald.Event) {
//			var room, text string
//			e.Bind(&room, &text)
//			srv.To(room).Emit("said", s.ID(), text)
//		})
//	})
//	http.Handle("/socket.io/", srv)
//	http.ListenAndServe(":3000", nil)
//
// # Concepts
//
// A Server holds namespaces (Server.Of; dynamic ones with Server.OfFunc or
// Server.OfRegexp). A client opens one Socket per namespace it joins.
// Namespace middleware (Namespace.Use) can reject a connection with a
// ConnectError. Sockets join rooms; a BroadcastOperator (To, In, Except,
// Volatile, Local, Timeout) sends to the sockets of rooms on every node,
// encoding each packet once for all recipients. EmitWithAck waits for
// acknowledgements with a context deadline. FetchSockets, SocketsJoin,
// SocketsLeave, DisconnectSockets and ServerSideEmit work across nodes.
//
// Arguments: Emit takes any values encoding/json accepts; []byte values at
// any depth travel as binary attachments. Received arguments are raw JSON
// (Args); Event.Bind decodes them, and Args.Values passes them on unchanged.
//
// # Concurrency
//
// Handlers of one client's sockets run one at a time, in packet order, on
// the goroutine that reads that client's connection. A handler that blocks
// delays only that client; hand long work (EmitWithAck, FetchSockets,
// anything slow) to another goroutine. All other methods are safe for
// concurrent use.
//
// # Disconnect reasons
//
// DisconnectReason values are the strings of the Node.js server
// ("transport close", "ping timeout", "client namespace disconnect", ...),
// plus "slow client" for clients that fell further behind than
// engineio.Config.MaxBufferedBytes.
//
// # Connection-state recovery
//
// With Config.Recovery.MaxDisconnection set, a client that loses its
// connection and reconnects in time gets its socket id, rooms and data back
// and receives the events it missed; Socket.Recovered reports it.
package herald
