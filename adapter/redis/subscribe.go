package redis

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// receiver runs subscriptions and hands their messages, in order, to one
// handler goroutine. rueidis calls the Receive callback on the connection's
// reading goroutine, which must never block on work that needs Redis
// itself; the queue in between keeps the two apart.
type receiver struct {
	sub    rueidis.Client
	log    *slog.Logger
	handle func(rueidis.PubSubMessage)
	// intercept, if set, sees each message on the connection's goroutine
	// first and may consume it (subscription probes): confirming a
	// subscription must not wait behind the handler, which may itself be
	// the one waiting for the confirmation.
	intercept func(rueidis.PubSubMessage) bool

	inbox chan rueidis.PubSubMessage
	wg    sync.WaitGroup

	mu      sync.Mutex
	ready   map[string]chan struct{} // subscription name → closed once active
	readyOK map[string]bool
	subs    []*subscription
}

// stopAll marks every subscription stopped, before the adapter
// unsubscribes on close, so none is re-established.
func (r *receiver) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.subs {
		s.stop()
	}
}

func newReceiver(sub rueidis.Client, log *slog.Logger, handle func(rueidis.PubSubMessage)) *receiver {
	return &receiver{
		sub:     sub,
		log:     log,
		handle:  handle,
		inbox:   make(chan rueidis.PubSubMessage, 4096),
		ready:   make(map[string]chan struct{}),
		readyOK: make(map[string]bool),
	}
}

// start runs the handler goroutine until ctx ends.
func (r *receiver) start(ctx context.Context) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case m := <-r.inbox:
				r.handle(m)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// subscribe keeps the subscription built by cmd alive until ctx ends: when
// the connection fails, it subscribes again after a short backoff. name
// identifies it for waitReady; probe, if set, is called once the
// subscription is (re)established to confirm it by a round trip.
func (r *receiver) subscribe(ctx context.Context, name string, cmd func() rueidis.Completed) *subscription {
	r.mu.Lock()
	r.ready[name] = make(chan struct{})
	r.readyOK[name] = false
	r.mu.Unlock()
	sub := &subscription{}
	r.mu.Lock()
	r.subs = append(r.subs, sub)
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		backoff := 50 * time.Millisecond
		for ctx.Err() == nil && !sub.stopped.Load() {
			started := time.Now()
			err := r.sub.Receive(ctx, cmd(), func(m rueidis.PubSubMessage) {
				if r.intercept != nil && r.intercept(m) {
					return
				}
				select {
				case r.inbox <- m:
				case <-ctx.Done():
				}
			})
			if ctx.Err() != nil || sub.stopped.Load() {
				return
			}
			if time.Since(started) > 5*time.Second {
				backoff = 50 * time.Millisecond
			}
			r.log.Warn("redis: subscription lost, resubscribing", "subscription", name, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, 2*time.Second)
		}
	}()
	return sub
}

// subscription is one kept-alive subscription. Stop it before sending the
// UNSUBSCRIBE command: Receive then returns and is not called again.
// (Cancelling Receive's context instead makes the client unsubscribe on its
// own schedule, which can undo a new subscription to the same channel.)
type subscription struct{ stopped atomic.Bool }

func (s *subscription) stop() { s.stopped.Store(true) }

// markReady records that a subscription delivered its probe message.
func (r *receiver) markReady(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.ready[name]; ok && !r.readyOK[name] {
		r.readyOK[name] = true
		close(ch)
	}
}

// waitReady waits until every named subscription has been confirmed, or
// ctx ends.
func (r *receiver) waitReady(ctx context.Context, names ...string) error {
	for _, n := range names {
		r.mu.Lock()
		ch := r.ready[n]
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *receiver) wait() { r.wg.Wait() }
