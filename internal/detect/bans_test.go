package detect

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustNet(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := config.ParseNet(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBans runs the decisions against SQLite and the real PostgreSQL:
// add, match by address and network, expiry, lifting, a second process
// seeing the first's decisions after Refresh, offences and events.
func TestBans(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
		bus := events.NewBus(db, events.Options{Now: clk.Now})
		b, err := Open(ctx, db, Options{Bus: bus, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		one, err := b.Add(ctx, Ban{Net: mustNet(t, "203.0.113.7"), Reason: "ssh brute force", Origin: "scenario:sshd", Scenario: "sshd"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Add(ctx, Ban{Net: mustNet(t, "2001:db8:1::/48"), Reason: "scanner", Origin: "user:alice"}, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			addr string
			want bool
		}{
			{"203.0.113.7", true}, {"::ffff:203.0.113.7", true}, {"203.0.113.8", false},
			{"2001:db8:1:ff::9", true}, {"2001:db8:2::1", false},
		} {
			if _, got := b.Match(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Match(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		}

		// Another process (another handle on the same store) sees both
		// after Refresh; the version changes with the set.
		other, err := Open(ctx, db, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(other.Active()); got != 2 {
			t.Fatalf("a second handle sees %d active bans, want 2", got)
		}

		// Expiry: after 10 minutes the /48 is over, without any write.
		clk.Advance(11 * time.Minute)
		if _, ok := b.Match(netip.MustParseAddr("2001:db8:1::1")); ok {
			t.Error("an expired ban still matches")
		}
		v := other.Version()
		if err := other.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if other.Version() == v || len(other.Active()) != 1 {
			t.Errorf("after expiry and Refresh: version %d -> %d, %d active", v, other.Version(), len(other.Active()))
		}

		// Lifting, by exact network only.
		if _, err := b.Remove(ctx, mustNet(t, "203.0.113.0/24"), "user:bob"); !errors.Is(err, ErrNotFound) {
			t.Errorf("removing a wider network: %v, want ErrNotFound", err)
		}
		lifted, err := b.Remove(ctx, mustNet(t, "203.0.113.7/32"), "user:bob")
		if err != nil || len(lifted) != 1 || lifted[0].ID != one.ID || lifted[0].RemovedBy != "user:bob" {
			t.Fatalf("Remove: %+v, %v", lifted, err)
		}
		if _, ok := b.Match(netip.MustParseAddr("203.0.113.7")); ok {
			t.Error("a lifted ban still matches")
		}
		all, err := b.List(ctx, true, 0)
		if err != nil || len(all) != 2 {
			t.Fatalf("List(all): %d bans, %v", len(all), err)
		}
		if all[1].ID != one.ID || all[1].Removed.IsZero() || all[1].Active(clk.Now()) {
			t.Errorf("the lifted ban in the history: %+v", all[1])
		}
		if act, _ := b.List(ctx, false, 0); len(act) != 0 {
			t.Errorf("List(active) = %+v, want none", act)
		}

		// A repeat offender's history counts, lifted or not.
		if _, err := b.Add(ctx, Ban{Net: mustNet(t, "203.0.113.7"), Reason: "again", Origin: "scenario:sshd"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if n, err := b.Offences(ctx, mustNet(t, "203.0.113.7"), clk.Now().Add(-24*time.Hour)); err != nil || n != 2 {
			t.Errorf("Offences = %d, %v; want 2", n, err)
		}

		evs, err := bus.Query(ctx, events.Filter{Types: []events.Type{"ban."}})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, string(e.Type)+" "+e.Resource+" by "+e.Actor)
		}
		want := []string{
			"ban.added ban/203.0.113.7/32 by scenario:sshd",
			"ban.added ban/2001:db8:1::/48 by user:alice",
			"ban.removed ban/203.0.113.7/32 by user:bob",
			"ban.added ban/203.0.113.7/32 by scenario:sshd",
		}
		if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
			t.Errorf("events:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
		}
	}, events.Migrations, Migrations)
}

func TestBanValidation(t *testing.T) {
	db := storetest.SQLite(t, Migrations)
	b, err := Open(context.Background(), db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := netip.MustParsePrefix("192.0.2.1/32")
	for _, tc := range []struct {
		ban  Ban
		d    time.Duration
		want string
	}{
		{Ban{Reason: "x", Origin: "user:a"}, time.Hour, "no network"},
		{Ban{Net: n, Reason: "x", Origin: "user:a"}, 0, "must be positive"},
		{Ban{Net: n, Reason: "x", Origin: "user:a"}, 20 * 365 * 24 * time.Hour, "at most"},
		{Ban{Net: n, Reason: " ", Origin: "user:a"}, time.Hour, "reason is required"},
		{Ban{Net: n, Reason: strings.Repeat("r", 513), Origin: "user:a"}, time.Hour, "the limit is 512"},
		{Ban{Net: n, Reason: "x", Origin: "alice"}, time.Hour, "scenario:NAME or user:NAME"},
	} {
		if _, err := b.Add(context.Background(), tc.ban, tc.d); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%+v, %s) = %v, want an error with %q", tc.ban, tc.d, err, tc.want)
		}
	}
	if got := len(b.Active()); got != 0 {
		t.Errorf("%d bans stored from invalid input", got)
	}
	for _, bad := range []string{"", "203.0.113", "203.0.113.0/33", "example.com"} {
		if _, err := config.ParseNet(bad); err == nil {
			t.Errorf("config.ParseNet(%q) accepted", bad)
		}
	}
	if p, _ := config.ParseNet("203.0.113.9/24"); p.String() != "203.0.113.0/24" {
		t.Errorf("ParseNet masks: got %s", p)
	}
}
