package guard

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the guard's Prometheus series. Label values come from the
// configuration (sites, upstreams) or small fixed sets (reasons, status
// codes), never from requests, so their number is bounded.
type metrics struct {
	requests  *prometheus.CounterVec
	blocks    *prometheus.CounterVec
	upstreams *prometheus.GaugeVec
	waf       *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_guard_requests_total",
			Help: "Requests answered, by site (empty: no site matched) and status code.",
		}, []string{"site", "code"}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_guard_blocks_total",
			Help: "Connections and requests refused by the guard, by reason.",
		}, []string{"reason"}),
		waf: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_guard_waf_matches_total",
			Help: "Requests the request inspection (CRS) matched, by site and whether the rule set would block them.",
		}, []string{"site", "verdict"}),
		upstreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulwark_guard_upstream_up",
			Help: "1 when an upstream is in rotation, 0 while passive health skips it.",
		}, []string{"site", "upstream"}),
	}
}

func (m *metrics) request(site string, code int) {
	m.requests.WithLabelValues(site, strconv.Itoa(code)).Inc()
}

func (m *metrics) blocked(reason string) { m.blocks.WithLabelValues(reason).Inc() }

func (m *metrics) wafMatch(site string, block bool) {
	v := "pass"
	if block {
		v = "block"
	}
	m.waf.WithLabelValues(site, v).Inc()
}

func (m *metrics) upstreamState(site, upstream string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.upstreams.WithLabelValues(site, upstream).Set(v)
}

var (
	tableDesc = prometheus.NewDesc("bulwark_guard_limit_table_entries",
		"Entries in a limit table (bounded by guard.limits.max_sources).", []string{"table", "site"}, nil)
	connsDesc = prometheus.NewDesc("bulwark_guard_open_connections",
		"Connections open to the guard's listeners.", nil, nil)
	listDesc = prometheus.NewDesc("bulwark_guard_list_entries",
		"Entries in the allow and deny lists.", []string{"list"}, nil)
	bansDesc = prometheus.NewDesc("bulwark_guard_active_bans",
		"Bans in force that the guard enforces.", nil, nil)
)

// Collector exposes the guard's metrics for registration on /metrics.
func (g *Guard) Collector() prometheus.Collector { return collector{g} }

type collector struct{ g *Guard }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	c.g.metrics.requests.Describe(ch)
	c.g.metrics.blocks.Describe(ch)
	c.g.metrics.upstreams.Describe(ch)
	c.g.metrics.waf.Describe(ch)
	ch <- tableDesc
	ch <- connsDesc
	ch <- listDesc
	ch <- bansDesc
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	g.metrics.requests.Collect(ch)
	g.metrics.blocks.Collect(ch)
	g.metrics.upstreams.Collect(ch)
	g.metrics.waf.Collect(ch)
	if g.conns != nil {
		ch <- prometheus.MustNewConstMetric(tableDesc, prometheus.GaugeValue, float64(g.conns.Len()), "connections", "")
	}
	for _, s := range g.sites {
		if s.rate != nil {
			ch <- prometheus.MustNewConstMetric(tableDesc, prometheus.GaugeValue, float64(s.rate.Len()), "rate", s.name)
		}
		if s.inflight != nil {
			ch <- prometheus.MustNewConstMetric(tableDesc, prometheus.GaugeValue, float64(s.inflight.Len()), "requests_in_progress", s.name)
		}
		if s.clients != nil {
			ch <- prometheus.MustNewConstMetric(tableDesc, prometheus.GaugeValue, float64(s.clients.len()), "client_bandwidth", s.name)
		}
	}
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(g.open.Load()))
	ch <- prometheus.MustNewConstMetric(listDesc, prometheus.GaugeValue, float64(g.allow.Len()), "allow")
	ch <- prometheus.MustNewConstMetric(listDesc, prometheus.GaugeValue, float64(g.deny.Len()), "deny")
	if g.bans != nil {
		ch <- prometheus.MustNewConstMetric(bansDesc, prometheus.GaugeValue, float64(len(g.bans.Active())))
	}
}
