package memory_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

var errBoom = errors.New("boom")

// call is one operation on a test backend, by the Op it counts as.
type call struct {
	op  memory.Op
	run func(ctx context.Context, b *memory.Backend[int, string]) error
}

// allCalls calls every method once, plain ones first, on ID "a".
var allCalls = []call{
	{memory.OpSave, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.Save(ctx, "a", 1)
		return err
	}},
	{memory.OpGet, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.Get(ctx, "a")
		return err
	}},
	{memory.OpGetAll, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.GetAll(ctx, store.Query[int]{})
		return err
	}},
	{memory.OpDelete, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.Delete(ctx, "a")
		return err
	}},
	{memory.OpSave, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.SaveVersioned(ctx, "a", 2, store.VersionAny)
		return err
	}},
	{memory.OpGet, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.GetVersioned(ctx, "a")
		return err
	}},
	{memory.OpGetAll, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.GetAllVersioned(ctx, store.Query[int]{})
		return err
	}},
	{memory.OpDelete, func(ctx context.Context, b *memory.Backend[int, string]) error {
		_, err := b.DeleteVersioned(ctx, "a", store.VersionAny)
		return err
	}},
}

// The calls by name.
var (
	callSave, callGet, callGetAll, callDelete     = allCalls[0], allCalls[1], allCalls[2], allCalls[3]
	callSaveV, callGetV, callGetAllV, callDeleteV = allCalls[4], allCalls[5], allCalls[6], allCalls[7]
)

func TestInjectedFailures(t *testing.T) {
	tests := []struct {
		name  string
		opts  []memory.Option
		setup func(b *memory.Backend[int, string])
		calls []call
		// want is the error each call returns, by its message; "" is success.
		want []string
	}{
		{
			name:  "SetUnavailable",
			setup: func(b *memory.Backend[int, string]) { b.SetUnavailable(true) },
			calls: allCalls,
			want: []string{
				"store: backend unavailable: memory: injected outage in save",
				"store: backend unavailable: memory: injected outage in get",
				"store: backend unavailable: memory: injected outage in get_all",
				"store: backend unavailable: memory: injected outage in delete",
				"store: backend unavailable: memory: injected outage in save",
				"store: backend unavailable: memory: injected outage in get",
				"store: backend unavailable: memory: injected outage in get_all",
				"store: backend unavailable: memory: injected outage in delete",
			},
		},
		{
			name:  "FailNext with nil",
			setup: func(b *memory.Backend[int, string]) { b.FailNext(3, nil) },
			calls: []call{callSave, callGetV, callGetAll, callSave, callGet},
			want: []string{
				"store: backend unavailable: memory: injected failure in save",
				"store: backend unavailable: memory: injected failure in get",
				"store: backend unavailable: memory: injected failure in get_all",
				"", "",
			},
		},
		{
			name:  "FailNext with an error",
			setup: func(b *memory.Backend[int, string]) { b.FailNext(1, errBoom) },
			calls: []call{callDeleteV, callDelete},
			want:  []string{"boom", ""},
		},
		{
			name:  "FailNext replaces and zero cancels",
			setup: func(b *memory.Backend[int, string]) { b.FailNext(5, nil); b.FailNext(1, errBoom); b.FailNext(0, nil) },
			calls: []call{callSave},
			want:  []string{""},
		},
		{
			name:  "failure rate 1",
			opts:  []memory.Option{memory.WithFailureRate(1)},
			calls: []call{callGetAllV, callSaveV},
			want: []string{
				"store: backend unavailable: memory: injected failure in get_all",
				"store: backend unavailable: memory: injected failure in save",
			},
		},
		{
			name:  "failure rate 0",
			opts:  []memory.Option{memory.WithFailureRate(0)},
			calls: []call{callSave, callGet},
			want:  []string{"", ""},
		},
		{
			name: "fault hook",
			opts: []memory.Option{memory.WithFault(func(_ context.Context, op memory.Op, _ any) error {
				if op == memory.OpSave {
					return errBoom
				}
				return nil
			})},
			calls: []call{callSave, callSaveV, callGet},
			want:  []string{"boom", "boom", "store: not found: id \"a\""},
		},
		{
			name: "last fault hook wins",
			opts: []memory.Option{
				memory.WithFault(func(context.Context, memory.Op, any) error { return errBoom }),
				memory.WithFault(func(context.Context, memory.Op, any) error { return nil }),
			},
			calls: []call{callSave},
			want:  []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := memory.New[int, string](tt.opts...)
			if tt.setup != nil {
				tt.setup(b)
			}
			for i, c := range tt.calls {
				err := c.run(t.Context(), b)
				switch want := tt.want[i]; {
				case want == "" && err != nil:
					t.Fatalf("call %d (%v): %v; want success", i, c.op, err)
				case want != "" && (err == nil || err.Error() != want):
					t.Fatalf("call %d (%v): err = %v; want %q", i, c.op, err, want)
				case strings.HasPrefix(want, "store: backend unavailable") && !errors.Is(err, store.ErrUnavailable):
					t.Fatalf("call %d (%v): err = %v does not match store.ErrUnavailable", i, c.op, err)
				case want == "boom" && err != errBoom:
					t.Fatalf("call %d (%v): err = %#v; want errBoom itself", i, c.op, err)
				}
			}
		})
	}
}

func TestFailedCallsChangeNothing(t *testing.T) {
	b := memory.New[int, string]()
	b.FailNext(2, nil)
	if _, err := b.Save(t.Context(), "a", 1); err == nil {
		t.Fatal("Save succeeded; want the injected failure")
	}
	if b.Len() != 0 {
		t.Fatalf("Len = %d after a failed Save; want 0", b.Len())
	}
	b.SetUnavailable(true)
	if _, err := b.Save(t.Context(), "a", 1); err == nil {
		t.Fatal("Save succeeded while unavailable")
	}
	b.SetUnavailable(false)
	if _, err := b.Save(t.Context(), "a", 1); err == nil {
		t.Fatal("Save succeeded; want the second injected failure, kept while unavailable")
	}
	if _, err := b.Save(t.Context(), "a", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 || b.Calls(memory.OpSave) != 4 || b.Calls(memory.OpDelete) != 1 {
		t.Fatalf("Len = %d, save calls = %d, delete calls = %d; want 0, 4, 1", b.Len(), b.Calls(memory.OpSave), b.Calls(memory.OpDelete))
	}
}

func TestCancelledCallsSkipFaults(t *testing.T) {
	hookCalls := 0
	b := memory.New[int, string](memory.WithFault(func(context.Context, memory.Op, any) error {
		hookCalls++
		return nil
	}))
	b.FailNext(1, errBoom)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range allCalls {
		if err := c.run(ctx, b); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v with a cancelled context: err = %v; want context.Canceled", c.op, err)
		}
	}
	if hookCalls != 0 {
		t.Fatalf("the fault hook ran %d times for cancelled calls; want 0", hookCalls)
	}
	if err := callGet.run(t.Context(), b); err != errBoom {
		t.Fatalf("err = %v; want the FailNext error, not consumed by cancelled calls", err)
	}
	if got := b.Calls(memory.OpGet); got != 3 {
		t.Fatalf("Calls(OpGet) = %d; want 3, cancelled calls included", got)
	}
}

type ctxKey struct{}

func TestFaultHookArguments(t *testing.T) {
	type seen struct {
		op    memory.Op
		id    any
		value any
	}
	var got []seen
	b := memory.New[int, string](memory.WithFault(func(ctx context.Context, op memory.Op, id any) error {
		got = append(got, seen{op, id, ctx.Value(ctxKey{})})
		return nil
	}))
	ctx := context.WithValue(t.Context(), ctxKey{}, "v")
	for _, c := range allCalls {
		if err := c.run(ctx, b); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if len(got) != len(allCalls) {
		t.Fatalf("hook ran %d times; want %d", len(got), len(allCalls))
	}
	for i, c := range allCalls {
		var wantID any = "a"
		if c.op == memory.OpGetAll {
			wantID = nil
		}
		if g := got[i]; g.op != c.op || g.id != wantID || g.value != "v" {
			t.Errorf("call %d: hook got (%v, %v, ctx value %v); want (%v, %v, v)", i, g.op, g.id, g.value, c.op, wantID)
		}
	}
}

func TestFailureRateIsAProbability(t *testing.T) {
	b := memory.New[int, string](memory.WithFailureRate(0.5))
	const n = 4000
	failed := 0
	for range n {
		if _, err := b.Save(t.Context(), "a", 1); err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatal(err)
			}
			failed++
		}
	}
	// 12 standard deviations either side: a false failure is out of reach.
	if failed < 1600 || failed > 2400 {
		t.Fatalf("%d of %d calls failed at rate 0.5", failed, n)
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b := memory.New[int, string](memory.WithLatency(100 * time.Millisecond))
		start := time.Now()
		if _, err := b.Save(ctx, "a", 1); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Fatalf("Save took %v; want 100ms", got)
		}

		// Calls wait in parallel: latency is not spent holding the lock.
		start = time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := b.Get(ctx, "a"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Fatalf("8 concurrent Gets took %v; want 100ms", got)
		}

		b.SetLatency(0)
		start = time.Now()
		if _, err := b.Get(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 0 {
			t.Fatalf("Get with no latency took %v; want 0", got)
		}
	})
}

func TestLatencyHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.New[int, string](memory.WithLatency(time.Hour))

		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.Save(ctx, "a", 1)
		if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "memory: save: context deadline exceeded" {
			t.Fatalf("Save past its deadline: err = %v; want memory: save: context deadline exceeded", err)
		}
		if got := time.Since(start); got != 300*time.Millisecond {
			t.Fatalf("Save returned after %v; want 300ms, its deadline", got)
		}

		ctx, cancel = context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := b.Delete(ctx, "a"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Delete cancelled while waiting: err = %v; want context.Canceled", err)
		}
		if b.Len() != 0 {
			t.Fatalf("Len = %d; want 0: the Save timed out before it was applied", b.Len())
		}
	})
}

func TestControlsUnderConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b := memory.New[int, string](memory.WithFailureRate(0.1))
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range 50 {
				b.SetUnavailable(i%2 == 0)
				b.FailNext(i%3, nil)
				b.SetLatency(time.Duration(i%4) * time.Millisecond)
				time.Sleep(time.Millisecond) // fake time: lets the callers interleave
			}
			b.SetUnavailable(false)
		})
		for range 8 {
			wg.Go(func() {
				for range 50 {
					for _, c := range allCalls {
						if err := c.run(ctx, b); err != nil && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrNotFound) {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestInvalidOptionsPanic(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		want string // "" means no panic
	}{
		{"negative latency", func() { memory.New[int, int](memory.WithLatency(-1)) }, "memory: WithLatency: negative latency -1ns"},
		{"negative rate", func() { memory.New[int, int](memory.WithFailureRate(-0.1)) }, "memory: WithFailureRate: rate -0.1 outside [0, 1]"},
		{"rate above 1", func() { memory.New[int, int](memory.WithFailureRate(1.5)) }, "memory: WithFailureRate: rate 1.5 outside [0, 1]"},
		{"NaN rate", func() { memory.New[int, int](memory.WithFailureRate(math.NaN())) }, "memory: WithFailureRate: rate NaN outside [0, 1]"},
		{"clone of another type", func() { memory.New[int, int](memory.WithClone(strings.Clone)) },
			"memory: WithClone: clone is func(string) string, want func(int) int"},
		{"negative SetLatency", func() { memory.New[int, int]().SetLatency(-time.Second) }, "memory: SetLatency: negative latency -1s"},
		{"valid bounds", func() {
			memory.New[int, int](memory.WithLatency(0), memory.WithFailureRate(0), memory.WithFailureRate(1))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := func() (msg string) {
				defer func() {
					if r := recover(); r != nil {
						msg = r.(string)
					}
				}()
				tt.f()
				return ""
			}()
			if got != tt.want {
				t.Fatalf("panic = %q; want %q", got, tt.want)
			}
		})
	}
}
