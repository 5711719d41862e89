package examples

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run builds and runs the example in dir and returns its output.
func run(t *testing.T, dir string, env ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), dir)
	build := exec.Command("go", "build", "-o", bin, "./"+dir)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", dir, err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", dir, err, out)
	}
	return string(out)
}

func TestExamples(t *testing.T) {
	tests := []struct {
		dir  string
		want string // the whole output
	}{
		{"offline", "status: pending pending: 1\nsync failed for [n1] - still pending: 1\nstatus: synced n1: call mum + buy milk and eggs\n"},
		{"sqlite", "transfer 30: <nil>\ntransfer 500: insufficient funds\n[{alice 70} {bob 50}]\n"},
		{"customhttp", "user cache write \nuser operation save \nuser cache hit \nuser operation get hit\n"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			if got := run(t, tt.dir); got != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// The quick start's console lines, stats and exported documents (timings
// vary, so the lines are checked up to them), and its spans: the store's
// under the caller's.
func TestQuickstart(t *testing.T) {
	out := run(t, "quickstart")
	for _, want := range []string{`"Name":"nexus.store.backend get"`, `"Name":"nexus.store get"`, `"Name":"handle request"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s span in the output", want)
		}
	}
	for _, want := range []string{
		"[NexusStore] save(user-123) completed in ",
		"[NexusStore] cache invalidation user-123\n",
		"[NexusStore] get(user-123) completed in ", "(cache miss)\n",
		"[NexusStore] get(user-123) completed in ", "(cache hit)\n",
		"[NexusStore] get(nobody) completed in ", "(cache miss, not found)\n",
		"gets: 4, average ", "cache hit rate 50%, errors: 0\n",
		`"Name":"nexus.store.operation.duration"`,
	} {
		i := strings.Index(out, want)
		if i < 0 {
			t.Fatalf("output lacks %q (in order):\n%s", want, out)
		}
		out = out[i+len(want):]
	}
}
