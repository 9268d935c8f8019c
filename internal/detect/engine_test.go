package detect

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

type engineFixture struct {
	clk  *clock
	bans *Bans
	bus  *events.Bus
	e    *Engine
	db   *store.DB
}

func newEngineFixture(t *testing.T, db *store.DB, cfg config.Detect, exempt func(netip.Addr) bool) *engineFixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	bus := events.NewBus(db, events.Options{Now: clk.Now})
	bans, err := Open(ctx, db, Options{Bus: bus, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cfg, bans, EngineOptions{Now: clk.Now, Exempt: exempt})
	if err != nil {
		t.Fatal(err)
	}
	return &engineFixture{clk: clk, bans: bans, bus: bus, e: e, db: db}
}

func defaultDetect() config.Detect { return config.Default().Detect }

func sshFail(src string) Signal {
	return Signal{Source: netip.MustParseAddr(src), From: "sshd", Kind: "auth_failure", User: "root"}
}

// TestScenarioSSHBruteForce follows the built-in ssh-bruteforce scenario
// (capacity 5, one leak per 2 minutes, 1 h ban doubling to a week) on both
// stores: five failures fill the bucket, the sixth overflows it and bans
// the /32 with the reason and origin; the ban is an event; a repeat
// offender's second and third bans double; an exempt source is never
// banned.
func TestScenarioSSHBruteForce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		exempt := netip.MustParseAddr("198.51.100.1")
		f := newEngineFixture(t, db, defaultDetect(), func(a netip.Addr) bool { return a == exempt })
		for i := range 5 {
			if got := f.e.Process(ctx, sshFail("203.0.113.7")); len(got) != 0 {
				t.Fatalf("failure %d banned already: %+v", i+1, got)
			}
		}
		got := f.e.Process(ctx, sshFail("203.0.113.7"))
		if len(got) != 1 {
			t.Fatalf("the sixth failure: %d bans, want 1", len(got))
		}
		b := got[0]
		if b.Net.String() != "203.0.113.7/32" || b.Origin != "scenario:ssh-bruteforce" || b.Scenario != "ssh-bruteforce" ||
			b.Expires.Sub(b.Start) != time.Hour || !strings.Contains(b.Reason, `"root"`) {
			t.Errorf("ban = %+v", b)
		}
		if _, ok := f.bans.Match(netip.MustParseAddr("203.0.113.7")); !ok {
			t.Error("the ban is not in force")
		}
		evs, err := f.bus.Query(ctx, events.Filter{Types: []events.Type{events.TypeBanAdded}})
		if err != nil || len(evs) != 1 || evs[0].Actor != "scenario:ssh-bruteforce" {
			t.Fatalf("ban.added events: %+v, %v", evs, err)
		}
		// While banned, more failures do not stack bans.
		for range 10 {
			if got := f.e.Process(ctx, sshFail("203.0.113.7")); len(got) != 0 {
				t.Fatalf("a banned source was banned again: %+v", got)
			}
		}
		// Repeat offences double the ban: 2 h, then 4 h.
		for _, want := range []time.Duration{2 * time.Hour, 4 * time.Hour} {
			f.clk.Advance(f.bans.Active()[0].Expires.Sub(f.clk.Now()) + time.Second)
			if len(f.bans.Active()) != 0 {
				t.Fatal("the ban did not expire")
			}
			var got []Ban
			for range 20 {
				if got = f.e.Process(ctx, sshFail("203.0.113.7")); len(got) > 0 {
					break
				}
			}
			if len(got) != 1 || got[0].Expires.Sub(got[0].Start) != want || !strings.Contains(got[0].Reason, "repeat offender") {
				t.Fatalf("repeat ban: %+v, want one of %s", got, want)
			}
		}
		// An exempt source overflows but is never banned.
		for range 20 {
			if got := f.e.Process(ctx, sshFail(exempt.String())); len(got) != 0 {
				t.Fatalf("an exempt source was banned: %+v", got)
			}
		}
	}, events.Migrations, Migrations)
}

// TestScenarioLeak: failures spaced by the leak interval never overflow;
// the same number back to back does.
func TestScenarioLeak(t *testing.T) {
	f := newEngineFixture(t, storetest.SQLite(t, events.Migrations, Migrations), defaultDetect(), nil)
	ctx := context.Background()
	for i := range 50 {
		if got := f.e.Process(ctx, sshFail("203.0.113.9")); len(got) != 0 {
			t.Fatalf("failure %d spaced by the leak overflowed", i)
		}
		f.clk.Advance(2 * time.Minute)
	}
	// Four minutes apart the bucket empties; back to back it overflows on the sixth.
	n := 0
	for n = 1; n <= 10; n++ {
		if got := f.e.Process(ctx, sshFail("203.0.113.9")); len(got) > 0 {
			break
		}
	}
	if n != 6 {
		t.Errorf("back to back, the ban came at failure %d, want 6", n)
	}
}

// TestScenarioFilters runs signals past filters of every kind.
func TestScenarioFilters(t *testing.T) {
	cfg := defaultDetect()
	cfg.Disable = BuiltinScenarioNames()
	cfg.Scenarios = []config.DetectScenario{
		{Name: "api-4xx", From: []string{"guard"}, Status: []string{"4xx"}, Sites: []string{"shop.example"}, Paths: []string{"/api"},
			Capacity: 1, Leak: config.Duration(time.Hour), Ban: config.Duration(time.Minute)},
		{Name: "per-user", From: []string{"myapp"}, Kinds: []string{"auth_failure"}, GroupBy: "source_user",
			Capacity: 1, Leak: config.Duration(time.Hour), Ban: config.Duration(time.Minute)},
	}
	cfg.Parsers = []config.DetectParser{{Name: "myapp", Pattern: `(?P<source>\S+)`, Kind: "auth_failure"}}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		sigs  []Signal
		bans  int
		where string
	}{
		{"match", []Signal{
			{From: "guard", Status: 404, Site: "shop.example", Path: "/api/x"},
			{From: "guard", Status: 403, Site: "shop.example", Path: "/api"}}, 1, "203.0.113.1/32"},
		{"wrong site", []Signal{
			{From: "guard", Status: 404, Site: "blog.example", Path: "/api/x"},
			{From: "guard", Status: 404, Site: "blog.example", Path: "/api/x"}}, 0, ""},
		{"path prefix is per segment", []Signal{
			{From: "guard", Status: 404, Site: "shop.example", Path: "/apix"},
			{From: "guard", Status: 404, Site: "shop.example", Path: "/apix"}}, 0, ""},
		{"status class", []Signal{
			{From: "guard", Status: 500, Site: "shop.example", Path: "/api"},
			{From: "guard", Status: 200, Site: "shop.example", Path: "/api"}}, 0, ""},
		{"wrong origin", []Signal{
			{From: "nginx-access", Status: 404, Site: "shop.example", Path: "/api"},
			{From: "nginx-access", Status: 404, Site: "shop.example", Path: "/api"}}, 0, ""},
		{"one bucket per user", []Signal{
			{From: "myapp", Kind: "auth_failure", User: "a"},
			{From: "myapp", Kind: "auth_failure", User: "b"}}, 0, ""},
		{"same user overflows", []Signal{
			{From: "myapp", Kind: "auth_failure", User: "a"},
			{From: "myapp", Kind: "auth_failure", User: "a"}}, 1, "203.0.113.1/32"},
		{"wrong kind", []Signal{
			{From: "myapp", Kind: "probe", User: "a"},
			{From: "myapp", Kind: "probe", User: "a"}}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEngineFixture(t, storetest.SQLite(t, events.Migrations, Migrations), cfg, nil)
			var got []Ban
			for _, s := range tc.sigs {
				s.Source = netip.MustParseAddr("203.0.113.1")
				got = append(got, f.e.Process(ctx, s)...)
			}
			if len(got) != tc.bans || tc.bans > 0 && got[0].Net.String() != tc.where {
				t.Errorf("bans = %+v, want %d on %s", got, tc.bans, tc.where)
			}
		})
	}
}

// TestScenarioIPv6Prefix: addresses of one /64 share a bucket and the ban
// covers the /64; IPv4-mapped addresses count as IPv4.
func TestScenarioIPv6Prefix(t *testing.T) {
	f := newEngineFixture(t, storetest.SQLite(t, events.Migrations, Migrations), defaultDetect(), nil)
	ctx := context.Background()
	var got []Ban
	for i := range 6 {
		got = f.e.Process(ctx, sshFail(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
	}
	if len(got) != 1 || got[0].Net.String() != "2001:db8:1:2::/64" {
		t.Errorf("six addresses of one /64: %+v", got)
	}
	for range 6 {
		got = f.e.Process(ctx, sshFail("::ffff:192.0.2.5"))
	}
	if len(got) != 1 || got[0].Net.String() != "192.0.2.5/32" {
		t.Errorf("an IPv4-mapped source: %+v", got)
	}
}

// TestScenarioBucketsBounded: an attacker cycling 20,000 addresses fills
// at most max_buckets buckets per scenario.
func TestScenarioBucketsBounded(t *testing.T) {
	cfg := defaultDetect()
	cfg.MaxBuckets = 1000
	f := newEngineFixture(t, storetest.SQLite(t, events.Migrations, Migrations), cfg, nil)
	ctx := context.Background()
	for i := range 20000 {
		f.e.Process(ctx, sshFail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()))
	}
	for _, s := range f.e.scen {
		if n := s.buckets.Len(); n > 1000 {
			t.Errorf("scenario %s holds %d buckets, bound 1000", s.cfg.Name, n)
		}
	}
	if n := f.e.scen[0].buckets.Len(); n < 500 {
		t.Errorf("ssh-bruteforce holds only %d buckets; the table is not being used", n)
	}
}

// TestEngineConfig: disabling and replacing built-ins, and bad sections.
func TestEngineConfig(t *testing.T) {
	db := storetest.SQLite(t, events.Migrations, Migrations)
	bans, err := Open(context.Background(), db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultDetect()
	cfg.Disable = []string{"ssh-probe"}
	cfg.Scenarios = []config.DetectScenario{{Name: "ssh-bruteforce", From: []string{"sshd"}, Capacity: 2, Leak: config.Duration(time.Minute), Ban: config.Duration(time.Hour)}}
	names := map[string]int{}
	for _, s := range Scenarios(cfg) {
		names[s.Name] = s.Capacity
	}
	if _, ok := names["ssh-probe"]; ok || names["ssh-bruteforce"] != 2 || len(names) != len(BuiltinScenarioNames())-1 {
		t.Errorf("scenarios = %v", names)
	}
	for _, tc := range []struct {
		mut  func(*config.Detect)
		want string
	}{
		{func(c *config.Detect) { c.Disable = []string{"no-such"} }, `"no-such" is not a built-in scenario`},
		{func(c *config.Detect) {
			c.Scenarios = []config.DetectScenario{{Name: "x", Capacity: 0, Leak: config.Duration(time.Second), Ban: config.Duration(time.Minute)}}
		}, "detect.scenarios[0].capacity"},
		{func(c *config.Detect) {
			c.Scenarios = []config.DetectScenario{{Name: "x", From: []string{"apache"}, Capacity: 1, Leak: config.Duration(time.Second), Ban: config.Duration(time.Minute)}}
		}, `detect.scenarios[0].from[0]: "apache" is neither guard nor a parser`},
		{func(c *config.Detect) {
			c.Parsers = []config.DetectParser{{Name: "p", Pattern: `(\S+)`, Kind: "probe"}}
		}, "no named group source"},
		{func(c *config.Detect) { c.Logs = []config.DetectLog{{Path: "/var/log/x", Parser: "nope"}} }, `detect.logs[0].parser: "nope" is not a parser`},
	} {
		c := defaultDetect()
		tc.mut(&c)
		if _, err := NewEngine(c, bans, EngineOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewEngine: %v, want an error with %q", err, tc.want)
		}
	}
}

// TestObserveNeverBlocks: a full queue drops and counts.
func TestObserveNeverBlocks(t *testing.T) {
	f := newEngineFixture(t, storetest.SQLite(t, events.Migrations, Migrations), defaultDetect(), nil)
	dropped := 0
	for range queueSize + 100 {
		if !f.e.Observe(sshFail("203.0.113.1")) {
			dropped++
		}
	}
	if dropped != 100 || f.e.Dropped() != 100 {
		t.Errorf("dropped %d (counted %d), want 100", dropped, f.e.Dropped())
	}
	// Run drains the queue and bans.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.e.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.bans.Active()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if len(f.bans.Active()) != 1 {
		t.Errorf("after Run: %d bans, want 1", len(f.bans.Active()))
	}
}
