package collector

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds the wait for the Collector's listeners.
	readyTimeout = 30 * time.Second
	// stopTimeout is the grace period between SIGTERM and SIGKILL.
	stopTimeout = 15 * time.Second
	// pollInterval spaces the readiness probes.
	pollInterval = 50 * time.Millisecond
)

// noInternalMetrics keeps the Collector from serving its own metrics on
// localhost:8888, its default: two Collectors (or anything else on 8888)
// would collide, and the tests read the pipelines' output, not the
// Collector's self-observation.
const noInternalMetrics = "--set=service.telemetry.metrics.level=none"

// Process is a running Collector, or another program started by
// StartProcess. Its methods are safe for concurrent use.
type Process struct {
	t      testing.TB
	name   string // prefixes messages: "collector", "prometheus"
	path   string
	args   []string
	env    []string
	ready  []string
	cmd    *exec.Cmd
	output syncBuffer    // stdout and stderr
	done   chan struct{} // closed once the process has exited
	err    error         // from Wait; read after done is closed
	stop   sync.Once
}

// Start runs the Collector with the config file config and the environment
// variables env ("KEY=value", added to the test's environment less its
// OTEL_* variables, which configure the test's SDK, not the Collector). It
// returns once every address in ready accepts TCP connections, and fails t
// if the Collector exits or is not ready within 30s. The Collector is
// stopped when the test ends; its output is logged if the test failed.
func Start(t testing.TB, config string, env []string, ready ...string) *Process {
	t.Helper()
	return StartProcess(t, "collector", Binary(t), []string{"--config", config, noInternalMetrics}, env, ready...)
}

// StartProcess runs the program at path with args as Start runs the
// Collector: env is added to the test's environment less its OTEL_*
// variables; it returns once every address in ready accepts TCP
// connections (30s at most); the program is stopped when the test ends
// (SIGTERM, then SIGKILL after 15s; an exit status other than 0 fails the
// test) and its output is logged if the test failed. name prefixes its
// messages.
func StartProcess(t testing.TB, name, path string, args, env []string, ready ...string) *Process {
	t.Helper()
	p := &Process{
		t:     t,
		name:  name,
		path:  path,
		args:  args,
		env:   env,
		ready: ready,
		cmd:   exec.Command(path, args...),
		done:  make(chan struct{}),
	}
	p.cmd.Env = environ(env)
	p.cmd.Stdout = &p.output
	p.cmd.Stderr = &p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output (%s %s):\n%s", name, path, strings.Join(args, " "), p.output.String())
		}
	})
	p.waitReady(ready)
	return p
}

// waitReady polls the addresses until each accepts a connection.
func (p *Process) waitReady(addrs []string) {
	p.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, pollInterval)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				p.t.Fatalf("%s: exited before listening on %s: %v", p.name, addr, p.err)
			case <-time.After(pollInterval):
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("%s: not listening on %s after %v: %v", p.name, addr, readyTimeout, err)
			}
		}
	}
}

// Stop sends SIGTERM, which makes the Collector shut its pipelines down
// (exporters flush), and waits for it to exit; after 15s it kills it. A
// process that does not exit cleanly fails the test. Stop is idempotent.
func (p *Process) Stop() {
	p.t.Helper()
	p.stop.Do(func() {
		select {
		case <-p.done:
			p.t.Errorf("%s: exited before Stop: %v", p.name, p.err)
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.t.Errorf("%s: SIGTERM: %v", p.name, err)
		}
		select {
		case <-p.done:
			if p.err != nil {
				p.t.Errorf("%s: exit after SIGTERM: %v", p.name, p.err)
			}
		case <-time.After(stopTimeout):
			p.cmd.Process.Kill()
			<-p.done
			p.t.Errorf("%s: still running %v after SIGTERM; killed", p.name, stopTimeout)
		}
	})
}

// Restart stops the process (Stop) and starts it again (StartAgain).
func (p *Process) Restart() *Process {
	p.t.Helper()
	p.Stop()
	return p.StartAgain()
}

// StartAgain starts the program of a stopped process again, with the same
// arguments and environment, on the same addresses, and returns once they
// accept connections, as StartProcess does. The new Process replaces p,
// which stays stopped; between Stop and StartAgain the program is away, as
// in an outage or a redeploy.
func (p *Process) StartAgain() *Process {
	p.t.Helper()
	return StartProcess(p.t, p.name, p.path, p.args, p.env, p.ready...)
}

// Output returns what the process has written to stdout and stderr so far.
func (p *Process) Output() string { return p.output.String() }

// Validate runs "otelcol validate" on the config file config with the
// environment variables env (as in Start) and returns its output and its
// error, nil if the config is valid.
func Validate(t testing.TB, config string, env []string) (string, error) {
	t.Helper()
	cmd := exec.Command(Binary(t), "validate", "--config", config)
	cmd.Env = environ(env)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// FreeAddr returns a loopback address ("127.0.0.1:port") with a port that
// was free a moment ago: the kernel picks it, the listener is closed, and
// the Collector (or Prometheus) binds it next.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("collector: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// environ is the test's environment without its OTEL_* variables, plus env
// (later entries win).
func environ(env []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// syncBuffer is a bytes.Buffer that the process's output copier writes
// while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
