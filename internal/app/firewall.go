package app

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/firewall"
)

// Kernel enforcement: the bans in force are mirrored into nftables
// (internal/firewall). The mirror is updated within a second of any
// change to the decisions (Bans.Version) and re-asserted in full every
// firewall.reconcile, so elements someone else dropped come back and a
// table flushed by hand is rebuilt. Bans touching an exempt network (the
// guard's allow list, trusted proxies) are left out of the kernel: a
// dropped packet cannot be told apart by path, and an allowed address
// must keep passing. The guard still enforces them for everyone else.

// openFirewall opens the firewall of a configuration; netns is for tests
// (a namespace's file descriptor; 0: this one).
func openFirewall(cfg config.Firewall, netns int) (*firewall.Firewall, error) {
	if err := firewall.Available(); err != nil {
		return nil, fmt.Errorf("firewall.enabled: %w (run as root or with CAP_NET_ADMIN, or set firewall.enabled: false)", err)
	}
	fw, err := firewall.Open(firewall.Options{Table: cfg.Table, Forward: cfg.Forward, NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	return fw, nil
}

// firewallElements are the bans to load: the active ones, less those
// overlapping an exempt network.
func firewallElements(active []detect.Ban, exempt []netip.Prefix) []firewall.Element {
	out := make([]firewall.Element, 0, len(active))
next:
	for _, b := range active {
		for _, e := range exempt {
			if b.Net.Overlaps(e) {
				continue next
			}
		}
		out = append(out, firewall.Element{Net: b.Net, Expires: b.Expires})
	}
	return out
}

// mirrorBans keeps fw equal to the bans in force, less the exempt
// networks, until ctx ends.
func (a *App) mirrorBans(ctx context.Context, fw *firewall.Firewall, reconcile time.Duration) {
	log := a.Logger
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var seen [2]uint64
	var last time.Time
	failing := false
	for {
		// A change to the bans or to the allow list (runtime rules).
		if v := [2]uint64{a.Bans.Version(), a.Rules.Snapshot().Version}; v != seen || time.Since(last) >= reconcile {
			active := a.Bans.Active()
			want := firewallElements(active, a.exemptNets())
			st, err := fw.Sync(want)
			a.firewallSynced(len(active), len(want), st, err)
			switch {
			case err != nil && !failing:
				log.Error("firewall: sync", "err", err)
				failing = true
			case err == nil:
				if failing || st.Added+st.Removed+st.Updated > 0 {
					log.Info("firewall: bans loaded", "total", st.Total, "added", st.Added, "removed", st.Removed, "updated", st.Updated, "took", st.Duration)
				}
				failing = false
				seen, last = v, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// firewallCollector exposes the drop counters.
type firewallCollector struct{ fw *firewall.Firewall }

var (
	fwPacketsDesc = prometheus.NewDesc("bulwark_firewall_dropped_packets_total", "Packets from banned sources dropped by nftables.", nil, nil)
	fwBytesDesc   = prometheus.NewDesc("bulwark_firewall_dropped_bytes_total", "Bytes from banned sources dropped by nftables.", nil, nil)
)

func (c firewallCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- fwPacketsDesc
	ch <- fwBytesDesc
}

func (c firewallCollector) Collect(ch chan<- prometheus.Metric) {
	p, b, err := c.fw.Dropped()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(fwPacketsDesc, prometheus.CounterValue, float64(p))
	ch <- prometheus.MustNewConstMetric(fwBytesDesc, prometheus.CounterValue, float64(b))
}
