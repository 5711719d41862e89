// Command otelhttp serves a nexus store over HTTP behind otelhttp, the
// OpenTelemetry instrumentation of net/http, with one telemetry pipeline for
// both: each request is a server span, and the store's operation spans, with
// their backend calls, are its children in the same trace.
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 go run ./examples/otelhttp
//
// It serves on a free loopback port, sends itself three requests through an
// otelhttp client (so that each trace starts at the caller, whose trace
// context the server continues), prints the answers and exits. In Jaeger
// each request is then one trace:
//
//	PUT (client) > PUT /users/{id} (server) > nexus.store save > nexus.store.backend save
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type User struct {
	ID   string
	Name string
}

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal("otelhttp: ", err)
	}
}

func run(ctx context.Context) (err error) {
	if _, set := os.LookupEnv("OTEL_EXPORTER_OTLP_ENDPOINT"); !set {
		os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317") // the local Collector
	}
	// One pipeline: WithGlobal installs the providers as the globals, which
	// otelhttp uses by default, so the server's spans and the store's share
	// traces (and an exporter).
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithOTLP(), otelsetup.WithGlobal())
	if err != nil {
		return err
	}
	// WithGlobal also installed the propagators (OTEL_PROPAGATORS; by default
	// tracecontext and baggage): otelhttp reads the caller's trace context
	// (the traceparent header) with them, and its client writes it.
	defer func() { err = errors.Join(err, shutdown(ctx)) }()

	users, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            func(u User) string { return u.ID },
		Name:            "users",
		MetricsReporter: rep,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, users.Close(ctx)) }()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		// r.Context() carries the request's server span: the store's spans
		// go under it.
		u, err := users.Get(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, "no such user", http.StatusNotFound)
		case err != nil:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, u.Name)
		}
	})
	mux.HandleFunc("PUT /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		name, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if _, err := users.Save(r.Context(), User{ID: r.PathValue("id"), Name: string(name)}); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// One server span per request, named after its route once the mux has
	// matched it ("GET /users/{id}").
	srv := &http.Server{Handler: otelhttp.NewHandler(mux, "users")}
	go srv.Serve(l)
	defer func() { err = errors.Join(err, srv.Shutdown(ctx)) }()

	// A caller: otelhttp's transport makes a client span per request and
	// sends its trace context along.
	client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport)}
	defer client.CloseIdleConnections()
	base := "http://" + l.Addr().String()
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPut, "/users/ada", "Ada Lovelace"},
		{http.MethodGet, "/users/ada", ""},
		{http.MethodGet, "/users/nobody", ""},
	} {
		req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, strings.NewReader(c.body))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		fmt.Printf("%s %s: %d %s\n", c.method, c.path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
