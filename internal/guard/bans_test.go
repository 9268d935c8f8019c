package guard

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// TestBansEnforced puts real ban decisions (SQLite) in front of the
// guard: a banned peer is reset at accept, a banned client behind a
// trusted proxy gets 403, and lifting or expiry lets them in again.
func TestBansEnforced(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(2e9, 0)}
	bans, err := detect.Open(ctx, storetest.SQLite(t, detect.Migrations), detect.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.TrustedProxies = []string{"127.0.0.5"}
	g, addr, _ := startGuard(t, cfg, Options{Bans: bans, Now: clk.Now})

	ban := func(net string, d time.Duration) {
		t.Helper()
		if _, err := bans.Add(ctx, detect.Ban{Net: netip.MustParsePrefix(net), Reason: "test", Origin: "user:tester"}, d); err != nil {
			t.Fatal(err)
		}
	}
	through := func(xff string) int { return viaProxy(t, 5, addr, xff) }

	ban("127.0.0.7/32", time.Hour)
	if !refusedAtAccept(t, 7, addr) {
		t.Error("a banned peer was not reset at accept")
	}
	ban("198.51.100.0/24", 10*time.Minute)
	if got := through("198.51.100.20"); got != http.StatusForbidden {
		t.Errorf("banned client behind a trusted proxy: %d, want 403", got)
	}
	if got := through("198.51.101.20"); got != 200 {
		t.Errorf("a client outside the banned network: %d, want 200", got)
	}
	if v := testutil.ToFloat64(g.metrics.blocks.WithLabelValues("ban")); v != 2 {
		t.Errorf("blocks{ban} = %v, want 2", v)
	}

	clk.Advance(11 * time.Minute) // the /24 expires
	if got := through("198.51.100.20"); got != 200 {
		t.Errorf("after the ban expired: %d, want 200", got)
	}
	if _, err := bans.Remove(ctx, netip.MustParsePrefix("127.0.0.7/32"), "user:tester"); err != nil {
		t.Fatal(err)
	}
	if refusedAtAccept(t, 7, addr) {
		t.Error("a lifted ban still resets the peer")
	}
}
