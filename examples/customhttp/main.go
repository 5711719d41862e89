// Command customhttp sends the store's metrics as JSON batches to an HTTP
// endpoint, through the buffered reporter: the custom reporter pattern of
// docs/custom-reporters.md. Without NEXUS_METRICS_URL it starts a local
// endpoint that prints what it receives.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/nexusstore/nexus/reporters"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type User struct {
	ID   string
	Name string
}

func main() {
	ctx := context.Background()
	url := os.Getenv("NEXUS_METRICS_URL")
	if url == "" {
		stop, local := startReceiver()
		defer stop()
		url = local
	}

	metrics := store.MetricsConfig{BufferSize: 50}
	buffered := reporters.NewBuffered(NewHTTPReporter(url),
		reporters.FromConfig(metrics),
		reporters.WithErrorHandler(func(err error) { log.Print("metrics: ", err) }))
	defer buffered.Close(ctx) // after the store's Close: delivers the rest

	users, err := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            func(u User) string { return u.ID },
		MetricsReporter: buffered,
		Metrics:         metrics,
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := users.Save(ctx, User{ID: "u1", Name: "Ada"}); err != nil {
		log.Fatal(err)
	}
	if _, err := users.Get(ctx, "u1"); err != nil {
		log.Fatal(err)
	}
	if err := users.Close(ctx); err != nil { // flushes: the batch is sent now
		log.Fatal(err)
	}
}

// startReceiver serves a local endpoint that prints each batch.
func startReceiver() (stop func(), url string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b Batch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, m := range b.Metrics {
			fmt.Printf("%s %s %s %s\n", b.Store, m.Kind, m.Name, m.CacheResult)
		}
	})}
	go srv.Serve(ln)
	return func() { srv.Close() }, "http://" + ln.Addr().String()
}
