package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is the superuser of every server (trust authentication, no
// password).
const User = "nexus"

// readyTimeout bounds how long Start waits for a server to accept
// connections (crash recovery after Kill included).
const readyTimeout = 60 * time.Second

// stopTimeout bounds a fast shutdown before the server is killed instead.
const stopTimeout = 30 * time.Second

// Server is a PostgreSQL server of its own, in a temporary directory, on a
// free 127.0.0.1 port. Its methods are safe for concurrent use.
type Server struct {
	bin  string // the directory of initdb and postgres
	base string // temporary directory: data/, the socket, postgres.log
	port int
	cred *syscall.Credential // nil: run as this process's user

	dbs atomic.Int64 // databases created, for unique names

	mu     sync.Mutex
	cmd    *exec.Cmd     // the postmaster; nil while down
	exited chan struct{} // closed when cmd has been waited for
	closed bool
}

// New creates a data directory (a copy of one initdb run per process), and
// starts a server on it. It finds the server binaries, installing Debian's
// postgresql package when none are found (see Binaries). Close it when done.
func New(ctx context.Context) (*Server, error) {
	tmpl, err := template()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "nexus-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{bin: tmpl.bin, base: base, cred: tmpl.cred}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(base)
		return nil, err
	}
	if err := s.own(base); err != nil {
		return fail(err)
	}
	// cp -a keeps the owner and the 0700 mode the server insists on.
	if out, err := exec.Command("cp", "-a", filepath.Join(tmpl.base, "data"), filepath.Join(base, "data")).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtest: copying the template data directory: %v: %s", err, out))
	}
	// A free port can be taken between the probe and the server's bind: try
	// a few.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return fail(err)
		}
		if err = s.Start(ctx); err == nil {
			return s, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "could not bind") || ctx.Err() != nil {
			return fail(err)
		}
	}
}

// Port returns the server's TCP port on 127.0.0.1; it stays the same across
// Stop, Kill and Start.
func (s *Server) Port() int { return s.port }

// Dir returns the server's temporary directory (data/ and postgres.log are in
// it).
func (s *Server) Dir() string { return s.base }

// DSN returns a connection string for database on this server, as User.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, s.port, database)
}

// CreateDatabase creates a database with a new name and returns the name.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return name, nil
}

// Running reports whether the server process is up (it may not yet accept
// connections).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Start starts the server, when it is down (a new server, or after Stop or
// Kill), on the same port and data directory, and waits until it accepts
// connections (after Kill, once crash recovery is done). It is a no-op when
// the server is up.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("pgtest: start: the server was closed")
	}
	if s.cmd != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := s.startLocked(ctx)
		if err == nil {
			return nil
		}
		// After Kill, the killed server's backends may hold its shared memory
		// for a moment: the new postmaster refuses to start until they exit.
		if !strings.Contains(err.Error(), "still in use") || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (s *Server) startLocked(ctx context.Context) error {
	logPath := filepath.Join(s.base, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"),
		"-D", filepath.Join(s.base, "data"),
		"-p", strconv.Itoa(s.port),
		"-k", s.base, // the Unix socket lives here, not in /var/run/postgresql
		"-c", "listen_addresses=127.0.0.1",
		// Test data need not survive an OS crash: skip fsync. Commits stay
		// synchronous (written to the OS before they are acknowledged), so a
		// killed server keeps every acknowledged commit.
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=200",
	)
	cmd.Dir = s.base
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: s.cred,
		Setpgid:    true, // a Ctrl-C meant for the tests does not reach it
		// A test binary that dies without cleaning up (a panic, a timeout)
		// takes its servers with it: SIGQUIT is an immediate shutdown.
		Pdeathsig: syscall.SIGQUIT,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := waitReady(ctx, s.DSN("postgres"), exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("pgtest: postgres on port %d did not start: %w; its log ends:\n%s", s.port, err, tail(logPath))
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// waitReady polls until a connection to dsn succeeds, the server exits or
// ctx ends. Polling is the way: a server says it is ready only by accepting
// connections.
func waitReady(ctx context.Context, dsn string, exited <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, dsn)
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last connection error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Stop shuts the server down gracefully (SIGINT: fast shutdown, sessions
// are terminated and everything committed is flushed) and waits until it has
// exited. It is a no-op when the server is down.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("pgtest: stop: %w", err)
	}
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-t.C:
		killTree(cmd.Process.Pid)
		<-exited
		return fmt.Errorf("pgtest: stop: postgres did not shut down within %v; killed it", stopTimeout)
	}
}

// Kill kills the server abruptly (SIGKILL to the postmaster and its
// backends, as a crash would) and waits until the postmaster has exited.
// Clients see their connections reset. Start brings it back through crash
// recovery; every acknowledged commit survives. It is a no-op when the
// server is down.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	killTree(s.cmd.Process.Pid)
	<-s.exited
	s.cmd, s.exited = nil, nil
	return nil
}

// Restart stops the server gracefully and starts it again on the same port
// and data directory.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start(ctx)
}

// Close stops the server and removes its directory. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.stopLocked()
	return errors.Join(err, os.RemoveAll(s.base))
}

// own gives dir to the user the server runs as.
func (s *Server) own(dir string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// killTree sends SIGKILL to the postmaster pid and then to its children.
// The backends are group leaders of their own (PostgreSQL calls setsid in
// each), so killing the process group would miss them; they are listed
// before the postmaster dies, while they are still its children.
func killTree(pid int) {
	children := childrenOf(pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses,
		// so parse after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of the file at path, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// tmpl is the data directory that New copies: initdb runs once per process.
type tmpl struct {
	bin  string
	base string
	cred *syscall.Credential
}

var (
	tmplOnce sync.Once
	tmplVal  tmpl
	tmplErr  error
)

func template() (tmpl, error) {
	tmplOnce.Do(func() { tmplVal, tmplErr = makeTemplate() })
	return tmplVal, tmplErr
}

// removeTemplate removes the template data directory (Main does, at the
// end of the run).
func removeTemplate() {
	if tmplVal.base != "" {
		os.RemoveAll(tmplVal.base)
	}
}

func makeTemplate() (tmpl, error) {
	bin, err := Binaries()
	if err != nil {
		return tmpl{}, err
	}
	cred, err := serverUser()
	if err != nil {
		return tmpl{}, err
	}
	base, err := os.MkdirTemp("", "nexus-pg-template-")
	if err != nil {
		return tmpl{}, fmt.Errorf("pgtest: %w", err)
	}
	t := tmpl{bin: bin, base: base, cred: cred}
	if cred != nil {
		if err := os.Chown(base, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(base)
			return tmpl{}, fmt.Errorf("pgtest: %w", err)
		}
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"),
		"-D", filepath.Join(base, "data"),
		"-A", "trust", "-U", User,
		"-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions")
	cmd.Dir = base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(base)
		return tmpl{}, fmt.Errorf("pgtest: initdb: %v:\n%s", err, out)
	}
	return t, nil
}

// serverUser returns the credential to run the server with: the server
// refuses to run as root, so as root it runs as the "postgres" user that
// Debian's package creates; otherwise as this process's user (nil).
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and the server refuses to: %w (Debian's postgresql package creates that user)", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// Binaries returns the directory that holds the server binaries (initdb
// and postgres): $NEXUS_PG_BIN, else the highest version under Debian's
// /usr/lib/postgresql/*/bin, else the directory of postgres on PATH. When
// there is none, it runs scripts/install-postgres.sh, which installs
// Debian's postgresql package as root (and fails, saying what to install,
// otherwise).
func Binaries() (string, error) {
	if dir, ok := findBinaries(); ok {
		return dir, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("pgtest: no PostgreSQL server binaries, and the install script cannot be located")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "install-postgres.sh")
	cmd := exec.Command("bash", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("pgtest: no PostgreSQL server binaries, and %s failed: %v:\n%s", script, err, stderr.String())
	}
	if dir, ok := findBinaries(); ok {
		return dir, nil
	}
	return "", fmt.Errorf("pgtest: %s printed %q, but no server binaries are found there", script, strings.TrimSpace(string(out)))
}

func findBinaries() (string, bool) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("NEXUS_PG_BIN"); dir != "" {
		return dir, has(dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, true
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), true
	}
	return "", false
}

// version returns the major version in a /usr/lib/postgresql/N/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}
