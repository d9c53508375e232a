package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/internal/clusterwire"
)

// requests is the bookkeeping both adapters share: this node's cluster
// requests waiting for responses, and its broadcasts with acks waiting for
// answers. The adapters turn their own wire responses into a reply and
// hand it to settle.
type requests struct {
	mu      sync.Mutex
	closed  bool
	pending map[string]*pendingRequest
	acks    map[string]*pendingAck
}

// pendingRequest collects the responses to a request this node sent.
type pendingRequest struct {
	collect   replyKind // what its responses carry
	expected  int       // responses to wait for
	got       int
	sockets   []adapter.SocketInfo
	socketIDs []string
	onAck     func(adapter.Ack)
	done      chan struct{}
}

// pendingAck routes the answers to a broadcast with acks.
type pendingAck struct {
	onClientCount func(int)
	onAck         func(adapter.Ack)
	timer         *time.Timer
}

// replyKind is what a response carries, as far as the bookkeeping cares.
type replyKind uint8

const (
	replyNone        replyKind = iota // counts as a response, carries nothing
	replyClientCount                  // clients a broadcast with acks reached on a node
	replyAck                          // one ack: of a client (broadcast) or a node (server-side emit)
	replySockets                      // FetchSockets' sockets
	replySocketIDs                    // the SOCKETS request's ids
)

// reply is one response, reduced. What a response to a request carries is
// known from the request (Node.js' classic responses have no type); kind
// tells a broadcast's client count from its acks.
type reply struct {
	kind        replyKind
	clientCount int
	ack         adapter.Ack
	sockets     []clusterwire.SocketRecord
	socketIDs   []string
}

func newRequests() *requests {
	return &requests{pending: make(map[string]*pendingRequest), acks: make(map[string]*pendingAck)}
}

// isOwn reports whether id is one of this node's requests in flight: a
// node does not answer its own requests when they come back from Redis.
func (q *requests) isOwn(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, pending := q.pending[id]
	_, ack := q.acks[id]
	return pending || ack
}

// expectAcks routes the answers to broadcast id for timeout.
func (q *requests) expectAcks(id string, timeout time.Duration, onClientCount func(int), onAck func(adapter.Ack)) error {
	pa := &pendingAck{onClientCount: onClientCount, onAck: onAck}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return adapter.ErrClosed
	}
	q.acks[id] = pa
	pa.timer = time.AfterFunc(timeout, func() {
		q.mu.Lock()
		delete(q.acks, id)
		q.mu.Unlock()
	})
	return nil
}

// settle feeds a response to the broadcast or request id waits for; a
// response to another node's request, or to one that timed out, is
// dropped.
func (q *requests) settle(id string, r reply) {
	q.mu.Lock()
	if ack, ok := q.acks[id]; ok {
		q.mu.Unlock()
		switch r.kind {
		case replyClientCount:
			ack.onClientCount(r.clientCount)
		case replyAck:
			ack.onAck(r.ack)
		}
		return
	}
	p, ok := q.pending[id]
	if !ok {
		q.mu.Unlock()
		return
	}
	p.got++
	switch p.collect {
	case replySockets:
		for i := range r.sockets {
			p.sockets = append(p.sockets, r.sockets[i].Info())
		}
	case replySocketIDs:
		p.socketIDs = append(p.socketIDs, r.socketIDs...)
	case replyAck:
		if onAck := p.onAck; onAck != nil {
			q.mu.Unlock()
			onAck(r.ack)
			q.mu.Lock()
		}
	}
	if p.got >= p.expected {
		delete(q.pending, id)
		close(p.done)
	}
	q.mu.Unlock()
}

// result is what the responses to a request brought.
type result struct {
	sockets   []adapter.SocketInfo
	socketIDs []string
}

// await registers request id, whose responses carry collect (and go to
// onAck if that is replyAck), publishes it, and waits for expected
// responses, timeout or ctx. On a timeout it returns what came with an
// adapter.ErrTimeout.
func (q *requests) await(ctx context.Context, id string, collect replyKind, expected int, timeout time.Duration, onAck func(adapter.Ack), publish func() error) (result, error) {
	p := &pendingRequest{collect: collect, expected: expected, onAck: onAck, done: make(chan struct{})}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return result{}, adapter.ErrClosed
	}
	q.pending[id] = p
	q.mu.Unlock()
	forget := func() {
		q.mu.Lock()
		delete(q.pending, id)
		q.mu.Unlock()
	}
	if err := publish(); err != nil {
		forget()
		return result{}, fmt.Errorf("redis: publish request: %w", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case <-p.done:
	case <-timer.C:
		err = adapter.ErrTimeout
	case <-ctx.Done():
		err = adapter.ErrTimeout
	}
	if err != nil {
		forget()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	res := result{sockets: p.sockets, socketIDs: p.socketIDs}
	if err != nil {
		return res, fmt.Errorf("%w: only %d responses received out of %d", err, p.got, expected)
	}
	return res, nil
}

// close stops waiting for acks; new requests fail with adapter.ErrClosed.
func (q *requests) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for id, p := range q.acks {
		p.timer.Stop()
		delete(q.acks, id)
	}
}
