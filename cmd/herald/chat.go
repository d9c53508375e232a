package main

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-rt/herald"
)

// The demo chat served on / by `herald serve`. Events from the page:
//
//	join (room, nick, ack)  leave the previous room, join this one; ack({room, nick, members})
//	say  (text)             broadcast said({room, nick, text, time}) to the room
//	who  (ack)              ack(list of nicknames in the room, from every node)
//
// and to the page: said, joined({room, nick}), left({room, nick}).

type chatMember struct {
	Nick string `json:"nick"`
	Room string `json:"room"`
}

func setupChat(srv *herald.Server) {
	srv.OnConnection(func(s *herald.Socket) {
		member := func() chatMember {
			m, _ := s.Data().(chatMember)
			return m
		}
		s.On("join", func(e *herald.Event) {
			var room, nick string
			e.Bind(&room, &nick)
			room, nick = clean(room, "lobby"), clean(nick, "anonymous")
			if old := member(); old.Room != "" && old.Room != room {
				s.Leave(old.Room)
				srv.To(old.Room).Emit("left", old)
			}
			m := chatMember{Nick: nick, Room: room}
			s.SetData(m)
			s.Join(room)
			s.To(room).Emit("joined", m)
			go func() {
				e.Ack(map[string]any{"room": room, "nick": nick, "members": members(srv, room)})
			}()
		})
		s.On("say", func(e *herald.Event) {
			var text string
			e.Bind(&text)
			m := member()
			if m.Room == "" || strings.TrimSpace(text) == "" {
				return
			}
			text = truncate(text, 2000)
			srv.To(m.Room).Emit("said", map[string]any{
				"room": m.Room, "nick": m.Nick, "text": text, "time": time.Now().UnixMilli(),
			})
		})
		s.On("who", func(e *herald.Event) {
			room := member().Room
			go func() { e.Ack(members(srv, room)) }()
		})
		s.OnDisconnect(func(herald.DisconnectReason) {
			if m := member(); m.Room != "" {
				srv.To(m.Room).Emit("left", m)
			}
		})
	})
}

// members lists the nicknames in a room across the cluster.
func members(srv *herald.Server, room string) []string {
	out := []string{}
	if room == "" {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sockets, err := srv.In(room).FetchSockets(ctx)
	if err != nil {
		return out
	}
	for _, rs := range sockets {
		var m chatMember
		if json.Unmarshal(rs.Data(), &m) == nil && m.Nick != "" {
			out = append(out, m.Nick)
		}
	}
	return out
}

// clean trims a user-supplied name and bounds its length.
func clean(s, def string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	return truncate(s, 40)
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
