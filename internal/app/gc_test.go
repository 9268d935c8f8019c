package app

import (
	"runtime/debug"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// TestRaiseGCForWAF: a guard with a site that inspects requests raises the
// collector's target to wafGCPercent, never lowers a higher one, and
// leaves it alone without such a site or when GOGC is set.
func TestRaiseGCForWAF(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	sites := func(wafs ...string) config.Guard {
		var g config.Guard
		for _, w := range wafs {
			g.Sites = append(g.Sites, config.GuardSite{WAF: w})
		}
		return g
	}
	for _, tc := range []struct {
		name       string
		gogc       string
		before     int
		cfg        config.Guard
		wantTarget int
	}{
		{"no sites", "", 100, sites(), 100},
		{"waf off", "", 100, sites("", "off"), 100},
		{"detect", "", 100, sites("off", "detect"), wafGCPercent},
		{"block", "", 100, sites("block"), wafGCPercent},
		{"higher already", "", 400, sites("block"), 400},
		{"collector off", "", -1, sites("block"), -1},
		{"GOGC set", "50", 50, sites("block"), 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc)
			debug.SetGCPercent(tc.before)
			raiseGCForWAF(tc.cfg)
			if got := debug.SetGCPercent(100); got != tc.wantTarget {
				t.Errorf("collector target %d, want %d", got, tc.wantTarget)
			}
		})
	}
}
