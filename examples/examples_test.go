package examples

import (
	"os/exec"
	"path/filepath"
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
