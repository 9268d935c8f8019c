package rules_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func open(t *testing.T, db *store.DB, bus *events.Bus, clk *clock) *rules.Rules {
	t.Helper()
	r, err := rules.Open(context.Background(), db, rules.Options{Bus: bus, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestEntries: entries are added (replacing one for the same network),
// expire out of the snapshot, are removed exactly, and every change is an
// event naming who made it; subscribers see each new snapshot.
func TestEntries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
		bus := events.NewBus(db, events.Options{Now: clk.Now})
		r := open(t, db, bus, clk)
		var seen []*rules.Snapshot
		var mu sync.Mutex
		cancel := r.Subscribe(func(s *rules.Snapshot) { mu.Lock(); seen = append(seen, s); mu.Unlock() })
		defer cancel()

		e, err := r.AddEntry(ctx, rules.Entry{List: rules.Allow, Net: pfx("198.51.100.7/24"), Reason: "office", Origin: "user:alice"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if e.Net != pfx("198.51.100.0/24") || !e.Expires.IsZero() || e.ID == 0 {
			t.Errorf("stored entry %+v", e)
		}
		if _, err := r.AddEntry(ctx, rules.Entry{List: rules.Deny, Net: pfx("2001:db8::1/128"), Reason: "abuse", Origin: "user:bob"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		// The same network again on the allow list replaces the entry.
		e2, err := r.AddEntry(ctx, rules.Entry{List: rules.Allow, Net: pfx("198.51.100.0/24"), Reason: "office (new lease)", Origin: "user:alice"}, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		snap := r.Snapshot()
		if len(snap.Allow) != 1 || snap.Allow[0] != pfx("198.51.100.0/24") || len(snap.Deny) != 1 || snap.Deny[0] != pfx("2001:db8::1/128") {
			t.Fatalf("snapshot %+v", snap)
		}
		list, err := r.Entries(ctx, rules.Allow, false)
		if err != nil || len(list) != 1 || list[0].ID != e2.ID || list[0].Reason != "office (new lease)" {
			t.Fatalf("allow list %+v, %v", list, err)
		}
		mu.Lock()
		if len(seen) != 3 || seen[2] != snap {
			t.Errorf("subscriber saw %d snapshots, want 3 ending with the current one", len(seen))
		}
		mu.Unlock()

		// The deny entry expires after an hour: a refresh drops it, the
		// listing hides it unless asked.
		clk.Advance(time.Hour + time.Second)
		if err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if s := r.Snapshot(); len(s.Deny) != 0 || len(s.Allow) != 1 || s.Version <= snap.Version {
			t.Errorf("after expiry: %+v (was version %d)", s, snap.Version)
		}
		if list, _ := r.Entries(ctx, rules.Deny, false); len(list) != 0 {
			t.Errorf("expired entry listed: %+v", list)
		}
		if list, _ := r.Entries(ctx, "", true); len(list) != 2 {
			t.Errorf("with expired: %d entries, want 2", len(list))
		}
		// A refresh with nothing changed makes no new snapshot.
		v := r.Snapshot().Version
		if err := r.Refresh(ctx); err != nil || r.Snapshot().Version != v {
			t.Errorf("idle refresh changed the version: %d -> %d (%v)", v, r.Snapshot().Version, err)
		}

		// Removal is exact: a narrower network is not the entry.
		if _, err := r.RemoveEntry(ctx, rules.Allow, pfx("198.51.100.7/32"), "user:carol"); !errors.Is(err, rules.ErrNotFound) {
			t.Errorf("removing a narrower network: %v, want ErrNotFound", err)
		}
		if _, err := r.RemoveEntry(ctx, rules.Allow, pfx("198.51.100.0/24"), "user:carol"); err != nil {
			t.Fatal(err)
		}
		if s := r.Snapshot(); len(s.Allow) != 0 {
			t.Errorf("after removal: %+v", s)
		}

		evs, err := bus.Query(ctx, events.Filter{Types: []events.Type{"list."}})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 4 {
			t.Fatalf("%d list events, want 4", len(evs))
		}
		var removed *events.Event
		for i := range evs {
			if evs[i].Type == events.TypeListRemoved {
				removed = &evs[i]
			}
		}
		if removed == nil || removed.Actor != "user:carol" || removed.Resource != "allow/198.51.100.0/24" {
			t.Errorf("removal event %+v", removed)
		}
	}, events.Migrations, rules.Migrations)
}

// TestEntryValidation: bad entries are refused naming the field, and
// store nothing.
func TestEntryValidation(t *testing.T) {
	db := storetest.SQLite(t, events.Migrations, rules.Migrations)
	clk := &clock{t: time.Now()}
	r := open(t, db, nil, clk)
	ok := rules.Entry{List: rules.Deny, Net: pfx("203.0.113.0/24"), Reason: "r", Origin: "user:a"}
	cases := []struct {
		name  string
		mod   func(*rules.Entry)
		d     time.Duration
		field string
	}{
		{"list", func(e *rules.Entry) { e.List = "block" }, 0, "list"},
		{"no net", func(e *rules.Entry) { e.Net = netip.Prefix{} }, 0, "net"},
		{"negative duration", func(e *rules.Entry) {}, -time.Second, "duration"},
		{"too long", func(e *rules.Entry) {}, rules.MaxDuration + time.Hour, "duration"},
		{"no reason", func(e *rules.Entry) { e.Reason = "  " }, 0, "reason"},
		{"long reason", func(e *rules.Entry) { e.Reason = strings.Repeat("x", rules.MaxReasonBytes+1) }, 0, "reason"},
		{"origin", func(e *rules.Entry) { e.Origin = "scenario:x" }, 0, "origin"},
	}
	for _, c := range cases {
		e := ok
		c.mod(&e)
		_, err := r.AddEntry(context.Background(), e, c.d)
		var ie *rules.InvalidError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%s: %v, want an invalid %s", c.name, err, c.field)
		}
	}
	if list, _ := r.Entries(context.Background(), "", true); len(list) != 0 {
		t.Errorf("refused entries were stored: %+v", list)
	}
}

// TestShapes: rules are created, replaced whole and removed by name,
// normalised (networks canonical, lists sorted and deduplicated), and a
// second process sharing the store sees them after Refresh.
func TestShapes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
		r := open(t, db, nil, clk)
		other := open(t, db, nil, clk)

		s, created, err := r.PutShape(ctx, rules.Shape{Name: "office", Nets: []netip.Prefix{pfx("2001:db8:7::1/48"), pfx("198.51.100.9/24"), pfx("198.51.100.0/24")},
			Accounts: []string{"bob", "alice", "bob"}, Sites: []string{"Shop.Example."}, Bandwidth: 5 << 20, Reason: "contract", Origin: "user:alice"})
		if err != nil || !created {
			t.Fatalf("put: %v, created %v", err, created)
		}
		if len(s.Nets) != 2 || s.Nets[0] != pfx("198.51.100.0/24") || s.Nets[1] != pfx("2001:db8:7::/48") ||
			strings.Join(s.Accounts, ",") != "alice,bob" || strings.Join(s.Sites, ",") != "shop.example" {
			t.Errorf("normalised rule %+v", s)
		}
		if _, created, err = r.PutShape(ctx, rules.Shape{Name: "office", Nets: []netip.Prefix{pfx("198.51.100.0/24")}, Bandwidth: 1 << 20, Origin: "user:bob"}); err != nil || created {
			t.Fatalf("replace: %v, created %v", err, created)
		}
		if _, _, err = r.PutShape(ctx, rules.Shape{Name: "site-cap", Sites: []string{"shop.example"}, Bandwidth: 50 << 20, Origin: "user:bob"}); err != nil {
			t.Fatal(err)
		}
		got := r.Shapes()
		if len(got) != 2 || got[0].Name != "office" || got[0].Bandwidth != 1<<20 || len(got[0].Accounts) != 0 || got[0].Origin != "user:bob" || !got[1].SiteWide() {
			t.Fatalf("shapes %+v", got)
		}
		if len(other.Shapes()) != 0 {
			t.Fatal("the other process saw the rules before refreshing")
		}
		if err := other.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if o := other.Shapes(); len(o) != 2 || o[0].Bandwidth != 1<<20 || o[0].Nets[0] != pfx("198.51.100.0/24") {
			t.Errorf("the other process after refresh: %+v", o)
		}
		if _, err := r.RemoveShape(ctx, "office", "user:carol"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RemoveShape(ctx, "office", "user:carol"); !errors.Is(err, rules.ErrNotFound) {
			t.Errorf("removing twice: %v", err)
		}
		if got := r.Shapes(); len(got) != 1 || got[0].Name != "site-cap" {
			t.Errorf("after removal: %+v", got)
		}
	}, events.Migrations, rules.Migrations)
}

// TestShapeValidation: each bad field is named, and nothing is stored.
func TestShapeValidation(t *testing.T) {
	db := storetest.SQLite(t, events.Migrations, rules.Migrations)
	r := open(t, db, nil, &clock{t: time.Now()})
	ok := rules.Shape{Name: "ok", Bandwidth: 1 << 20, Origin: "user:a"}
	many := make([]netip.Prefix, rules.MaxNets+1)
	for i := range many {
		many[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
	}
	cases := []struct {
		name  string
		mod   func(*rules.Shape)
		field string
	}{
		{"empty name", func(s *rules.Shape) { s.Name = "" }, "name"},
		{"upper case", func(s *rules.Shape) { s.Name = "Office" }, "name"},
		{"slash", func(s *rules.Shape) { s.Name = "a/b" }, "name"},
		{"long name", func(s *rules.Shape) { s.Name = strings.Repeat("a", 65) }, "name"},
		{"zero bandwidth", func(s *rules.Shape) { s.Bandwidth = 0 }, "bandwidth"},
		{"tiny bandwidth", func(s *rules.Shape) { s.Bandwidth = 100 }, "bandwidth"},
		{"huge bandwidth", func(s *rules.Shape) { s.Bandwidth = rules.MaxBandwidth + 1 }, "bandwidth"},
		{"too many nets", func(s *rules.Shape) { s.Nets = many }, "nets"},
		{"invalid net", func(s *rules.Shape) { s.Nets = []netip.Prefix{{}} }, "nets[0]"},
		{"empty account", func(s *rules.Shape) { s.Accounts = []string{"a", ""} }, "accounts[1]"},
		{"control in account", func(s *rules.Shape) { s.Accounts = []string{"a\nb"} }, "accounts[0]"},
		{"bad site", func(s *rules.Shape) { s.Sites = []string{"a b"} }, "sites[0]"},
		{"long reason", func(s *rules.Shape) { s.Reason = strings.Repeat("x", rules.MaxReasonBytes+1) }, "reason"},
		{"origin", func(s *rules.Shape) { s.Origin = "" }, "origin"},
	}
	for _, c := range cases {
		s := ok
		c.mod(&s)
		_, _, err := r.PutShape(context.Background(), s)
		var ie *rules.InvalidError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%s: %v, want an invalid %s", c.name, err, c.field)
		}
	}
	if got := r.Shapes(); len(got) != 0 {
		t.Errorf("refused rules were stored: %+v", got)
	}
}
