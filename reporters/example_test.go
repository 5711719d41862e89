package reporters_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nexusstore/nexus/reporters"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type User struct {
	ID   string
	Name string
}

func userID(u User) string { return u.ID }

func ExampleNewConsole() {
	c := reporters.NewConsole(os.Stdout)
	ctx := context.Background()
	c.ReportOperation(ctx, store.OperationMetric{
		Operation: store.OpGet, Duration: 15 * time.Millisecond, Success: true, ItemCount: 1,
		CacheResult: store.CacheResultHit, ItemID: "user-123",
	})
	c.ReportOperation(ctx, store.OperationMetric{
		Operation: store.OpSaveAll, Duration: 2100 * time.Microsecond, ItemCount: 3, Err: store.ErrUnavailable,
	})
	c.ReportCacheEvent(ctx, store.CacheMetric{Event: store.CacheEviction, ItemID: "user-7"})
	c.ReportSyncEvent(ctx, store.SyncMetric{Event: store.SyncCompleted, Duration: 40 * time.Millisecond, ItemsSynced: 12})
	// Output:
	// [NexusStore] get(user-123) completed in 15ms (cache hit)
	// [NexusStore] save_all(3 items) failed in 2.1ms: store: backend unavailable
	// [NexusStore] cache eviction user-7
	// [NexusStore] sync completed in 40ms (12 items)
}

// A console reporter on a store, showing only cache events and slow
// operations.
func ExampleNewConsole_store() {
	ctx := context.Background()
	s, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf: userID,
		MetricsReporter: reporters.NewConsole(os.Stdout,
			reporters.WithPrefix("[users]"),
			reporters.WithKinds(reporters.KindOperation, reporters.KindCache),
			reporters.WithMinDuration(time.Second)),
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	_, _ = s.Save(ctx, User{ID: "ada", Name: "Ada"})
	_, _ = s.Get(ctx, "ada")
	s.Invalidate("ada")
	// Output:
	// [users] cache write ada
	// [users] cache hit ada
	// [users] cache invalidation ada
}

func ExampleNewSlog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" { // vary from run to run
				return slog.Attr{}
			}
			return a
		},
	}))
	ctx := context.Background()
	s, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            userID,
		Name:            "users",
		MetricsReporter: reporters.NewSlog(logger, reporters.WithKinds(reporters.KindOperation)),
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	_, _ = s.Save(ctx, User{ID: "ada", Name: "Ada"})
	_, _ = s.Get(ctx, "ada")
	// Output:
	// level=DEBUG msg="nexus operation" store=users operation=save policy=cache_and_network success=true items=1 id=ada
	// level=DEBUG msg="nexus operation" store=users operation=get policy=cache_first success=true items=1 cache=hit id=ada
}

func ExampleNewStats() {
	ctx := context.Background()
	s, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            userID,
		MetricsReporter: reporters.NewStats(),
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	_, _ = s.Save(ctx, User{ID: "ada", Name: "Ada"})
	_, _ = s.Get(ctx, "ada")     // served by the cache
	_, _ = s.Get(ctx, "grace")   // a miss: not found
	_, _ = s.Get(ctx, "ada")     // a hit
	window := s.ResetStats()     // closes the window...
	_, _ = s.Get(ctx, "charles") // ...and this lands in the next one
	fmt.Println("gets:", window.OperationCounts[store.OpGet], "saves:", window.OperationCounts[store.OpSave])
	fmt.Printf("hit rate: %.2f\n", window.CacheHitRate)
	fmt.Println("gets since the reset:", s.Stats().OperationCounts[store.OpGet])
	// Output:
	// gets: 3 saves: 1
	// hit rate: 0.67
	// gets since the reset: 1
}

// Multi(otelReporter, console) keeps Store.Stats working; here NewStats
// stands in for the OpenTelemetry reporter.
func ExampleMulti() {
	ctx := context.Background()
	console := reporters.NewConsole(os.Stdout, reporters.WithKinds(reporters.KindCache))
	s, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            userID,
		MetricsReporter: reporters.Multi(reporters.NewStats(), console),
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	_, _ = s.Save(ctx, User{ID: "ada", Name: "Ada"})
	_, _ = s.Get(ctx, "ada")
	st := s.Stats()
	fmt.Println("saves:", st.OperationCounts[store.OpSave], "gets:", st.OperationCounts[store.OpGet], "hit rate:", st.CacheHitRate)
	// Output:
	// [NexusStore] cache write ada
	// [NexusStore] cache hit ada
	// saves: 1 gets: 1 hit rate: 1
}

// A buffered reporter in front of a delegate, sized by the store's
// MetricsConfig.
func ExampleNewBuffered() {
	ctx := context.Background()
	mc := store.MetricsConfig{BufferSize: 500, FlushInterval: 10 * time.Second}
	stats := reporters.NewStats() // stands in for a slow reporter
	buf := reporters.NewBuffered(stats, reporters.FromConfig(mc))
	defer buf.Close(ctx) // after the stores: delivers the rest, stops the goroutine

	s, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf: userID, MetricsReporter: buf, Metrics: mc,
	})
	if err != nil {
		panic(err)
	}
	_, _ = s.Save(ctx, User{ID: "ada", Name: "Ada"})
	fmt.Println("saves before Flush:", s.Stats().OperationCounts[store.OpSave])
	if err := s.Close(ctx); err != nil { // flushes the reporter
		panic(err)
	}
	fmt.Println("saves after Close:", s.Stats().OperationCounts[store.OpSave], "dropped:", buf.Dropped())
	// Output:
	// saves before Flush: 0
	// saves after Close: 1 dropped: 0
}
