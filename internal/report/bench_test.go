package report_test

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// BenchmarkGenerate makes the report over a store holding a busy
// installation's evidence: 10,000 events, each also an audit entry (as
// internal/app wires them), 1,000 runs of four policies (backups with
// their offsite copies, restore tests, scrubs), 1,000 deliveries, 100
// bans and 20 accounts. The target is well under a second per report.
func BenchmarkGenerate(b *testing.B) {
	f := newFixture(b, storetest.SQLite(b, migrations()...))
	// Checkpoints at the production interval (the fixture signs one every
	// 10 entries).
	f.audit = audit.New(f.db, ed25519.NewKeyFromSeed(make([]byte, 32)), audit.Options{Now: f.clock.Now})
	b.Cleanup(func() { f.audit.Close() })
	f.src.Audit = f.audit
	start := epoch.Add(-60 * 24 * time.Hour)
	var pols []config.Policy
	for i := range 4 {
		pols = append(pols, config.Policy{Name: fmt.Sprintf("site%d", i), Repository: "primary", Offsite: []string{"offsite"}, Schedule: "every 1h",
			RPO: config.Duration(6 * time.Hour), Sources: []config.Source{{Paths: []string{"/var/www"}}},
			RestoreTest: config.RestoreTest{Schedule: "every 1d"}, Scrub: config.Scrub{Schedule: "every 1d", Period: config.Duration(30 * 24 * time.Hour)}})
	}
	f.src.Config.Continuity.Policies = pols
	runs := 0
	for _, p := range pols {
		for i := range 200 {
			s := epoch.Add(-time.Duration(200-i) * time.Hour)
			f.run(b, p.Name, continuity.KindBackup, s, time.Minute, nil, backupEvidence(p.Name, s, continuity.CopyResult{Repository: "offsite", Copied: 1}))
		}
		for i := range 25 {
			s := epoch.Add(-time.Duration(25-i) * 24 * time.Hour)
			f.run(b, p.Name, continuity.KindRestoreTest, s, time.Minute, nil, &continuity.RestoreTestEvidence{Result: "passed", Duration: 30,
				Tests: []continuity.SnapshotTest{{Source: "site", FilesVerified: 1000}}})
			f.run(b, p.Name, continuity.KindScrub, s.Add(time.Hour), time.Minute, nil, &continuity.ScrubReport{Group: fmtGroup(i%30+1, 30), OK: true})
		}
		runs += 250
	}
	types := []events.Type{events.TypeBanAdded, events.TypeIntegrityChanged, events.TypeBackupCompleted, events.TypeIntegrityScanCompleted}
	for i := range 10000 {
		f.clock.Set(start.Add(time.Duration(i) * 5 * time.Minute))
		typ := types[i%len(types)]
		e, err := f.bus.Publish(ctx, events.Event{Type: typ, Module: events.ModuleIntegrity, Actor: "system:bench", Resource: fmt.Sprintf("file/etc/f%d", i),
			Message: "benchmark event", Data: map[string]any{"differences": 1, "high": 0, "n": i}})
		must(b, err)
		_, err = f.audit.Append(ctx, audit.Entry{Time: e.Time, Actor: e.Actor, Action: "event." + string(e.Type), Resource: e.Resource, Result: "ok",
			Details: map[string]any{"event_id": e.ID}})
		must(b, err)
	}
	f.clock.Set(epoch.Add(-24 * time.Hour))
	_, err := f.audit.Append(ctx, audit.Entry{Actor: "user:admin", Action: "audit.anchor", Resource: "audit", Result: "ok"})
	must(b, err)
	for i := range 1000 {
		f.clock.Set(epoch.Add(-time.Duration(1000-i) * time.Hour))
		must(b, f.notifier.Deliver(ctx, "oncall", notify.Message{Title: "Bulwark heartbeat", Text: "running", State: notify.StateHeartbeat, Severity: events.SeverityInfo, Time: f.clock.Now()}))
	}
	f.clock.Set(epoch.Add(-time.Hour))
	for i := range 100 {
		_, err := f.bans.Add(ctx, detect.Ban{Net: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32), Reason: "bench", Origin: "scenario:bench", Scenario: "bench"}, 48*time.Hour)
		must(b, err)
	}
	_, _, err = f.identity.EnsureAdmin(ctx, "bench admin password 1")
	must(b, err)
	for i := range 20 {
		_, err := f.identity.CreateUser(ctx, identity.NewUser{Username: fmt.Sprintf("user%02d", i), Password: "bench user password 1", Roles: []access.RoleBinding{{Role: access.RoleOperator}}})
		must(b, err)
	}
	f.clock.Set(epoch)
	f.src.Protection = &report.Protection{Observed: epoch, GuardRunning: true, GuardSince: start, DetectRunning: true, DetectSince: start,
		FirewallRunning: true, FirewallSynced: epoch, BansInForce: 100, BansWanted: 100, BansLoaded: 100}
	b.Logf("store: 10000 events, %d audit entries, %d runs, 1000 deliveries, 100 bans, 21 accounts", 10002, runs)
	b.ResetTimer()
	t0 := time.Now()
	for b.Loop() {
		r, err := report.Generate(ctx, f.src, epoch)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Practices) != 10 {
			b.Fatalf("%d practices", len(r.Practices))
		}
	}
	per := time.Since(t0) / time.Duration(b.N)
	b.ReportMetric(per.Seconds()*1000, "ms/report")
	if per > time.Second {
		b.Errorf("a report took %v, want < 1 s", per)
	}
}
