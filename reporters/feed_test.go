package reporters

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nexusstore/nexus/reporters/reportertest"
	"github.com/nexusstore/nexus/store"
)

var feedMetrics = []store.FeedMetric{
	{Event: store.FeedReset, Invalidated: 12},
	{Event: store.FeedChanged, ItemID: "u7", Committed: time.Unix(1, 0), Lag: 3100 * time.Microsecond, Invalidated: 1},
	{Event: store.FeedError, Err: errors.New("connection refused")},
}

// Multi and Buffered pass change-feed events on, bound or not, to the
// reporters behind them that record them; the others are left alone.
func TestFeedEventsForwarded(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		wrap func(r store.MetricsReporter) (store.MetricsReporter, func())
	}{
		{"Multi", func(r store.MetricsReporter) (store.MetricsReporter, func()) {
			return Multi(r, NewStats()), func() {} // Stats does not record feed events
		}},
		{"Buffered", func(r store.MetricsReporter) (store.MetricsReporter, func()) {
			b := NewBuffered(r)
			return b, func() { _ = b.Close(ctx) }
		}},
	} {
		for _, bound := range []bool{false, true} {
			rec := reportertest.New()
			r, done := tt.wrap(rec)
			if bound {
				r = r.(store.Binder).Bind(store.StoreInfo{Name: "s"}).Reporter
			}
			fr, ok := r.(store.FeedReporter)
			if !ok {
				t.Errorf("%s (bound %v) is not a store.FeedReporter", tt.name, bound)
				continue
			}
			for _, m := range feedMetrics {
				fr.ReportFeedEvent(ctx, m)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			done()
			got := rec.Of(reportertest.KindFeed)
			if len(got) != len(feedMetrics) || got[1].Feed.Lag != feedMetrics[1].Lag {
				t.Errorf("%s (bound %v) delivered %v", tt.name, bound, got)
			}
		}
	}
}

func TestConsoleFeedLines(t *testing.T) {
	var buf bytes.Buffer
	c := NewConsole(&buf, WithPrefix(""))
	for _, m := range feedMetrics {
		c.ReportFeedEvent(context.Background(), m)
	}
	c.ReportCacheEvent(context.Background(), store.CacheMetric{Event: store.CacheInvalidation, ItemID: "u7", Remote: true, SampleRate: 1})
	want := "feed reset (12 invalidated)\n" +
		"feed changed u7 (lag 3.1ms, 1 invalidated)\n" +
		"feed error: connection refused\n" +
		"cache invalidation u7 (remote)\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestSlogFeedRecords(t *testing.T) {
	var buf bytes.Buffer
	s := NewSlog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for _, m := range feedMetrics {
		s.ReportFeedEvent(context.Background(), m)
	}
	out := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="nexus feed event" event=reset invalidated=12`,
		`event=changed lag=3.1ms invalidated=1 id=u7`,
		`level=WARN msg="nexus feed event" event=error invalidated=0 error="connection refused"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}
