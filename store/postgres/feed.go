package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nexusstore/nexus/store"
)

// healthInterval is how long a listener waits for a notification before it
// checks that its connection still works: a connection that died silently
// (a network partition rather than a closed socket) would otherwise lose
// notifications unnoticed until TCP gives up.
const healthInterval = 30 * time.Second

// pingTimeout bounds that check.
const pingTimeout = 5 * time.Second

// feedConfig is what a listener needs to connect, copied from the pool's
// configuration at New.
type feedConfig struct {
	conn                   *pgx.ConnConfig
	beforeConnect          func(context.Context, *pgx.ConnConfig) error
	afterConnect           func(context.Context, *pgx.Conn) error
	channel                string
	backoffMin, backoffMax time.Duration
	health                 time.Duration // healthInterval; shorter in tests
}

// subscription is one Subscribe call: a listener goroutine on a connection
// of its own.
type subscription struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the listener goroutine has returned
}

// Subscribe starts delivering the table's changes, committed by anyone, to
// fn, and returns at once. A listener goroutine connects (with the pool's
// settings, on a connection of its own), LISTENs on the table's channel and
// delivers a store.FeedReset, then a store.FeedChanged per notification.
// When the connection fails or cannot be made, it delivers a
// store.FeedError carrying the cause (matching store.ErrUnavailable when the
// server cannot be reached) and tries again after a backoff (see
// WithFeedBackoff), once per failed attempt, and a store.FeedReset each
// time it is listening again: what was committed while it was away is not
// replayed.
//
// fn is called from that one goroutine, in commit order. A slow fn delays
// the events after it (the server queues them) but no writer. A
// notification it cannot read (not one this package sends) and a TRUNCATE
// of the table are delivered as a store.FeedReset.
//
// stop ends the subscription: it closes the connection and returns once fn
// will not be called again. It is idempotent, and must not be called from
// fn. Close stops every subscription. Subscribe on a closed Backend fails
// with an error matching store.ErrClosed.
func (b *Backend[T, ID]) Subscribe(fn func(store.FeedEvent[ID])) (stop func(), err error) {
	if fn == nil {
		return nil, fmt.Errorf("postgres: subscribe: %w: nil callback", store.ErrInvalidArgument)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscription{cancel: cancel, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed.Load() { // checked under the lock that Close takes to list subscriptions
		b.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("postgres: subscribe: %w", store.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		defer close(s.done)
		b.listen(ctx, fn)
	}()
	return func() {
		s.cancel()
		<-s.done
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}, nil
}

// listen is a subscription's goroutine: connect, listen, deliver, and start
// again after a failure, until ctx ends.
func (b *Backend[T, ID]) listen(ctx context.Context, fn func(store.FeedEvent[ID])) {
	delay := b.feed.backoffMin
	for {
		conn, err := b.connect(ctx)
		if err == nil {
			delay = b.feed.backoffMin
			b.listening.Add(1)
			err = b.receive(ctx, conn, fn)
			b.listening.Add(-1)
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(closeCtx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		fn(store.FeedEvent[ID]{Kind: store.FeedError, Err: fmt.Errorf("postgres: change feed: %w", classify(err))})
		t := time.NewTimer(jitter(delay))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, b.feed.backoffMax)
	}
}

// jitter varies d by up to ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// connect opens a listener connection as the pool would open one, and
// LISTENs on the channel.
func (b *Backend[T, ID]) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := b.feed.conn.Copy()
	if b.feed.beforeConnect != nil {
		if err := b.feed.beforeConnect(ctx, cfg); err != nil {
			return nil, err
		}
	}
	// pgx buffers notifications for WaitForNotification only when no other
	// handler is set; the pool's configuration may set one.
	cfg.OnNotification = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if b.feed.afterConnect != nil {
		err = b.feed.afterConnect(ctx, conn)
	}
	if err == nil {
		_, err = conn.Exec(ctx, `LISTEN "`+b.feed.channel+`"`)
	}
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// receive delivers a FeedReset and then the notifications of conn until it
// fails (the error is returned) or ctx ends.
func (b *Backend[T, ID]) receive(ctx context.Context, conn *pgx.Conn, fn func(store.FeedEvent[ID])) error {
	fn(store.FeedEvent[ID]{Kind: store.FeedReset})
	for {
		wctx, cancel := context.WithTimeout(ctx, b.feed.health)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// Quiet for a while: make sure the connection is still there.
			// The interrupted wait leaves the connection usable.
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("health check: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if n != nil {
			fn(parseNotification[ID](n.Payload))
		}
	}
}

// parseNotification reads a payload the table's trigger sends:
// "s,<version>,<micros>,<id>" for a save, "d,..." for a delete, "r" for a
// TRUNCATE. Anything else, and an ID that does not fit ID, gives a
// FeedReset: a change happened that cannot be pinned to an ID.
func parseNotification[ID Key](payload string) store.FeedEvent[ID] {
	reset := store.FeedEvent[ID]{Kind: store.FeedReset}
	parts := strings.SplitN(payload, ",", 4)
	if len(parts) != 4 || (parts[0] != "s" && parts[0] != "d") {
		return reset
	}
	version, err1 := strconv.ParseUint(parts[1], 10, 64)
	micros, err2 := strconv.ParseInt(parts[2], 10, 64)
	id, err3 := decodeKey[ID](parts[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return reset
	}
	return store.FeedEvent[ID]{
		Kind:      store.FeedChanged,
		ID:        id,
		Deleted:   parts[0] == "d",
		Version:   version,
		Committed: time.UnixMicro(micros),
	}
}
