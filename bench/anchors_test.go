package bench

import (
	"context"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"

	"github.com/nexusstore/nexus/store"
)

// rawHits are the anchor caches of the raw cache hit: the same keys and
// the same value type, read the way each is meant to be read, with room
// for every item (no eviction while measured).
var rawHits = []subject{
	{"ristretto", func(tb testing.TB) func(context.Context, int) error {
		c, err := ristretto.NewCache(&ristretto.Config[string, Item]{
			NumCounters: 10 * numKeys, // ten times the items, as its documentation advises
			MaxCost:     2 * numKeys,  // each item costs 1
			BufferItems: 64,
			// Count only the cost given to Set, not ristretto's own
			// estimate of an entry's size.
			IgnoreInternalCost: true,
		})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(c.Close)
		for i := range numKeys {
			// Set may drop an item (its admission buffers are lossy):
			// retry until every item is in.
			for {
				c.Set(keys[i], item(i), 1)
				c.Wait()
				if _, ok := c.Get(keys[i]); ok {
					break
				}
			}
		}
		return func(_ context.Context, i int) error {
			if _, ok := c.Get(keys[i]); !ok {
				return store.ErrNotFound
			}
			return nil
		}
	}},
	{"otter", func(tb testing.TB) func(context.Context, int) error {
		c, err := otter.New(&otter.Options[string, Item]{MaximumSize: 2 * numKeys})
		if err != nil {
			tb.Fatal(err)
		}
		for i := range numKeys {
			c.Set(keys[i], item(i))
		}
		return func(_ context.Context, i int) error {
			if _, ok := c.GetIfPresent(keys[i]); !ok {
				return store.ErrNotFound
			}
			return nil
		}
	}},
}
