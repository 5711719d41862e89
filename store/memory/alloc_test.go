//go:build !race

package memory_test

import (
	"testing"

	"github.com/nexusstore/nexus/store/memory"
)

// TestHotPathsDoNotAllocate guards Get and re-saving an item, the calls a
// store makes on every cache miss and write-through. (The race detector
// allocates, hence the build constraint.)
func TestHotPathsDoNotAllocate(t *testing.T) {
	ctx := t.Context()
	b := memory.New[int, string]()
	if _, err := b.Save(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    func()
	}{
		{"Get", func() { _, _ = b.Get(ctx, "a") }},
		{"GetVersioned", func() { _, _ = b.GetVersioned(ctx, "a") }},
		{"Save", func() { _, _ = b.Save(ctx, "a", 2) }},
		{"Delete of an absent item", func() { _, _ = b.Delete(ctx, "absent") }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s allocates %v times per call; want 0", tt.name, n)
		}
	}
}
