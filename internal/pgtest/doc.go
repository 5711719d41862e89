// Package pgtest runs real PostgreSQL servers for tests: each in a temporary
// directory, on a free 127.0.0.1 port, with trust authentication for the
// superuser User.
//
// The server binaries are found by Binaries ($NEXUS_PG_BIN, Debian's
// /usr/lib/postgresql/*/bin, or PATH); when there are none,
// scripts/install-postgres.sh installs Debian's postgresql package (as root,
// with apt-get). initdb runs once per test process into a template
// directory that every server copies. The server refuses to run as root, so
// as root it runs as the "postgres" user.
//
// A test package calls Main from TestMain and takes the process's shared
// server from Shared, or a server of its own from NewServer when it stops,
// kills or restarts it:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		srv := pgtest.Shared(t)
//		pool := pgtest.Pool(t, srv.Database(t)) // a fresh database
//		...
//	}
//
// Servers run with fsync off (test data need not survive an OS crash) but
// synchronous commits, so a server killed with Kill keeps every commit it
// acknowledged. Restart (graceful) and Kill then Start (crash recovery) keep
// the port and the data.
//
// When no server can be started, Shared and NewServer fail the test under
// CI (the CI environment variable set) and skip it otherwise.
package pgtest
