package nexusotel_test

import (
	"context"
	"fmt"
	"strings"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type User struct {
	ID   string
	Name string
}

// A reporter on the application's MeterProvider, with a StatsReader beside
// its exporting readers, and the store's figures read from it.
func Example() {
	sr := nexusotel.NewStatsReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr)) // plus the exporting readers
	defer mp.Shutdown(context.Background())

	rep, err := nexusotel.NewReporter(nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr))
	if err != nil {
		panic(err)
	}
	users, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            func(u User) string { return u.ID },
		MetricsReporter: rep,
	})
	if err != nil {
		panic(err)
	}
	defer users.Close(context.Background())

	ctx := context.Background()
	users.Save(ctx, User{ID: "ada", Name: "Ada"})
	for range 3 {
		users.Get(ctx, "ada") // served by the cache
	}
	users.Get(ctx, "bob") // a miss: read through, absent

	st := users.Stats()
	fmt.Println("gets:", st.OperationCounts[store.OpGet], "saves:", st.OperationCounts[store.OpSave])
	fmt.Println("hit rate:", st.CacheHitRate)
	fmt.Println("errors:", st.ErrorCount)
	// Output:
	// gets: 4 saves: 1
	// hit rate: 0.75
	// errors: 0
}

// With no options the reporter records on the global MeterProvider and
// keeps a private stats pipeline, so Stats works with nothing configured.
func ExampleNewReporter() {
	rep, err := nexusotel.NewReporter()
	if err != nil {
		panic(err)
	}
	users, _ := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            func(u User) string { return u.ID },
		MetricsReporter: rep,
	})
	defer users.Close(context.Background())

	ctx := context.Background()
	users.Save(ctx, User{ID: "ada"})
	users.Get(ctx, "ada")
	window := users.ResetStats() // closes the window...
	users.Get(ctx, "ada")
	fmt.Println(window.OperationCounts[store.OpGet], users.Stats().OperationCounts[store.OpGet]) // ...and Stats counts from zero
	// Output: 1 1
}

// CollectStats returns what Store.Stats can only hand to the
// OpenTelemetry error handler: here, a StatsReader that was never
// registered on the provider.
func ExampleReporter_CollectStats() {
	mp := sdkmetric.NewMeterProvider() // sr not registered on it
	defer mp.Shutdown(context.Background())
	sr := nexusotel.NewStatsReader()
	rep, _ := nexusotel.NewReporter(nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr))
	users, _ := store.New(memory.New[User, string](), store.Config[User, string]{
		Name:            "users",
		IDOf:            func(u User) string { return u.ID },
		MetricsReporter: rep,
	})
	defer users.Close(context.Background())

	_, err := rep.CollectStats(context.Background(), "users")
	fmt.Println(err != nil && strings.Contains(err.Error(), "not registered"))
	// Output: true
}
