// Package engineio is an Engine.IO server: protocol v4 (engine.io-client
// 4.x and later, Socket.IO v3 and v4 clients) and, with Config.AllowEIO3, v3
// (socket.io-client 2.x), over HTTP long-polling, WebSocket and the upgrade
// from one to the other. Package herald builds Socket.IO on it; it can also
// be used alone, for Engine.IO's messages.
//
// A Server is an http.Handler, to mount on its path (Config.Path,
// "/engine.io/" by default) in any router. Server.Serve serves a listener
// itself instead: it answers Engine.IO's requests on the connection without
// net/http's per-request work and hands every other request to an
// http.Server. Listen makes a listener set up for it. The zero Config is
// valid and uses the reference server's defaults.
//
// The function given to NewServer gets each new Session. A session's
// messages reach its OnMessage handler one at a time, in order, on the
// goroutine that reads the transport. Sending never blocks: Send queues
// messages for a few shared writers, which coalesce the writes of many
// sessions under load (fan-out); SendDirect writes from the calling
// goroutine when nothing else is writing (a reply); SendLater queues
// without writing, for what is about to be followed by more. A session's
// queue is bounded in bytes (Config.MaxBufferedBytes): a client that falls
// further behind is closed with ReasonSlowClient.
//
// An idle WebSocket session holds no goroutine and no buffer: on Linux a
// plain TCP connection waits in an epoll set of the server's own, and a
// reader starts when data arrives. Writers exist only while there is something to write.
package engineio
