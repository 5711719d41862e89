package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/postgres"
)

type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// The examples that need a server have no Output line: they compile (go vet
// checks them) but do not run. The package's tests run the same calls
// against a real server.

func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL")) // e.g. postgres://app@127.0.0.1/app
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // the caller owns the pool

	b, err := postgres.New[user, string](ctx, pool, postgres.WithTable("users"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close() // stops the change feed; the pool stays open

	// The store finds the versions, transactions and change feed by itself.
	users, err := store.New(store.Backend[user, string](b), store.Config[user, string]{
		IDOf: func(u user) string { return u.ID },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close(ctx)

	if _, err := users.Save(ctx, user{ID: "u1", Name: "Ada"}); err != nil {
		log.Fatal(err)
	}
	u, err := users.Get(ctx, "u1")
	fmt.Println(u.Name, err)
}

func ExampleBackend_Subscribe() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	b, err := postgres.New[user, string](ctx, pool, postgres.WithTable("users"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	// Changes committed by anyone: this process, other replicas, plain SQL.
	stop, err := b.Subscribe(func(e store.FeedEvent[string]) {
		switch e.Kind {
		case store.FeedReset: // listening (again): what was cached may be stale
			log.Print("feed: listening; drop cached state")
		case store.FeedError: // disconnected; it reconnects by itself
			log.Printf("feed: %v", e.Err)
		case store.FeedChanged:
			log.Printf("feed: %s at version %d (deleted: %t), %v ago",
				e.ID, e.Version, e.Deleted, time.Since(e.Committed))
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
}

// Schema gives the DDL for a migration tool; New runs the same script when
// the table is missing.
func ExampleSchema() {
	script, err := postgres.Schema[string]("users")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Join(strings.Split(script, "\n")[:10], "\n"))

	_, err = postgres.Schema[string]("users; DROP TABLE users")
	fmt.Println(err)
	// Output:
	// CREATE TABLE IF NOT EXISTS "users" (
	// 	id TEXT PRIMARY KEY CONSTRAINT "users_id_length" CHECK (octet_length(id) <= 2048),
	// 	data JSONB NOT NULL,
	// 	version BIGINT NOT NULL,
	// 	ord BIGINT NOT NULL,
	// 	updated TIMESTAMPTZ NOT NULL
	// );
	// CREATE SEQUENCE IF NOT EXISTS "users_version" AS BIGINT OWNED BY "users".version;
	// CREATE UNIQUE INDEX IF NOT EXISTS "users_ord" ON "users" (ord);
	//
	// postgres: schema: option WithTable: store: invalid argument: table name "users; DROP TABLE users" is not a plain identifier (letters, digits and underscores, not starting with a digit)
}
