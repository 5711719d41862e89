package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// User is the item type of the examples.
type User struct {
	ID    string
	Name  string
	Roles []string
}

func Example() {
	ctx := context.Background()
	users := memory.New[User, string]()

	users.Save(ctx, "u1", User{ID: "u1", Name: "Ada"})
	users.Save(ctx, "u2", User{ID: "u2", Name: "Grace"})
	users.Save(ctx, "u3", User{ID: "u3", Name: "Alan"})

	u, _ := users.Get(ctx, "u2")
	fmt.Println("get:", u.Name)

	startsWithA := func(u User) bool { return u.Name[0] == 'A' }
	all, _ := users.GetAll(ctx, store.Query[User]{Filter: startsWithA})
	for _, u := range all {
		fmt.Println("filtered:", u.Name)
	}

	existed, _ := users.Delete(ctx, "u1")
	fmt.Println("deleted:", existed, "left:", users.Len())

	_, err := users.Get(ctx, "u1")
	fmt.Println(err, errors.Is(err, store.ErrNotFound))
	// Output:
	// get: Grace
	// filtered: Ada
	// filtered: Alan
	// deleted: true left: 2
	// store: not found: id "u1" true
}

func ExampleBackend_SaveVersioned() {
	ctx := context.Background()
	b := memory.New[string, string]()

	v1, _ := b.SaveVersioned(ctx, "greeting", "hello", store.VersionAbsent)
	v2, _ := b.SaveVersioned(ctx, "greeting", "hi", v1.Version)
	fmt.Println(v1.Version, v2.Version)

	// A write based on version 1 conflicts: version 2 is stored.
	_, err := b.SaveVersioned(ctx, "greeting", "hey", v1.Version)
	fmt.Println(err)
	if ce, ok := errors.AsType[*store.ConflictError[string]](err); ok {
		fmt.Printf("stored: %q at version %d\n", ce.Remote.Item, ce.Remote.Version)
	}
	// Output:
	// 1 2
	// store: conflict: expected version 1, found version 2
	// stored: "hi" at version 2
}

func ExampleBackend_FailNext() {
	ctx := context.Background()
	b := memory.New[int, string]()

	b.FailNext(1, nil)
	_, err := b.Save(ctx, "a", 1)
	fmt.Println(err, errors.Is(err, store.ErrUnavailable))
	_, err = b.Save(ctx, "a", 1)
	fmt.Println(err)
	// Output:
	// store: backend unavailable: memory: injected failure in save true
	// <nil>
}

func ExampleBackend_SetUnavailable() {
	ctx := context.Background()
	b := memory.New[int, string]()

	b.SetUnavailable(true)
	_, err := b.Get(ctx, "a")
	fmt.Println(err)
	b.SetUnavailable(false)
	_, err = b.Get(ctx, "a")
	fmt.Println(err)
	// Output:
	// store: backend unavailable: memory: injected outage in get
	// store: not found: id "a"
}

func ExampleBackend_Calls() {
	ctx := context.Background()
	b := memory.New[int, string]()
	b.Save(ctx, "a", 1)
	b.Get(ctx, "a")
	b.GetVersioned(ctx, "a") // counts as a get
	fmt.Println(b.Calls(memory.OpSave), b.Calls(memory.OpGet), b.Calls(memory.OpDelete))
	// Output: 1 2 0
}

func ExampleWithFault() {
	ctx := context.Background()
	errReadOnly := errors.New("read-only")
	b := memory.New[int, string](memory.WithFault(func(_ context.Context, op memory.Op, id any) error {
		if op == memory.OpSave && id == "locked" {
			return errReadOnly
		}
		return nil
	}))
	_, err := b.Save(ctx, "locked", 1)
	fmt.Println(err)
	_, err = b.Save(ctx, "open", 1)
	fmt.Println(err)
	// Output:
	// read-only
	// <nil>
}

func ExampleWithLatency() {
	b := memory.New[int, string](memory.WithLatency(time.Hour))

	// The call gives up when its context ends, long before the hour.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := b.Get(ctx, "a")
	fmt.Println(err)
	// Output: memory: get: context deadline exceeded
}

func ExampleWithFailureRate() {
	b := memory.New[int, string](memory.WithFailureRate(1))
	_, err := b.Delete(context.Background(), "a")
	fmt.Println(err)
	// Output: store: backend unavailable: memory: injected failure in delete
}

func ExampleWithClone() {
	ctx := context.Background()
	cloneUser := func(u User) User {
		u.Roles = slices.Clone(u.Roles)
		return u
	}
	b := memory.New[User, string](memory.WithClone(cloneUser))

	roles := []string{"reader"}
	b.Save(ctx, "u1", User{ID: "u1", Roles: roles})
	roles[0] = "admin" // does not reach the stored copy

	u, _ := b.Get(ctx, "u1")
	fmt.Println(u.Roles)
	// Output: [reader]
}

func ExampleBackend_Subscribe() {
	ctx := context.Background()
	users := memory.New[User, string](memory.WithChangeFeed())

	events := make(chan store.FeedEvent[string], 10)
	stop, _ := users.Subscribe(func(e store.FeedEvent[string]) { events <- e })
	defer stop()

	users.Save(ctx, "u1", User{ID: "u1", Name: "Ada"})
	users.Delete(ctx, "u1")
	for range 3 { // delivered asynchronously, in commit order
		e := <-events
		switch e.Kind {
		case store.FeedReset:
			fmt.Println("reset: listening")
		case store.FeedChanged:
			fmt.Println("changed:", e.ID, "version", e.Version, "deleted", e.Deleted)
		}
	}
	// Output:
	// reset: listening
	// changed: u1 version 1 deleted false
	// changed: u1 version 1 deleted true
}

func ExampleBackend_SetFeedDown() {
	users := memory.New[User, string](memory.WithChangeFeed())
	events := make(chan store.FeedEvent[string], 10)
	stop, _ := users.Subscribe(func(e store.FeedEvent[string]) { events <- e })
	defer stop()
	<-events // the first reset

	users.SetFeedDown(true) // as if the feed's connection dropped
	e := <-events
	fmt.Println(e.Kind == store.FeedError, e.Err)
	users.SetFeedDown(false)
	e = <-events
	fmt.Println(e.Kind == store.FeedReset)
	// Output:
	// true memory: change feed down (SetFeedDown): store: backend unavailable
	// true
}
