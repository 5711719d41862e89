package otelsetup_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.uber.org/goleak"

	"github.com/nexusstore/nexus/internal/otlptest"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

func TestMain(m *testing.M) {
	otel.SetErrorHandler(otelErrors)
	goleak.VerifyTestMain(m)
}

// otelErrors collects what reaches the OpenTelemetry error handler.
var otelErrors = &otlptest.ErrorSink{}

type item struct {
	ID string
	N  int
}

// newStore returns a store named name over a fresh memory backend,
// reporting to rep.
func newStore(t testing.TB, name string, rep store.MetricsReporter) (*store.Store[item, string], *memory.Backend[item, string]) {
	t.Helper()
	b := memory.New[item, string]()
	s, err := store.New(b, store.Config[item, string]{IDOf: func(i item) string { return i.ID }, Name: name, MetricsReporter: rep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("closing store %s: %v", name, err)
		}
	})
	return s, b
}

// mustNotContain fails if any error's message contains s.
func mustNotContain(t testing.TB, errs []error, s string) {
	t.Helper()
	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q reveals %q", err, s)
		}
	}
}
