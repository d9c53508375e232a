package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/herald-rt/herald"
	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/internal/cliflags"
	"github.com/herald-rt/herald/parser"
)

// rooms accepts a room name or a list of names.
type rooms []string

func (r *rooms) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*r = rooms{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*r = many
	return nil
}

// newSocketIOServer is --mode sio: the application of the DESIGN.md contract.
func newSocketIOServer(opts *cliflags.Server, cn *cliflags.Node, log *slog.Logger, factory adapter.Factory) (*herald.Server, error) {
	cfg := herald.Config{
		Engine:  cn.EngineConfig("/socket.io/"),
		Adapter: factory,
		Logger:  log,
	}
	if opts.Recovery > 0 {
		cfg.Recovery.MaxDisconnection = opts.Recovery
	}
	srv, err := herald.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	node := srv.Engine().NodeID()
	for _, name := range []string{"/", "/custom"} {
		nsp := srv.Of(name)
		nsp.OnAnyServerSideEmit(serverSideRelay(nsp))
		setupNamespace(nsp, node)
	}
	// /private (an addition to the contract) rejects connections in its
	// middleware unless auth.token is "secret", to test CONNECT_ERROR data.
	private := srv.Of("/private")
	private.Use(func(s *herald.Socket) error {
		var auth struct {
			Token string `json:"token"`
		}
		json.Unmarshal(s.Auth(), &auth)
		if auth.Token != "secret" {
			return herald.NewConnectError("not authorized", map[string]string{"why": "token"})
		}
		return nil
	})
	private.OnAnyServerSideEmit(serverSideRelay(private))
	setupNamespace(private, node)
	return srv, nil
}

func setupNamespace(nsp *herald.Namespace, node string) {
	handlers := eventHandlers(nsp, node)
	nsp.OnConnection(func(s *herald.Socket) {
		s.Emit("auth", s.Auth())
		for _, h := range handlers {
			s.On(h.event, h.fn)
		}
	})
}

// eventHandler is one event handler of the contract.
type eventHandler struct {
	event string
	fn    func(*herald.Event)
}

// eventHandlers returns the contract's event handlers for the sockets of
// nsp. They are made once per namespace and find their socket with
// Event.Socket: closures made per socket would cost every idle connection
// about 200 B.
func eventHandlers(nsp *herald.Namespace, node string) []eventHandler {
	return []eventHandler{
		{"message", func(e *herald.Event) {
			e.Socket().Emit("message-back", e.Args.Values()...)
		}},
		{"message-with-ack", func(e *herald.Event) {
			e.Ack(e.Args.Values()...)
		}},
		{"join", func(e *herald.Event) {
			var room string
			e.Bind(&room)
			e.Socket().Join(room)
			e.Ack(true)
		}},
		{"leave", func(e *herald.Event) {
			var room string
			e.Bind(&room)
			e.Socket().Leave(room)
			e.Ack(true)
		}},
		{"broadcast", func(e *herald.Event) {
			var req struct {
				To           rooms             `json:"to"`
				Except       rooms             `json:"except"`
				Event        string            `json:"event"`
				Args         []json.RawMessage `json:"args"`
				AckTimeoutMs int               `json:"ackTimeoutMs"`
				Volatile     bool              `json:"volatile"` // addition to the contract
				Local        bool              `json:"local"`    // addition to the contract
			}
			if err := e.Bind(&req); err != nil {
				e.Ack(map[string]any{"err": err.Error()})
				return
			}
			// Each argument keeps the request's attachments, so binary
			// values (placeholders in the JSON) are sent on as binary.
			args := make([]any, len(req.Args))
			for i, a := range req.Args {
				args[i] = parser.Arg{JSON: a, Attachments: e.Args[0].Attachments}
			}
			op := nsp.To(req.To...).Except(req.Except...)
			if req.Volatile {
				op = op.Volatile()
			}
			if req.Local {
				op = op.Local()
			}
			if req.AckTimeoutMs <= 0 {
				op.Emit(req.Event, args...)
				e.Ack(true)
				return
			}
			// Acks can take a while: answer from another goroutine so this
			// client's other packets keep flowing.
			go func() {
				replies, err := op.Timeout(time.Duration(req.AckTimeoutMs)*time.Millisecond).
					EmitWithAck(context.Background(), req.Event, args...)
				responses := make([]any, 0, len(replies))
				for _, r := range replies {
					if len(r) > 0 {
						responses = append(responses, r[0])
					} else {
						responses = append(responses, nil)
					}
				}
				var errText any
				if err != nil {
					errText = err.Error()
				}
				e.Ack(map[string]any{"err": errText, "responses": responses})
			}()
		}},
		{"fetch", func(e *herald.Event) {
			var req struct {
				Rooms rooms `json:"rooms"`
			}
			e.Bind(&req)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				socks, err := nsp.In(req.Rooms...).FetchSockets(ctx)
				if err != nil {
					e.Ack(map[string]any{"err": err.Error()})
					return
				}
				out := make([]map[string]any, 0, len(socks))
				for _, rs := range socks {
					out = append(out, map[string]any{"id": rs.ID(), "rooms": rs.Rooms(), "data": json.RawMessage(rs.Data())})
				}
				e.Ack(out)
			}()
		}},
		{"whoami", func(e *herald.Event) {
			s := e.Socket()
			e.Ack(map[string]any{"id": s.ID(), "node": node, "rooms": s.Rooms()})
		}},
		{"server-count", func(e *herald.Event) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				n, err := nsp.ServerCount(ctx)
				if err != nil {
					e.Ack(map[string]any{"err": err.Error()})
					return
				}
				e.Ack(n)
			}()
		}},
		{"server-side-emit", func(e *herald.Event) {
			if len(e.Args) == 0 {
				return
			}
			var event string
			e.Args[:1].Bind(&event)
			nsp.ServerSideEmit(context.Background(), event, e.Args[1:].Values()...)
		}},
		{"sockets-join", func(e *herald.Event) {
			var req struct {
				In   rooms  `json:"in"`
				Room string `json:"room"`
			}
			e.Bind(&req)
			go func() {
				nsp.In(req.In...).SocketsJoin(context.Background(), req.Room)
				e.Ack(true)
			}()
		}},
		{"sockets-leave", func(e *herald.Event) {
			var req struct {
				In   rooms  `json:"in"`
				Room string `json:"room"`
			}
			e.Bind(&req)
			go func() {
				nsp.In(req.In...).SocketsLeave(context.Background(), req.Room)
				e.Ack(true)
			}()
		}},
		{"disconnect-sockets", func(e *herald.Event) {
			var req struct {
				In    rooms `json:"in"`
				Close bool  `json:"close"`
			}
			e.Bind(&req)
			go func() {
				// Ack first: the sender itself may be among the targets.
				e.Ack(true)
				nsp.In(req.In...).DisconnectSockets(context.Background(), req.Close)
			}()
		}},
	}
}

// serverSideRelay makes every server-side event visible to local clients.
func serverSideRelay(nsp *herald.Namespace) func(*herald.Event) {
	return func(e *herald.Event) {
		args := append([]any{e.Name}, e.Args.Values()...)
		nsp.Local().Emit("server-side", args...)
	}
}
