package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	checkUpDesc = prometheus.NewDesc("bulwark_check_up",
		"Whether the check's last run passed (1) or failed (0).", []string{"check", "kind"}, nil)
	checkDurationDesc = prometheus.NewDesc("bulwark_check_duration_seconds",
		"Time the check's last run took.", []string{"check", "kind"}, nil)
	checkValueDesc = prometheus.NewDesc("bulwark_check_value",
		"A measurement of the check's last run (latency_seconds, status_code, cert_expiry_seconds, lag_seconds, ...).", []string{"check", "name"}, nil)
	alertsDesc = prometheus.NewDesc("bulwark_alerts",
		"Alerts by rule and state (pending, firing).", []string{"rule", "state"}, nil)
)

// Collector exposes the checks' last results and the open alerts at
// /metrics; the host's metrics are the Host collector's.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- checkUpDesc
	ch <- checkDurationDesc
	ch <- checkValueDesc
	ch <- alertsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	for _, cs := range st.Checks {
		r := cs.Result
		if r == nil {
			continue
		}
		up := 0.0
		if r.OK {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(checkUpDesc, prometheus.GaugeValue, up, cs.Name, cs.Kind)
		ch <- prometheus.MustNewConstMetric(checkDurationDesc, prometheus.GaugeValue, r.DurationSeconds, cs.Name, cs.Kind)
		for k, v := range r.Values {
			// Values come from plugins too: a value a label cannot
			// carry is left out rather than failing the scrape.
			if m, err := prometheus.NewConstMetric(checkValueDesc, prometheus.GaugeValue, v, cs.Name, k); err == nil {
				ch <- m
			}
		}
	}
	counts := map[[2]string]int{}
	for _, a := range st.Alerts {
		if a.State != "resolved" {
			counts[[2]string{a.Rule, string(a.State)}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(alertsDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
