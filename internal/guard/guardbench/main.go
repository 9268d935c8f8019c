// Command guardbench is the load side of the guard's side-by-side
// benchmark, scripts/bench-guard.sh. It is not part of Bulwark: the
// script builds it into its work directory and runs its subcommands.
//
//	guardbench ports N                 print N free loopback ports
//	guardbench proxy [-coraza] ...     a plain httputil.ReverseProxy with the
//	                                   default transport; with -coraza, wrapped
//	                                   naively in Coraza's txhttp middleware
//	                                   with the OWASP CRS (paranoia 1, block)
//	guardbench ready ...               wait until a server answers 200 with the
//	                                   expected body, or its process died
//	guardbench client ...              a well-behaved client at a fixed rate
//	                                   from one source address: success and
//	                                   latency percentiles
//	guardbench attack ...              a flooder and a slowloris, each from its
//	                                   own source address, for a bounded time
//	guardbench sources ...             requests from N distinct client
//	                                   addresses (X-Forwarded-For through a
//	                                   trusted proxy): the guard's memory and
//	                                   limit-table sizes
//	guardbench report ...              medians, ratios against the targets,
//	                                   markdown tables and the raw JSON
//
// Design: the throughput figures come from wrk (C, cheap per request), so
// the load generator costs the machine the same whatever it measures. The
// scenarios wrk cannot express (several source addresses at once, slow
// connections, ten thousands of client addresses) are here, each bounded
// by a duration or a count, and each writes one JSON result that the
// report step turns into tables. The well-behaved client runs in a process
// of its own so that the attack's goroutines do not delay its timers and
// inflate the latency it measures.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"ports":   cmdPorts,
		"proxy":   cmdProxy,
		"ready":   cmdReady,
		"client":  cmdClient,
		"attack":  cmdAttack,
		"sources": cmdSources,
		"report":  cmdReport,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		usage()
		os.Exit(2)
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "guardbench %s: %v\n", os.Args[1], err)
		if _, ok := err.(measurementsFailedError); ok {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: guardbench ports|proxy|ready|client|attack|sources|report [flags] (see scripts/bench-guard.sh)")
}

// writeJSON writes v, indented, to path ("-": stdout).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" || path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted values, or 0 for none.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// median returns the median of values (the mean of the middle two for an
// even count), or 0 for none. values is not modified.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
