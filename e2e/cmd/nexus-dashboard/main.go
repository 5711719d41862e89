// Command nexus-dashboard writes the "nexus stores" Grafana dashboard,
// defined in Go by package grafana, as JSON to stdout. From the repository
// root:
//
//	go -C e2e run ./cmd/nexus-dashboard > deploy/grafana/dashboards/nexus.json
//
// TestDashboardUpToDate fails while the committed file differs.
package main

import (
	"log"
	"os"

	"github.com/nexusstore/nexus/e2e/grafana"
)

func main() {
	out, err := grafana.JSON()
	if err != nil {
		log.Fatal("nexus-dashboard: ", err)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		log.Fatal("nexus-dashboard: ", err)
	}
}
