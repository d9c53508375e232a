package adapter

import (
	"context"
	"encoding/json"
	"iter"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/herald-rt/herald/parser"
)

// MemoryConfig configures the in-memory adapter.
type MemoryConfig struct {
	// Recovery, when positive, keeps broadcast packets and the sessions of
	// disconnected sockets for this long, for connection-state recovery
	// (socket.io's SessionAwareAdapter). Zero disables recovery.
	Recovery time.Duration
}

// NewMemory returns the Factory of the in-memory adapter: rooms and
// broadcasts within this process only. It is the default adapter.
func NewMemory(cfg MemoryConfig) Factory {
	return func(nsp Namespace) (Adapter, error) {
		return NewLocal(nsp, cfg), nil
	}
}

// NewLocal returns an in-memory adapter for one namespace. Cluster adapters
// use it for their local bookkeeping and delivery.
func NewLocal(nsp Namespace, cfg MemoryConfig) *Memory {
	return &Memory{
		nsp:      nsp,
		rooms:    make(map[string]roomSet),
		sids:     make(map[string]*memberRooms),
		recovery: cfg.Recovery,
		sessions: make(map[string]persisted),
	}
}

// HasRoom reports whether a room has a member on this node.
func (m *Memory) HasRoom(room string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.roomLenLocked(room) > 0
}

// Targets returns the ids of the local sockets that opts selects.
func (m *Memory) Targets(opts BroadcastOptions) []string { return m.targets(opts) }

// Memory is the in-memory adapter. Cluster adapters embed it for their
// local bookkeeping.
type Memory struct {
	nsp      Namespace
	recovery time.Duration

	mu sync.RWMutex // guards rooms and sids
	// rooms holds the members of every room, but for one membership: a
	// socket in the room named by its id (every socket joins it on
	// connect) is recorded in sids only. That room seldom has another
	// member, and an entry per socket here was the largest part of the
	// adapter's memory per idle connection. Most other rooms have one
	// member too, so a roomSet holds one member without a map.
	rooms map[string]roomSet
	// sids holds the rooms of every socket.
	sids map[string]*memberRooms

	recMu    sync.Mutex // guards the fields below
	packets  []stored   // broadcasts kept for recovery, oldest first
	sessions map[string]persisted
	lastMs   int64
	seq      int
	outbox   []outgoing // with recovery: broadcasts to deliver, in offset order
	draining bool       // a goroutine is delivering the outbox
}

// outgoing is a broadcast waiting in the outbox.
type outgoing struct {
	pkt     *parser.Packet
	ids     []string
	flags   Flags
	onAck   func(Ack)
	onCount func(int)
}

type stored struct {
	offset string
	at     time.Time
	opts   BroadcastOptions
	pkt    *parser.Packet
}

type persisted struct {
	Session
	at time.Time
}

var _ Adapter = (*Memory)(nil)

// memberRooms is the rooms of a socket: whether it is in its own room (the
// room named by its id) and the others, usually a handful (a slice costs
// less than a set). Most sockets are in their own room only, or in none
// yet: they share inOwnRoomOnly or inNoRoom, so that they cost the sids map
// entry only.
type memberRooms struct {
	own    bool
	others []string
}

// Shared by many sockets: never modified.
var (
	inOwnRoomOnly = &memberRooms{own: true}
	inNoRoom      = &memberRooms{}
)

func (r *memberRooms) has(id, room string) bool {
	if room == id {
		return r.own
	}
	return slices.Contains(r.others, room)
}

// AddAll implements Adapter.
func (m *Memory) AddAll(id string, rooms ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.sids[id]
	if cur == nil {
		cur = inNoRoom
	}
	next := *cur // a copy, as cur may be shared (setRoomsLocked)
	for _, r := range rooms {
		if next.has(id, r) {
			continue
		}
		if r == id {
			next.own = true // recorded here only (see rooms)
			continue
		}
		next.others = append(next.others, r)
		set := m.rooms[r]
		set.add(id)
		m.rooms[r] = set
	}
	next.others = slices.Clip(next.others) // kept at its exact size
	m.setRoomsLocked(id, cur, next)
}

// setRoomsLocked records next as the rooms of socket id, in place of cur.
func (m *Memory) setRoomsLocked(id string, cur *memberRooms, next memberRooms) {
	switch {
	case len(next.others) > 0:
		if cur == inOwnRoomOnly || cur == inNoRoom {
			cur = new(memberRooms)
		}
		*cur = next
		m.sids[id] = cur
	case next.own:
		m.sids[id] = inOwnRoomOnly
	default:
		m.sids[id] = inNoRoom // registered, in no room
	}
}

// Del implements Adapter.
func (m *Memory) Del(id, room string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.sids[id]; cur != nil && cur.has(id, room) {
		next := *cur
		if room == id {
			next.own = false
		} else {
			// In place: only cur, which next replaces, holds this array.
			i := slices.Index(next.others, room)
			next.others = slices.Delete(next.others, i, i+1)
		}
		m.setRoomsLocked(id, cur, next)
	}
	if room != id {
		m.delMemberLocked(room, id)
	}
}

func (m *Memory) delMemberLocked(room, id string) {
	set, ok := m.rooms[room]
	if !ok {
		return
	}
	if set.remove(id) {
		delete(m.rooms, room)
	} else {
		m.rooms[room] = set
	}
}

// DelAll implements Adapter.
func (m *Memory) DelAll(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.sids[id]; cur != nil {
		for _, r := range cur.others {
			m.delMemberLocked(r, id)
		}
	}
	delete(m.sids, id)
}

// SocketRooms implements Adapter.
func (m *Memory) SocketRooms(id string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	cur, ok := m.sids[id]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(cur.others)+1)
	if cur.own {
		out = append(out, id)
	}
	out = append(out, cur.others...)
	slices.Sort(out)
	return out
}

// Sockets implements Adapter.
func (m *Memory) Sockets(rooms ...string) []string {
	return m.targets(BroadcastOptions{Rooms: rooms})
}

// Rooms implements Adapter.
func (m *Memory) Rooms() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.rooms)+len(m.sids))
	for r := range m.rooms {
		out = append(out, r)
	}
	for id := range m.sids {
		if _, listed := m.rooms[id]; !listed && m.inOwnRoomLocked(id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// targets resolves opts to local socket ids: members of any room (or every
// socket) minus the members of any except room.
func (m *Memory) targets(opts BroadcastOptions) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	excluded := func(id string) bool {
		for _, r := range opts.Except {
			if m.hasLocked(r, id) {
				return true
			}
		}
		return false
	}
	var out []string
	if len(opts.Rooms) == 0 {
		out = make([]string, 0, len(m.sids))
		for id := range m.sids {
			if !excluded(id) {
				out = append(out, id)
			}
		}
		return out
	}
	if len(opts.Rooms) == 1 {
		room := opts.Rooms[0]
		out = make([]string, 0, m.roomLenLocked(room))
		for id := range m.membersLocked(room) {
			if !excluded(id) {
				out = append(out, id)
			}
		}
		return out
	}
	seen := make(map[string]struct{})
	for _, r := range opts.Rooms {
		for id := range m.membersLocked(r) {
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			if !excluded(id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// inOwnRoomLocked reports whether socket id is in the room named by its id.
func (m *Memory) inOwnRoomLocked(id string) bool {
	cur := m.sids[id]
	return cur != nil && cur.own
}

// hasLocked reports whether socket id is in room.
func (m *Memory) hasLocked(room, id string) bool {
	if id == room {
		return m.inOwnRoomLocked(id)
	}
	return m.rooms[room].has(id)
}

// roomLenLocked returns the number of members of room.
func (m *Memory) roomLenLocked(room string) int {
	n := m.rooms[room].len()
	if m.inOwnRoomLocked(room) {
		n++
	}
	return n
}

// membersLocked yields the members of room.
func (m *Memory) membersLocked(room string) iter.Seq[string] {
	return func(yield func(string) bool) {
		if m.inOwnRoomLocked(room) && !yield(room) {
			return
		}
		for id := range m.rooms[room].all() {
			if !yield(id) {
				return
			}
		}
	}
}

// Broadcast implements Adapter. With recovery on, an event without an ack
// id that is not volatile gets an offset appended as its last argument and
// is kept for replay.
func (m *Memory) Broadcast(_ context.Context, pkt *parser.Packet, opts BroadcastOptions) error {
	o := outgoing{pkt: pkt, ids: m.targets(opts), flags: opts.Flags}
	if m.recovery <= 0 {
		m.deliver(o)
		return nil
	}
	m.send(o, pkt.Type.IsEvent() && !pkt.HasID && !opts.Flags.Volatile, opts)
	return nil
}

func (m *Memory) deliver(o outgoing) {
	n := m.nsp.Deliver(o.pkt, o.ids, o.flags, o.onAck)
	if o.onCount != nil {
		o.onCount(n)
	}
}

// send queues o, first storing it with a new offset if store, and delivers
// the queue in order, so that every socket gets packets in the order of
// their offsets. If a goroutine is already delivering the queue (this one,
// when Deliver calls back into the adapter, or another one), send returns
// at once and that goroutine delivers o: no lock is held across Deliver.
func (m *Memory) send(o outgoing, store bool, opts BroadcastOptions) {
	m.recMu.Lock()
	if store {
		o.pkt = m.storeLocked(o.pkt, opts)
	}
	m.outbox = append(m.outbox, o)
	if m.draining {
		m.recMu.Unlock()
		return
	}
	m.draining = true
	done := false
	defer func() {
		if !done { // Deliver panicked
			m.recMu.Lock()
			m.draining = false
			m.recMu.Unlock()
		}
	}()
	for len(m.outbox) > 0 {
		next := m.outbox[0]
		m.outbox[0] = outgoing{}
		m.outbox = m.outbox[1:]
		m.recMu.Unlock()
		m.deliver(next)
		m.recMu.Lock()
	}
	m.outbox = nil
	m.draining = false
	m.recMu.Unlock()
	done = true
}

// BroadcastLocal delivers to this node's targets only, without storing the
// packet for recovery. Cluster adapters call it for packets from other nodes
// that were already stored where they originated.
func (m *Memory) BroadcastLocal(pkt *parser.Packet, opts BroadcastOptions) int {
	return m.nsp.Deliver(pkt, m.targets(opts), opts.Flags, nil)
}

// BroadcastWithAck implements Adapter.
func (m *Memory) BroadcastWithAck(_ context.Context, pkt *parser.Packet, opts BroadcastOptions, onClientCount func(int), onAck func(Ack)) error {
	o := outgoing{pkt: pkt, ids: m.targets(opts), flags: opts.Flags, onAck: onAck, onCount: onClientCount}
	if m.recovery <= 0 {
		m.deliver(o)
	} else {
		m.send(o, false, opts) // in order with the stored broadcasts
	}
	return nil
}

// ServerCount implements Adapter: a single node.
func (m *Memory) ServerCount(context.Context) (int, error) { return 1, nil }

// FetchSockets implements Adapter.
func (m *Memory) FetchSockets(_ context.Context, opts BroadcastOptions) ([]SocketInfo, error) {
	ids := m.targets(opts)
	out := make([]SocketInfo, 0, len(ids))
	for _, id := range ids {
		if s := m.nsp.LocalSocket(id); s != nil {
			out = append(out, s.Info())
		}
	}
	return out, nil
}

// SocketIDs implements Adapter.
func (m *Memory) SocketIDs(_ context.Context, opts BroadcastOptions) ([]string, error) {
	return m.targets(opts), nil
}

// AddSockets implements Adapter.
func (m *Memory) AddSockets(_ context.Context, opts BroadcastOptions, rooms []string) error {
	for _, id := range m.targets(opts) {
		if s := m.nsp.LocalSocket(id); s != nil {
			s.Join(rooms...)
		}
	}
	return nil
}

// DelSockets implements Adapter.
func (m *Memory) DelSockets(_ context.Context, opts BroadcastOptions, rooms []string) error {
	for _, id := range m.targets(opts) {
		if s := m.nsp.LocalSocket(id); s != nil {
			for _, r := range rooms {
				s.Leave(r)
			}
		}
	}
	return nil
}

// DisconnectSockets implements Adapter.
func (m *Memory) DisconnectSockets(_ context.Context, opts BroadcastOptions, close bool) error {
	for _, id := range m.targets(opts) {
		if s := m.nsp.LocalSocket(id); s != nil {
			s.Disconnect(close)
		}
	}
	return nil
}

// ServerSideEmit implements Adapter. A single node has no peers: nothing is
// sent and no acknowledgement is awaited.
func (m *Memory) ServerSideEmit(context.Context, json.RawMessage, [][]byte, func(Ack)) error {
	return nil
}

// Close implements Adapter.
func (m *Memory) Close() error { return nil }

// PersistSession implements Adapter.
func (m *Memory) PersistSession(s Session) {
	if m.recovery <= 0 {
		return
	}
	m.recMu.Lock()
	defer m.recMu.Unlock()
	m.pruneLocked(time.Now())
	m.sessions[s.PID] = persisted{Session: s, at: time.Now()}
}

// RestoreSession implements Adapter.
func (m *Memory) RestoreSession(pid, offset string) (*RestoredSession, error) {
	if m.recovery <= 0 {
		return nil, nil
	}
	m.recMu.Lock()
	defer m.recMu.Unlock()
	now := time.Now()
	m.pruneLocked(now)
	p, ok := m.sessions[pid]
	if !ok {
		return nil, nil
	}
	delete(m.sessions, pid)
	i := slices.IndexFunc(m.packets, func(s stored) bool { return s.offset == offset })
	if i < 0 {
		return nil, nil
	}
	out := &RestoredSession{Session: p.Session}
	for _, s := range m.packets[i+1:] {
		if shouldReplay(s.opts, p.Rooms) {
			out.MissedPackets = append(out.MissedPackets, s.pkt)
		}
	}
	return out, nil
}

// shouldReplay reports whether a stored broadcast targeted a socket that
// was in rooms: no room filter or a shared room, and no excluded room.
func shouldReplay(opts BroadcastOptions, rooms []string) bool {
	for _, r := range opts.Except {
		if slices.Contains(rooms, r) {
			return false
		}
	}
	if len(opts.Rooms) == 0 {
		return true
	}
	for _, r := range opts.Rooms {
		if slices.Contains(rooms, r) {
			return true
		}
	}
	return false
}

func (m *Memory) pruneLocked(now time.Time) {
	cut := 0
	for cut < len(m.packets) && now.Sub(m.packets[cut].at) > m.recovery {
		cut++
	}
	if cut > 0 {
		clear(m.packets[:cut])
		m.packets = m.packets[cut:]
	}
	for pid, s := range m.sessions {
		if now.Sub(s.at) > m.recovery {
			delete(m.sessions, pid)
		}
	}
}

// storeLocked appends an offset to the event's arguments and keeps the
// packet.
func (m *Memory) storeLocked(pkt *parser.Packet, opts BroadcastOptions) *parser.Packet {
	now := time.Now()
	m.pruneLocked(now)
	offset := m.nextOffsetLocked(now)
	cp := *pkt
	cp.Data = AppendArg(pkt.Data, offset)
	m.packets = append(m.packets, stored{offset: offset, at: now, opts: cloneOptions(opts), pkt: &cp})
	return &cp
}

// nextOffsetLocked returns a unique, increasing offset: the millisecond
// time in base 36 and a sequence number within the millisecond.
func (m *Memory) nextOffsetLocked(now time.Time) string {
	ms := now.UnixMilli()
	if ms <= m.lastMs {
		m.seq++
		ms = m.lastMs
	} else {
		m.lastMs, m.seq = ms, 0
	}
	return strconv.FormatInt(ms, 36) + "." + strconv.Itoa(m.seq)
}

func cloneOptions(o BroadcastOptions) BroadcastOptions {
	o.Rooms = slices.Clone(o.Rooms)
	o.Except = slices.Clone(o.Except)
	return o
}

// AppendArg returns a copy of the JSON array data with the string s added
// as its last element.
func AppendArg(data json.RawMessage, s string) json.RawMessage {
	q, _ := json.Marshal(s)
	end := len(data) - 1
	for end >= 0 && data[end] != ']' {
		end--
	}
	if end < 0 {
		return data
	}
	out := make([]byte, 0, len(data)+len(q)+1)
	out = append(out, data[:end]...)
	// An empty array gets no comma.
	trimmed := end - 1
	for trimmed >= 0 && (data[trimmed] == ' ' || data[trimmed] == '\n' || data[trimmed] == '\t' || data[trimmed] == '\r') {
		trimmed--
	}
	if trimmed >= 0 && data[trimmed] != '[' {
		out = append(out, ',')
	}
	out = append(out, q...)
	return append(out, ']')
}

// roomSet is the members of a room: one id inline, or a set once there are
// several.
type roomSet struct {
	one  string              // the only member, when many is nil
	many map[string]struct{} // every member, once there were two
}

func (r *roomSet) add(id string) {
	switch {
	case r.many != nil:
		r.many[id] = struct{}{}
	case r.one == "":
		r.one = id
	case r.one != id:
		r.many = map[string]struct{}{r.one: {}, id: {}}
		r.one = ""
	}
}

// remove deletes id and reports whether the set is now empty.
func (r *roomSet) remove(id string) bool {
	if r.many != nil {
		delete(r.many, id)
		return len(r.many) == 0
	}
	if r.one == id {
		r.one = ""
	}
	return r.one == ""
}

func (r roomSet) has(id string) bool {
	if r.many != nil {
		_, ok := r.many[id]
		return ok
	}
	return r.one != "" && r.one == id
}

func (r roomSet) len() int {
	if r.many != nil {
		return len(r.many)
	}
	if r.one != "" {
		return 1
	}
	return 0
}

// all yields every member.
func (r roomSet) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		if r.many == nil {
			if r.one != "" {
				yield(r.one)
			}
			return
		}
		for id := range r.many {
			if !yield(id) {
				return
			}
		}
	}
}
