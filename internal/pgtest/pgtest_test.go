package pgtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nexusstore/nexus/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestServerLifecycle runs one server through a graceful restart, a kill and
// a start: data committed before survives each, the port stays, and
// connections made before a kill fail afterwards.
func TestServerLifecycle(t *testing.T) {
	srv := pgtest.NewServer(t)
	ctx := t.Context()
	dsn := srv.Database(t)
	port := srv.Port()

	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (n int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	count := func(when string) int {
		t.Helper()
		var n int
		if err := connect(t, dsn).QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		return n
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Port() != port {
		t.Errorf("port after Restart = %d; want %d", srv.Port(), port)
	}
	if n := count("after Restart"); n != 1 {
		t.Errorf("rows after Restart = %d; want 1", n)
	}

	c2 := connect(t, dsn)
	if _, err := c2.Exec(ctx, `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Error("Running after Kill")
	}
	if err := c2.Ping(ctx); err == nil {
		t.Error("a connection made before Kill still works")
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := pgx.Connect(dctx, dsn); err == nil {
		c.Close(ctx)
		t.Error("connected to a killed server")
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count("after Kill and Start"); n != 2 {
		t.Errorf("rows after Kill and Start = %d; want 2 (an acknowledged commit was lost)", n)
	}

	dir := srv.Dir()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory after Close: %v; want it removed", err)
	}
	if err := srv.Start(ctx); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestSharedDatabases(t *testing.T) {
	srv := pgtest.Shared(t)
	if pgtest.Shared(t) != srv {
		t.Fatal("Shared returned two servers")
	}
	a, b := srv.Database(t), srv.Database(t)
	if a == b {
		t.Fatalf("two databases with one DSN %q", a)
	}
	pool := pgtest.Pool(t, a)
	var db string
	if err := pool.QueryRow(t.Context(), `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	if want := srv.DSN(db); want != a {
		t.Errorf("connected to %q through %q", db, a)
	}
}

// TestMissingServer runs a test that needs a server in a child process
// whose NEXUS_PG_BIN names no server binaries: under CI it fails, outside
// it is skipped, saying why either way.
func TestMissingServer(t *testing.T) {
	if os.Getenv("NEXUS_PGTEST_CHILD") != "" {
		pgtest.Shared(t)
		t.Fatal("Shared returned with no server binaries")
	}
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingServer$", "-test.v")
		cmd.Env = append(os.Environ(), "NEXUS_PGTEST_CHILD=1", "NEXUS_PG_BIN="+t.TempDir(), "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("true")
	if err == nil || !strings.Contains(out, "PostgreSQL is required under CI") || !strings.Contains(out, "holds no initdb and postgres") {
		t.Errorf("under CI=true: %v\n%s\nwant a failure that says why", err, out)
	}
	out, err = run("")
	if err != nil || !strings.Contains(out, "--- SKIP") || !strings.Contains(out, "set CI=true to make this a failure") {
		t.Errorf("outside CI: %v\n%s\nwant a skip that says why", err, out)
	}
}
