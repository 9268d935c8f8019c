package api

import (
	"net/http"
	"net/url"
	"sort"

	"github.com/bulwarkhq/bulwark/internal/redact"
	"github.com/bulwarkhq/bulwark/internal/report"
	dto "github.com/prometheus/client_model/go"
)

// guardStatus is GET /api/v1/guard/status: what the guard protects and
// what it refuses, from the configuration and the guard's own counters.
type guardStatus struct {
	// Enabled is false when no site is configured (the guard does not run).
	Enabled   bool        `json:"enabled"`
	Listen    string      `json:"listen,omitempty"`
	ListenTLS string      `json:"listen_tls,omitempty"`
	Sites     []guardSite `json:"sites"`
	// Enforcement is the edge's last recorded state: the proxy, detection
	// and the nftables mirror of the bans (nil: never recorded).
	Enforcement *report.Protection `json:"enforcement,omitempty"`
	// Blocks are the connections and requests refused since the process
	// started, by reason (bulwark_guard_blocks_total).
	Blocks []guardCount `json:"blocks"`
	// Requests are the requests answered since start, by site and status
	// class (bulwark_guard_requests_total).
	Requests []guardCount `json:"requests"`
}

type guardSite struct {
	Hosts []string `json:"hosts"`
	// Upstreams are shown without credentials, with whether each is in
	// rotation now (absent: not known yet).
	Upstreams []guardUpstream `json:"upstreams"`
	WAF       string          `json:"waf"`
	RateLimit int             `json:"rate_per_second,omitempty"`
}

type guardUpstream struct {
	URL string `json:"url"`
	Up  *bool  `json:"up,omitempty"`
}

type guardCount struct {
	Site   string  `json:"site,omitempty"`
	Reason string  `json:"reason,omitempty"`
	Code   string  `json:"code,omitempty"`
	Count  float64 `json:"count"`
}

func (s *Server) guardStatus(w http.ResponseWriter, r *http.Request, c *Call) error {
	g := s.d.Guard
	out := guardStatus{Enabled: g.Enabled(), Listen: g.Listen, ListenTLS: g.ListenTLS, Sites: []guardSite{}, Blocks: []guardCount{}, Requests: []guardCount{}}
	var metrics []*dto.MetricFamily
	if s.d.GuardMetrics != nil {
		var err error
		if metrics, err = s.d.GuardMetrics.Gather(); err != nil {
			s.log.Warn("guard status: gather metrics", "err", err)
		}
	}
	up := map[[2]string]bool{}
	for _, mf := range metrics {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetName() {
			case "bulwark_guard_blocks_total":
				out.Blocks = append(out.Blocks, guardCount{Reason: l["reason"], Count: m.GetCounter().GetValue()})
			case "bulwark_guard_requests_total":
				out.Requests = append(out.Requests, guardCount{Site: l["site"], Code: l["code"], Count: m.GetCounter().GetValue()})
			case "bulwark_guard_upstream_up":
				up[[2]string{l["site"], l["upstream"]}] = m.GetGauge().GetValue() == 1
			}
		}
	}
	sort.Slice(out.Blocks, func(i, j int) bool { return out.Blocks[i].Count > out.Blocks[j].Count })
	sort.Slice(out.Requests, func(i, j int) bool { return out.Requests[i].Count > out.Requests[j].Count })
	for _, site := range g.Sites {
		gs := guardSite{Hosts: append([]string{}, site.Hosts...), WAF: orOff(site.WAF), RateLimit: site.Limits.Rate}
		if gs.RateLimit == 0 {
			gs.RateLimit = g.Limits.Rate
		}
		for _, u := range site.Upstreams {
			gu := guardUpstream{URL: redact.String(u, false)}
			if pu, err := url.Parse(u); err == nil {
				if v, ok := up[[2]string{site.Name(), pu.Host}]; ok {
					gu.Up = &v
				}
			}
			gs.Upstreams = append(gs.Upstreams, gu)
		}
		out.Sites = append(out.Sites, gs)
	}
	if s.d.Protection != nil {
		p, err := s.d.Protection()
		if err != nil {
			s.log.Warn("guard status: the edge's recorded state", "err", err)
		}
		out.Enforcement = p
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}
