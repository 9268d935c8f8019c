package events

import "github.com/prometheus/client_golang/prometheus"

var (
	publishedDesc = prometheus.NewDesc("bulwark_events_published_total",
		"Events stored and handed to fan-out.", nil, nil)
	deliveredDesc = prometheus.NewDesc("bulwark_events_sink_delivered_total",
		"Events a sink handled successfully.", []string{"sink"}, nil)
	droppedDesc = prometheus.NewDesc("bulwark_events_sink_dropped_total",
		"Events discarded before a sink handled them (queue full, unsubscribe, shutdown timeout).", []string{"sink"}, nil)
	errorsDesc = prometheus.NewDesc("bulwark_events_sink_errors_total",
		"Events a sink failed to handle.", []string{"sink"}, nil)
	queuedDesc = prometheus.NewDesc("bulwark_events_sink_queued",
		"Events waiting in a sink's queue.", []string{"sink"}, nil)
)

// Collector exposes Stats as Prometheus metrics, for registration on the
// /metrics registry.
func (b *Bus) Collector() prometheus.Collector { return collector{b} }

type collector struct{ b *Bus }

var _ prometheus.Collector = collector{}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{publishedDesc, deliveredDesc, droppedDesc, errorsDesc, queuedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	ch <- prometheus.MustNewConstMetric(publishedDesc, prometheus.CounterValue, float64(st.Published))
	for name, s := range st.Sinks {
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(s.Delivered), name)
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.Dropped), name)
		ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(s.Errors), name)
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(s.Queued), name)
	}
}
