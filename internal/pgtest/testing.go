package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

// setupTimeout bounds starting a server and creating a database from a
// test helper (a first run may install the package and run initdb).
const setupTimeout = 3 * time.Minute

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Main runs a test package whose tests use this package: it runs the tests,
// then closes the shared server and removes the template data directory,
// then checks for leaked goroutines (goleak) when the tests passed, and
// exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	removeTemplate()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Shared returns the server shared by the tests of this process, starting
// it on first use; Main closes it. Tests that stop, kill or restart a
// server should take their own (NewServer) instead.
//
// When no server can be started, the test fails under CI (the environment
// variable CI set, and not "false" or "0"), and is skipped with the reason
// otherwise.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		shared, sharedErr = New(ctx)
	})
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared
}

// NewServer starts a server for t alone, closed when t ends. Missing
// PostgreSQL fails or skips t as in Shared.
func NewServer(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := New(ctx)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Database creates a database on s and returns a connection string for it.
// The database lives as long as the server.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	name, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s.DSN(name)
}

// Pool opens a pool on dsn, closed when t ends.
func Pool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// InCI reports whether the tests run in CI, where a missing server is a
// failure rather than a reason to skip.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// unavailable fails t under CI and skips it otherwise.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("PostgreSQL is required under CI: %v", err)
	}
	t.Skipf("no PostgreSQL server (set CI=true to make this a failure): %v", err)
}
