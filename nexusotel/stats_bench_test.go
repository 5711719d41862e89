package nexusotel_test

import (
	"context"
	"fmt"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/nexusstore/nexus/nexusotel"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

// BenchmarkStatsAfterClosedStores measures a Get then a Stats of a live
// store (so that Stats has something new to collect), before and after
// 2,000 short-lived stores (3 saves and a get each) were created and closed
// on the same reporter: with the private stats pipeline, and with a
// StatsReader on the caller's provider.
func BenchmarkStatsAfterClosedStores(b *testing.B) {
	setups := []struct {
		name string
		rep  func(b *testing.B) store.MetricsReporter
	}{
		{"private", func(b *testing.B) store.MetricsReporter { return mustReporter(b, nexusotel.WithoutTracing()) }},
		{"caller_reader", func(b *testing.B) store.MetricsReporter {
			sr := nexusotel.NewStatsReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sr))
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			return mustReporter(b, nexusotel.WithMeterProvider(mp), nexusotel.WithStatsReader(sr), nexusotel.WithoutTracing())
		}},
	}
	ctx := context.Background()
	for _, su := range setups {
		for _, closed := range []int{0, 2000} {
			b.Run(fmt.Sprintf("%s/closed=%d", su.name, closed), func(b *testing.B) {
				rep := su.rep(b)
				s, _ := newStore(b, "live", rep)
				for i := range closed {
					o, err := store.New(memory.New[item, string](), store.Config[item, string]{
						IDOf: itemID, Name: fmt.Sprintf("tenant-%d", i), MetricsReporter: rep,
					})
					if err != nil {
						b.Fatal(err)
					}
					for j := range 3 {
						if _, err := o.Save(ctx, item{ID: fmt.Sprint(j)}); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := o.Get(ctx, "0"); err != nil {
						b.Fatal(err)
					}
					if err := o.Close(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Get(ctx, "a"); !isNotFound(err) {
						b.Fatal(err)
					}
					s.Stats()
				}
			})
		}
	}
}
