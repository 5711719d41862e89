package store_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nexusstore/nexus/reporters"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type Book struct {
	ISBN  string
	Title string
}

func ExampleNew() {
	books, err := store.New(memory.New[Book, string](), store.Config[Book, string]{
		IDOf: func(b Book) string { return b.ISBN },
	})
	if err != nil {
		panic(err)
	}
	defer books.Close(context.Background())
	fmt.Println(books.Name())

	_, err = store.New(memory.New[Book, string](), store.Config[Book, string]{})
	fmt.Println(err)
	// Output:
	// book
	// store: invalid config: IDOf: is required
}

func ExampleStore_Get() {
	ctx := context.Background()
	books, _ := store.New(memory.New[Book, string](), store.Config[Book, string]{
		IDOf: func(b Book) string { return b.ISBN },
	})
	defer books.Close(ctx)

	books.Save(ctx, Book{ISBN: "978-0", Title: "The Go Programming Language"})
	b, _ := books.Get(ctx, "978-0")                                                    // the cache answers
	fresh, _ := books.Get(ctx, "978-0", store.WithFetchPolicy(store.FetchNetworkOnly)) // the backend answers
	_, err := books.Get(ctx, "missing")
	fmt.Println(b.Title)
	fmt.Println(fresh.Title)
	fmt.Println(errors.Is(err, store.ErrNotFound))
	// Output:
	// The Go Programming Language
	// The Go Programming Language
	// true
}

func ExampleStore_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	books, _ := store.New(memory.New[Book, string](), store.Config[Book, string]{
		IDOf: func(b Book) string { return b.ISBN },
	})
	defer books.Close(context.Background())

	changes := 0
	for change, err := range books.Watch(ctx, "978-0") {
		if err != nil {
			break
		}
		switch changes++; changes {
		case 1: // the current state: absent
			fmt.Println("deleted:", change.Deleted)
			books.Save(ctx, Book{ISBN: "978-0", Title: "Go"})
		case 2:
			fmt.Println("saved:", change.Value.Title)
			books.Delete(ctx, "978-0")
		case 3:
			fmt.Println("deleted:", change.Deleted)
			cancel() // ends the loop
		}
	}
	// Output:
	// deleted: true
	// saved: Go
	// deleted: true
}

func ExampleStore_Sync() {
	ctx := context.Background()
	backend := memory.New[Book, string]()
	books, _ := store.New(backend, store.Config[Book, string]{
		IDOf:        func(b Book) string { return b.ISBN },
		WritePolicy: store.WriteCacheFirst, // write-behind: saves are queued
	})
	defer books.Close(ctx)

	books.Save(ctx, Book{ISBN: "978-0", Title: "Go"})
	fmt.Println(books.SyncStatus(), backend.Len())
	if err := books.Sync(ctx); err != nil {
		panic(err)
	}
	fmt.Println(books.SyncStatus(), backend.Len())
	// Output:
	// pending 0
	// synced 1
}

func ExampleStore_Transaction() {
	ctx := context.Background()
	books, _ := store.New(memory.New[Book, string](), store.Config[Book, string]{
		IDOf: func(b Book) string { return b.ISBN },
	})
	defer books.Close(ctx)

	err := books.Transaction(ctx, func(tx *store.Tx[Book, string]) error {
		tx.Save(ctx, Book{ISBN: "1", Title: "One"})
		tx.Save(ctx, Book{ISBN: "2", Title: "Two"})
		return errors.New("changed my mind") // nothing is applied
	})
	all, _ := books.GetAll(ctx)
	fmt.Println(err, len(all))
	// Output: changed my mind 0
}

func ExampleStore_Stats() {
	ctx := context.Background()
	books, _ := store.New(memory.New[Book, string](), store.Config[Book, string]{
		IDOf:            func(b Book) string { return b.ISBN },
		MetricsReporter: reporters.NewStats(), // aggregates without OpenTelemetry
	})
	defer books.Close(ctx)

	books.Save(ctx, Book{ISBN: "1"})
	books.Invalidate("1")
	books.Get(ctx, "1") // miss
	books.Get(ctx, "1") // hit
	st := books.Stats()
	fmt.Println(st.OperationCounts[store.OpGet], st.CacheHitRate)
	// Output: 2 0.5
}
