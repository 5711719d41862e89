// Command offline shows write-behind: saves land in the cache at once and
// are pushed by Sync, with retries while the backend is down and a conflict
// resolved when the backend moved on meanwhile.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type Note struct {
	ID   string
	Text string
}

func main() {
	ctx := context.Background()
	backend := memory.New[Note, string]()
	notes, err := store.New(backend, store.Config[Note, string]{
		IDOf:        func(n Note) string { return n.ID },
		WritePolicy: store.WriteCacheFirst,
		Retry:       store.RetryConfig{MaxAttempts: 2, Jitter: store.NoJitter},
		Conflict:    store.ConflictCustom,
		ResolveConflict: func(c store.Conflict[Note, string]) store.Resolution[Note] {
			return store.Merged(Note{ID: c.ID, Text: c.Remote.Item.Text + " + " + c.Local.Text})
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer notes.Close(ctx)

	if _, err := notes.Save(ctx, Note{ID: "n1", Text: "buy milk"}); err != nil {
		log.Fatal(err)
	}
	if err := notes.Sync(ctx); err != nil {
		log.Fatal(err)
	}

	// Offline: the backend is down, saves still succeed.
	backend.SetUnavailable(true)
	if _, err := notes.Save(ctx, Note{ID: "n1", Text: "buy milk and eggs"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", notes.SyncStatus(), "pending:", len(notes.PendingChanges()))

	err = notes.Sync(ctx)
	var se *store.SyncError[string]
	if errors.As(err, &se) {
		fmt.Println("sync failed for", se.IDs, "- still pending:", len(notes.PendingChanges()))
	}

	// Back online; meanwhile someone else wrote n1.
	backend.SetUnavailable(false)
	if _, err := backend.Save(ctx, "n1", Note{ID: "n1", Text: "call mum"}); err != nil {
		log.Fatal(err)
	}
	if err := notes.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	n, _ := notes.Get(ctx, "n1")
	fmt.Println("status:", notes.SyncStatus(), "n1:", n.Text)
}
