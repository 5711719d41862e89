package otelsetup_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/nexusstore/nexus/nexusotel/otelsetup"
	"github.com/nexusstore/nexus/store"
	"github.com/nexusstore/nexus/store/memory"
)

type User struct {
	ID   string
	Name string
}

// Setup builds exporters, providers and the reporter in one call; here
// the stdout exporter, whose JSON document holds nexus's instruments.
func ExampleSetup() {
	var out strings.Builder
	ctx := context.Background()
	rep, shutdown, err := otelsetup.Setup(ctx, otelsetup.WithStdout(&out))
	if err != nil {
		panic(err)
	}
	users, _ := store.New(memory.New[User, string](), store.Config[User, string]{
		IDOf:            func(u User) string { return u.ID },
		MetricsReporter: rep,
	})
	users.Save(ctx, User{ID: "ada"})
	users.Close(ctx)
	if err := shutdown(ctx); err != nil { // flushes the last export
		panic(err)
	}
	fmt.Println(strings.Contains(out.String(), `"Name":"nexus.store.operation.duration"`))
	// Output: true
}
