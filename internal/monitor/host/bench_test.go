package host

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkSample measures one full sample of this machine (without
// smartctl and apt, which are cached for minutes to hours).
func BenchmarkSample(b *testing.B) {
	c := New(Options{Processes: []string{"sshd", "systemd"}})
	ctx := context.Background()
	if _, err := c.Sample(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Sample(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollect measures a Prometheus scrape: a sample and its metrics.
func BenchmarkCollect(b *testing.B) {
	c := New(Options{})
	ch := make(chan prometheus.Metric, 4096)
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}
