package memory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nexusstore/nexus/store"
)

// Op names a backend operation, for WithFault and Calls. The versioned
// methods count as the operation they extend (GetVersioned as OpGet,
// SaveVersioned as OpSave...), so that a fault or a count holds whichever
// method the store chooses.
type Op uint8

// The operations of a Backend.
const (
	// OpGet is Get and GetVersioned.
	OpGet Op = iota
	// OpGetAll is GetAll and GetAllVersioned.
	OpGetAll
	// OpSave is Save and SaveVersioned.
	OpSave
	// OpDelete is Delete and DeleteVersioned.
	OpDelete

	numOps
)

var opNames = [numOps]string{"get", "get_all", "save", "delete"}

// String returns the snake_case name, e.g. "get_all".
func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// SetUnavailable makes every call fail with an error matching
// store.ErrUnavailable while on is true, as if the backend were down.
func (b *Backend[T, ID]) SetUnavailable(on bool) { b.unavailable.Store(on) }

// FailNext makes the next n calls fail with err, or with an error matching
// store.ErrUnavailable when err is nil. It replaces any failures still
// pending from an earlier FailNext; n <= 0 cancels them. Only calls that
// reach the fault checks count (see the package documentation for the
// order).
func (b *Backend[T, ID]) FailNext(n int, err error) {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	b.failErr = err
	b.failN.Store(int64(max(n, 0)))
}

// SetLatency changes the latency that WithLatency set, for the calls that
// start from now on. A negative d panics.
func (b *Backend[T, ID]) SetLatency(d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("memory: SetLatency: negative latency %v", d))
	}
	b.latency.Store(int64(d))
}

// Calls returns how many calls of op the backend has received, failed ones
// included.
func (b *Backend[T, ID]) Calls(op Op) uint64 {
	if op >= numOps {
		return 0
	}
	return b.calls[op].Load()
}

// begin counts a call and runs the injected latency and faults before it;
// a non-nil error fails the call. hasID is false for GetAll, whose fault
// hook gets a nil ID.
func (b *Backend[T, ID]) begin(ctx context.Context, op Op, id ID, hasID bool) error {
	b.calls[op].Add(1)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", op, err)
	}
	if d := time.Duration(b.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("memory: %s: %w", op, ctx.Err())
		}
	}
	if b.unavailable.Load() {
		return fmt.Errorf("%w: memory: injected outage in %s", store.ErrUnavailable, op)
	}
	if err := b.takeFailure(op); err != nil {
		return err
	}
	if b.failureRate > 0 && rand.Float64() < b.failureRate {
		return fmt.Errorf("%w: memory: injected failure in %s", store.ErrUnavailable, op)
	}
	if b.fault != nil {
		var boxed any // boxed only when a hook listens
		if hasID {
			boxed = id
		}
		return b.fault(ctx, op, boxed)
	}
	return nil
}

// takeFailure consumes one of the failures FailNext armed and returns its
// error, or returns nil when none is pending.
func (b *Backend[T, ID]) takeFailure(op Op) error {
	if b.failN.Load() == 0 { // the common case takes no lock
		return nil
	}
	b.failMu.Lock()
	defer b.failMu.Unlock()
	n := b.failN.Load()
	if n == 0 { // another call took the last one
		return nil
	}
	b.failN.Store(n - 1)
	if b.failErr != nil {
		return b.failErr
	}
	return fmt.Errorf("%w: memory: injected failure in %s", store.ErrUnavailable, op)
}
