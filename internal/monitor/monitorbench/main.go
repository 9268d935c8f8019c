// Command monitorbench serves internal/monitor/host's collector alone at
// /metrics on a loopback address, the way node_exporter serves its
// collectors, so that scripts/bench-monitor.sh can scrape both the same
// way: one scrape is one host sample, its metrics and their text
// exposition. It is a benchmark helper, not part of the product.
//
// usage: go run ./internal/monitor/monitorbench [-listen 127.0.0.1:0]
//
// It prints "listening on ADDR" once it accepts connections and serves
// until it is killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwarkhq/bulwark/internal/monitor/host"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen `ADDR` (loopback; port 0 picks a free one)")
	flag.Parse()
	// The collectors node_exporter's families come from, without SMART
	// and apt (node_exporter has neither) and without the Go runtime's
	// metrics (node_exporter runs with --web.disable-exporter-metrics).
	reg := prometheus.NewRegistry()
	reg.MustRegister(host.New(host.Options{}))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
