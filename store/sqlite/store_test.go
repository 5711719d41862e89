package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/sqlite"
)

// These tests run the store over a real SQLite file: the atomic commit
// path (TxBackend), concurrent writers, and a crash.

type account struct {
	ID      string `json:"id"`
	Balance int    `json:"balance"`
}

func accountID(a account) string { return a.ID }

func openStore(t *testing.T, path string, wrap func(*sqlite.Backend[account, string]) store.Backend[account, string]) (*store.Store[account, string], *sqlite.Backend[account, string]) {
	t.Helper()
	b, err := sqlite.Open[account, string](path)
	if err != nil {
		t.Fatal(err)
	}
	var backend store.Backend[account, string] = b
	if wrap != nil {
		backend = wrap(b)
	}
	s, err := store.New(backend, store.Config[account, string]{IDOf: accountID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close(context.Background())
		_ = b.Close()
	})
	return s, b
}

// failingTx wraps the SQLite backend so that the nth Save inside a backend
// transaction fails.
type failingTx struct {
	*sqlite.Backend[account, string]
	failAt int
}

func (f failingTx) Begin(ctx context.Context) (store.BackendTx[account, string], error) {
	tx, err := f.Backend.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &countingTx{BackendTx: tx, failAt: f.failAt}, nil
}

type countingTx struct {
	store.BackendTx[account, string]
	n, failAt int
}

func (c *countingTx) Save(ctx context.Context, id string, a account) (store.Versioned[account], error) {
	c.n++
	if c.n == c.failAt {
		return store.Versioned[account]{}, fmt.Errorf("injected: %w", store.ErrUnavailable)
	}
	return c.BackendTx.Save(ctx, id, a)
}

func TestStoreTransactionAtomicRollback(t *testing.T) {
	ctx := context.Background()
	s, b := openStore(t, filepath.Join(t.TempDir(), "bank.db"), func(b *sqlite.Backend[account, string]) store.Backend[account, string] {
		return failingTx{Backend: b, failAt: 2}
	})
	for _, a := range []account{{"alice", 100}, {"bob", 0}} {
		if _, err := b.Save(ctx, a.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	transfer := func(tx *store.Tx[account, string]) error {
		from, err := tx.Get(ctx, "alice")
		if err != nil {
			return err
		}
		to, err := tx.Get(ctx, "bob")
		if err != nil {
			return err
		}
		from.Balance -= 30
		to.Balance += 30
		if _, err := tx.Save(ctx, from); err != nil {
			return err
		}
		_, err = tx.Save(ctx, to)
		return err
	}
	err := s.Transaction(ctx, transfer)
	var te *store.TxError
	if !errors.As(err, &te) || !te.Atomic || !te.RolledBack || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Transaction = %v, want an atomic rollback", err)
	}
	if !strings.Contains(err.Error(), "rolled back by the backend transaction") {
		t.Errorf("message %q does not say how it was rolled back", err)
	}
	for id, want := range map[string]int{"alice": 100, "bob": 0} {
		got, err := b.Get(ctx, id)
		if err != nil || got.Balance != want {
			t.Errorf("file: %s = %+v, %v; want %d", id, got, err, want)
		}
		cached, err := s.Get(ctx, id, store.WithFetchPolicy(store.FetchCacheOnly))
		if err != nil || cached.Balance != want {
			t.Errorf("cache: %s = %+v, %v; want %d", id, cached, err, want)
		}
	}
}

func TestStoreTransactionCommitAndSaveAll(t *testing.T) {
	ctx := context.Background()
	s, b := openStore(t, filepath.Join(t.TempDir(), "bank.db"), nil)
	if _, err := s.SaveAll(ctx, []account{{"alice", 100}, {"bob", 5}}); err != nil {
		t.Fatal(err)
	}
	err := s.Transaction(ctx, func(tx *store.Tx[account, string]) error {
		a, _ := tx.Get(ctx, "alice")
		a.Balance -= 40
		_, _ = tx.Save(ctx, a)
		_, _ = tx.Save(ctx, account{"carol", 40})
		return tx.Delete(ctx, "bob")
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.GetAll(ctx, store.Query[account]{})
	if err != nil || len(all) != 2 || all[0] != (account{"alice", 60}) || all[1] != (account{"carol", 40}) {
		t.Errorf("file holds %+v, %v", all, err)
	}
}

// Many goroutines writing through the store into one file never see a busy
// error.
func TestStoreConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, b := openStore(t, filepath.Join(t.TempDir(), "c.db"), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := fmt.Sprintf("g%d-%d", g, i%10)
				if _, err := s.Save(ctx, account{id, i}); err != nil {
					errs <- err
				}
				if i%5 == 0 {
					if err := s.Transaction(ctx, func(tx *store.Tx[account, string]) error {
						_, err := tx.Save(ctx, account{fmt.Sprintf("tx%d", g), i})
						return err
					}); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if all, err := b.GetAll(ctx, store.Query[account]{}); err != nil || len(all) != 8*10+8 {
		t.Errorf("file holds %d items, %v", len(all), err)
	}
}

// TestCrashKeepsAcknowledgedWrites runs a writer in a child process, kills it
// with SIGKILL in the middle of its writes, reopens the file and checks that
// every write the store acknowledged is there.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if os.Getenv("NEXUS_CRASH_CHILD") != "" {
		crashChild(os.Getenv("NEXUS_CRASH_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAcknowledgedWrites$")
	cmd.Env = append(os.Environ(), "NEXUS_CRASH_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var id string
		var v int
		if _, err := fmt.Sscanf(sc.Text(), "ack %s %d", &id, &v); err != nil {
			continue
		}
		acked[id] = v
		if len(acked) >= 20 && v >= 150 {
			break // mid-way: the child is still writing
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the child acknowledged nothing")
	}

	b, err := sqlite.Open[account, string](path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for id, v := range acked {
		got, err := b.Get(context.Background(), id)
		if err != nil {
			t.Errorf("%s: acknowledged %d, lost: %v", id, v, err)
			continue
		}
		// A later write may have landed unacknowledged; never an older one.
		if got.Balance < v {
			t.Errorf("%s: acknowledged %d, file holds %d", id, v, got.Balance)
		}
	}
	t.Logf("%d acknowledged IDs survived the kill", len(acked))
}

func crashChild(path string) {
	ctx := context.Background()
	b, err := sqlite.Open[account, string](path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	s, err := store.New(store.Backend[account, string](b), store.Config[account, string]{IDOf: accountID})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for v := 0; ; v++ {
		id := fmt.Sprint("acct", v%25)
		if _, err := s.Save(ctx, account{id, v}); err != nil {
			fmt.Println("error", err)
			continue
		}
		fmt.Printf("ack %s %d\n", id, v) // acknowledged: Save returned
	}
}
