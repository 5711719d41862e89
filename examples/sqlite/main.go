// Command sqlite keeps accounts in a SQLite file (pure Go, no cgo) and moves
// money between them in a transaction: both balances change, or neither.
package main

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

type Account struct {
	ID      string `json:"id"`
	Balance int    `json:"balance"`
}

var errInsufficient = errors.New("insufficient funds")

func transfer(ctx context.Context, accounts *store.Store[Account, string], from, to string, amount int) error {
	return accounts.Transaction(ctx, func(tx *store.Tx[Account, string]) error {
		src, err := tx.Get(ctx, from)
		if err != nil {
			return err
		}
		dst, err := tx.Get(ctx, to)
		if err != nil {
			return err
		}
		if src.Balance < amount {
			return errInsufficient // nothing is applied
		}
		src.Balance -= amount
		dst.Balance += amount
		if _, err := tx.Save(ctx, src); err != nil {
			return err
		}
		_, err = tx.Save(ctx, dst)
		return err
	})
}

func main() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "nexus-sqlite")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	backend, err := sqlite.Open[Account, string](filepath.Join(dir, "bank.db"), sqlite.WithTable("accounts"))
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	accounts, err := store.New(backend, store.Config[Account, string]{IDOf: func(a Account) string { return a.ID }})
	if err != nil {
		log.Fatal(err)
	}
	defer accounts.Close(ctx)

	if _, err := accounts.SaveAll(ctx, []Account{{"alice", 100}, {"bob", 20}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("transfer 30:", transfer(ctx, accounts, "alice", "bob", 30))
	fmt.Println("transfer 500:", transfer(ctx, accounts, "alice", "bob", 500))
	all, err := accounts.GetAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(all)
}
