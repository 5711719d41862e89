package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/sqlite"
)

type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// openUsers opens a backend of users in a temporary file; done closes it
// and removes the file.
func openUsers() (b *sqlite.Backend[user, string], done func()) {
	dir, err := os.MkdirTemp("", "nexus-example")
	if err != nil {
		log.Fatal(err)
	}
	b, err = sqlite.Open[user, string](filepath.Join(dir, "users.db"))
	if err != nil {
		log.Fatal(err)
	}
	return b, func() {
		b.Close()
		os.RemoveAll(dir)
	}
}

func Example() {
	dir, err := os.MkdirTemp("", "nexus-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	b, err := sqlite.Open[user, string](filepath.Join(dir, "users.db"), sqlite.WithTable("users"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	for _, u := range []user{{"u2", "Grace"}, {"u1", "Ada"}} {
		if _, err := b.Save(ctx, u.ID, u); err != nil {
			log.Fatal(err)
		}
	}
	u, err := b.Get(ctx, "u1")
	fmt.Println(u.Name, err)

	_, err = b.Get(ctx, "u3")
	fmt.Println(errors.Is(err, store.ErrNotFound), err)

	all, _ := b.GetAll(ctx, store.Query[user]{}) // first-saved order
	fmt.Println(all)
	// Output:
	// Ada <nil>
	// true sqlite: get "u3": store: not found
	// [{u2 Grace} {u1 Ada}]
}

func ExampleOpen_integerIDs() {
	type invoiceID int64
	type invoice struct {
		ID    invoiceID `json:"id"`
		Cents int64     `json:"cents"`
	}
	dir, err := os.MkdirTemp("", "nexus-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// An integer ID type makes an INTEGER PRIMARY KEY.
	b, err := sqlite.Open[invoice, invoiceID](filepath.Join(dir, "billing.db"), sqlite.WithTable("invoices"))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	if _, err := b.Save(ctx, 1001, invoice{ID: 1001, Cents: 4200}); err != nil {
		log.Fatal(err)
	}
	inv, err := b.Get(ctx, 1001)
	fmt.Println(inv.Cents, err)
	_, err = b.Get(ctx, 1002)
	fmt.Println(err)
	// Output:
	// 4200 <nil>
	// sqlite: get 1002: store: not found
}

func ExampleWithTable() {
	_, err := sqlite.Open[user, string]("unused.db", sqlite.WithTable("users; DROP TABLE users"))
	fmt.Println(err)
	// Output:
	// sqlite: option WithTable: store: invalid argument: table name "users; DROP TABLE users" is not a plain identifier (letters, digits and underscores, not starting with a digit)
}

func ExampleBackend_SaveVersioned() {
	b, done := openUsers() // as in the package example
	defer done()
	ctx := context.Background()

	v, _ := b.SaveVersioned(ctx, "u1", user{"u1", "Ada"}, store.VersionAbsent)
	fmt.Println("created at version", v.Version)
	v, _ = b.SaveVersioned(ctx, "u1", user{"u1", "Ada L."}, v.Version)
	fmt.Println("updated to version", v.Version)

	// A writer that still holds version 1 loses, and learns what is stored.
	_, err := b.SaveVersioned(ctx, "u1", user{"u1", "Ada B."}, 1)
	var conflict *store.ConflictError[user]
	if errors.As(err, &conflict) {
		fmt.Println(err)
		fmt.Println("stored:", conflict.Remote.Item.Name, "at version", conflict.Remote.Version)
	}
	// Output:
	// created at version 1
	// updated to version 2
	// sqlite: save "u1": store: conflict: expected version 1, found version 2
	// stored: Ada L. at version 2
}

func ExampleBackend_Begin() {
	b, done := openUsers() // as in the package example
	defer done()
	ctx := context.Background()

	tx, err := b.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback() // a no-op after Commit
	for _, u := range []user{{"u1", "Ada"}, {"u2", "Grace"}} {
		if _, err := tx.Save(ctx, u.ID, u); err != nil {
			log.Fatal(err)
		}
	}
	v, _ := tx.Get(ctx, "u2") // the transaction sees its own writes
	fmt.Println("in tx:", v.Item.Name)
	_, err = b.Get(ctx, "u2") // others do not, until Commit
	fmt.Println("outside:", errors.Is(err, store.ErrNotFound))
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	all, _ := b.GetAll(ctx, store.Query[user]{})
	fmt.Println("committed:", all)
	// Output:
	// in tx: Grace
	// outside: true
	// committed: [{u1 Ada} {u2 Grace}]
}
