package store

import (
	"context"
	"errors"
	"sync"
)

var errLeaderPanicked = errors.New("store: the shared backend read panicked")

// flightGroup makes concurrent reads of one key share one backend call
// (singleflight), generic over the key so that IDs are not formatted.
type flightGroup[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	val  V
	err  error
	tag  uint64 // the leader's tag, for join
}

// do runs fn once for all callers of key that overlap with it. A caller whose
// context ends stops waiting (the call goes on for the others); leader says
// whether this caller ran fn. A caller joins a call in flight only if join
// accepts the tag its leader started with (a read must not join one that
// started before a write the caller has seen complete); otherwise it runs
// fn on its own.
func (g *flightGroup[K, V]) do(ctx context.Context, key K, tag uint64, join func(tag uint64) bool, fn func() (V, error)) (v V, err error, leader bool) {
	g.mu.Lock()
	if c, ok := g.m[key]; ok {
		g.mu.Unlock()
		if !join(c.tag) {
			v, err = fn()
			return v, err, true
		}
		select {
		case <-c.done:
			return c.val, c.err, false
		case <-ctx.Done():
			return v, ctx.Err(), false
		}
	}
	if g.m == nil {
		g.m = make(map[K]*flightCall[V])
	}
	// If fn panics, the panic goes on in the leader and the others see this.
	c := &flightCall[V]{done: make(chan struct{}), err: errLeaderPanicked, tag: tag}
	g.m[key] = c
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn()
	return c.val, c.err, true
}
