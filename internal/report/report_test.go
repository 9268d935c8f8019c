package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/report/practice"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; -update rewrites it):\n%s", name, diff)
	}
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	must(t, err)
	return append(b, '\n')
}

// TestGolden: the report of the prepared evidence at the fixed clock is
// exactly testdata/report.golden.json.
func TestGolden(t *testing.T) {
	f := sqliteFixture(t)
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	golden(t, "report.golden.json", marshal(t, r))
	var html bytes.Buffer
	must(t, report.RenderHTML(&html, r, report.HTMLOptions{}))
	golden(t, "report.golden.html", html.Bytes())
	golden(t, "public.golden.json", marshal(t, r.Public([]string{"backups.daily_encrypted", "audit.trail", "access.mfa"})))
}

// controlOf returns the control id (and resource, when given) of r.
func controlOf(t testing.TB, r report.Report, id, resource string) report.Control {
	t.Helper()
	for _, p := range r.Practices {
		for _, c := range p.Controls {
			if c.ID == id && (resource == "" || c.Resource == resource) {
				return c
			}
		}
	}
	t.Fatalf("no control %s %s in the report", id, resource)
	return report.Control{}
}

// TestMissingEvidenceFails: with no capability at all every control and
// every practice fails; nothing passes for want of evidence.
func TestMissingEvidenceFails(t *testing.T) {
	cfg := fixtureConfig()
	for name, src := range map[string]report.Sources{
		"defaults":              {Config: config.Default()},
		"configured, no source": {Config: cfg},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := report.Generate(ctx, src, epoch)
			must(t, err)
			if len(r.Practices) != len(practice.IDs()) {
				t.Fatalf("%d practices, want %d", len(r.Practices), len(practice.IDs()))
			}
			if r.Status != report.PracticeFailed || r.Summary != (report.Counts{Failed: len(practice.IDs())}) {
				t.Errorf("status %s, summary %+v; want every practice failed", r.Status, r.Summary)
			}
			for _, p := range r.Practices {
				if len(p.Controls) == 0 {
					t.Errorf("%s has no control", p.ID)
				}
				for _, c := range p.Controls {
					if c.Status != report.Failed || c.Detail == "" || c.Remediation == "" {
						t.Errorf("%s %s: status %s, detail %q, remediation %q; want failed with both", c.ID, c.Resource, c.Status, c.Detail, c.Remediation)
					}
				}
			}
		})
	}
}

// TestRPOKnownAnswers: a backup at t0 against an RPO of 10 h is ok up to
// 8 h (80%), at risk up to 10 h, failed after; the offsite copy follows
// the same windows.
func TestRPOKnownAnswers(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t, migrations()...))
	f.src.Config.Continuity.Policies = []config.Policy{{Name: "web", Repository: "primary", Offsite: []string{"offsite"}, RPO: config.Duration(10 * time.Hour),
		Sources: []config.Source{{Paths: []string{"/var/www"}}}}}
	t0 := epoch
	f.run(t, "web", continuity.KindBackup, t0, time.Minute, nil, backupEvidence("web", t0, continuity.CopyResult{Repository: "offsite", Copied: 1}))
	for _, tc := range []struct {
		after time.Duration
		want  report.Status
	}{
		{0, report.OK}, {8 * time.Hour, report.OK}, {8*time.Hour + time.Second, report.AtRisk},
		{10 * time.Hour, report.AtRisk}, {10*time.Hour + time.Second, report.Failed}, {-time.Hour, report.OK},
	} {
		r, err := report.Generate(ctx, f.src, t0.Add(tc.after))
		must(t, err)
		for _, id := range []string{"backups.rpo", "backups.offsite"} {
			if got := controlOf(t, r, id, "policy/web"); got.Status != tc.want {
				t.Errorf("%s after %s: %s (%s), want %s", id, tc.after, got.Status, got.Detail, tc.want)
			}
		}
	}
}

// TestOffsiteCopies: a failed copy after a good one puts the control at
// risk and says why; no good copy at all fails it.
func TestOffsiteCopies(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t, migrations()...))
	f.src.Config.Continuity.Policies = []config.Policy{{Name: "web", Repository: "primary", Offsite: []string{"offsite", "s3"}, RPO: config.Duration(24 * time.Hour),
		Sources: []config.Source{{Paths: []string{"/var/www"}}}}}
	t0 := epoch.Add(-3 * time.Hour)
	f.run(t, "web", continuity.KindBackup, t0, time.Minute, nil, backupEvidence("web", t0, continuity.CopyResult{Repository: "offsite"}, continuity.CopyResult{Repository: "s3", Error: "s3: access denied"}))
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "backups.offsite", ""); c.Status != report.Failed || !strings.Contains(c.Detail, "s3: access denied") {
		t.Errorf("only a partial copy: %s %q, want failed naming the error", c.Status, c.Detail)
	}
	t1 := epoch.Add(-time.Hour)
	f.run(t, "web", continuity.KindBackup, t0.Add(-time.Hour), time.Minute, nil, nil) // an older run without evidence
	f.run(t, "web", continuity.KindBackup, t1.Add(-time.Minute), time.Minute, nil, backupEvidence("web", t1, continuity.CopyResult{Repository: "offsite"}, continuity.CopyResult{Repository: "s3"}))
	f.run(t, "web", continuity.KindBackup, t1, time.Minute, errString("copy to s3 failed"), backupEvidence("web", t1, continuity.CopyResult{Repository: "offsite"}, continuity.CopyResult{Repository: "s3", Error: "s3: timeout"}))
	r, err = report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "backups.offsite", ""); c.Status != report.AtRisk || !strings.Contains(c.Detail, "s3: timeout") || c.Remediation == "" {
		t.Errorf("a failed copy after a good one: %s %q, want at_risk naming the error", c.Status, c.Detail)
	}
}

// TestRestoreAndScrub: a failed last restore test fails the control even
// after a passed one; scrubs that have not yet covered every group leave
// the control at risk; a failed scrub fails it.
func TestRestoreAndScrub(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t, migrations()...))
	f.src.Config.Continuity.Policies = []config.Policy{{Name: "web", Repository: "primary", RestoreTest: config.RestoreTest{Schedule: "every 1d"},
		Scrub: config.Scrub{Schedule: "every 1d", Period: config.Duration(4 * 24 * time.Hour)}, Sources: []config.Source{{Paths: []string{"/var/www"}}}}}
	f.run(t, "web", continuity.KindRestoreTest, epoch.Add(-30*time.Hour), time.Minute, nil, &continuity.RestoreTestEvidence{Result: "passed", Duration: 60})
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "continuity.restore_test", ""); c.Status != report.OK || c.Measurements["recovery_seconds"] != 60 {
		t.Errorf("passed 30 h ago (window 48 h): %s %q %v, want ok with the recovery time", c.Status, c.Detail, c.Measurements)
	}
	f.run(t, "web", continuity.KindRestoreTest, epoch.Add(-time.Hour), time.Minute, errString("source site: file /var/www/index.html: content differs"), &continuity.RestoreTestEvidence{Result: "failed"})
	r, err = report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "continuity.restore_test", ""); c.Status != report.Failed || !strings.Contains(c.Detail, "content differs") {
		t.Errorf("last test failed: %s %q, want failed", c.Status, c.Detail)
	}
	for n := 1; n <= 2; n++ {
		s := epoch.Add(-time.Duration(3-n) * 24 * time.Hour)
		f.run(t, "web", continuity.KindScrub, s, time.Minute, nil, &continuity.ScrubReport{Group: fmtGroup(n, 4), OK: true})
	}
	r, err = report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "continuity.scrub", ""); c.Status != report.AtRisk || c.Measurements["coverage_percent"] != 50 {
		t.Errorf("2 of 4 groups: %s %q %v, want at_risk at 50%%", c.Status, c.Detail, c.Measurements)
	}
	f.run(t, "web", continuity.KindScrub, epoch.Add(-time.Minute), time.Second, errString("3 problems remain after repair"), &continuity.ScrubReport{Group: fmtGroup(3, 4)})
	r, err = report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "continuity.scrub", ""); c.Status != report.Failed || !strings.Contains(c.Detail, "problems remain") {
		t.Errorf("failed scrub: %s %q, want failed", c.Status, c.Detail)
	}
}

// TestTwoFactor: who counts as privileged and what passes.
func TestTwoFactor(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *fixture)
		want   report.Status
		detail string
	}{
		{"admin without a second factor", func(t *testing.T, f *fixture) {}, report.Failed, "without a second factor: admin"},
		{"admin enrolled", func(t *testing.T, f *fixture) {
			u, err := f.identity.GetUser(ctx, "admin")
			must(t, err)
			enrol(t, f.identity, u.ID, f.clock.Now())
		}, report.OK, "all 1 accounts"},
		{"2FA required for everyone", func(t *testing.T, f *fixture) { must(t, f.identity.SetRequire2FA(ctx, true)) }, report.OK, "must enrol one"},
		{"an access writer without a factor", func(t *testing.T, f *fixture) {
			u, err := f.identity.GetUser(ctx, "admin")
			must(t, err)
			enrol(t, f.identity, u.ID, f.clock.Now())
			_, err = f.access.CreateRole(ctx, access.Role{Name: "grants", Grants: []access.Grant{{Module: access.ModuleAll, Level: access.LevelWrite, Scope: access.MustParseSelector("team=blue")}}})
			must(t, err)
			_, err = f.identity.CreateUser(ctx, identity.NewUser{Username: "mallory", Password: "mallory password 12", Roles: []access.RoleBinding{{Role: "grants"}}})
			must(t, err)
		}, report.Failed, "without a second factor: mallory"},
		{"operators, auditors and disabled admins do not count", func(t *testing.T, f *fixture) {
			u, err := f.identity.GetUser(ctx, "admin")
			must(t, err)
			enrol(t, f.identity, u.ID, f.clock.Now())
			_, err = f.identity.CreateUser(ctx, identity.NewUser{Username: "ops", Password: "ops password 123456", Roles: []access.RoleBinding{{Role: access.RoleOperator}, {Role: access.RoleAuditor}}})
			must(t, err)
			_, err = f.identity.CreateUser(ctx, identity.NewUser{Username: "old", Password: "old password 123456", Roles: []access.RoleBinding{{Role: access.RoleAdmin}}})
			must(t, err)
			yes := true
			_, err = f.identity.UpdateUser(ctx, "old", identity.UserUpdate{Disabled: &yes})
			must(t, err)
			_, err = f.identity.CreateUser(ctx, identity.NewUser{Username: "gone", Password: "gone password 123456", Roles: []access.RoleBinding{{Role: access.RoleAdmin, ExpiresAt: epoch.Add(-time.Hour)}}})
			if err != nil { // a binding may not be created already expired: bind, then let it expire
				_, err = f.identity.CreateUser(ctx, identity.NewUser{Username: "gone", Password: "gone password 123456", Roles: []access.RoleBinding{{Role: access.RoleAdmin, ExpiresAt: epoch.Add(time.Hour)}}})
				must(t, err)
				f.clock.Set(epoch.Add(2 * time.Hour))
			}
		}, report.OK, "all 1 accounts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, storetest.SQLite(t, migrations()...))
			_, _, err := f.identity.EnsureAdmin(ctx, "fixture admin password 1")
			must(t, err)
			tc.setup(t, f)
			r, err := report.Generate(ctx, f.src, f.clock.Now())
			must(t, err)
			c := controlOf(t, r, "access.admin_2fa", "")
			if c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("%s %q, want %s containing %q", c.Status, c.Detail, tc.want, tc.detail)
			}
		})
	}
}

// TestEdgeAndSupervision: a stale heartbeat, a failed synchronisation, a
// mismatch between the bans wanted and loaded, a missing watchdog.
func TestEdgeAndSupervision(t *testing.T) {
	f := sqliteFixture(t)
	base := *f.src.Protection
	tests := []struct {
		name    string
		mod     func(p *report.Protection)
		control string
		want    report.Status
		detail  string
	}{
		{"stale heartbeat", func(p *report.Protection) { p.Observed = epoch.Add(-5 * time.Minute) }, "guard.enforcing", report.Failed, "last seen 5m ago"},
		{"guard stopped", func(p *report.Protection) { p.GuardRunning = false }, "guard.enforcing", report.Failed, "not running"},
		{"guard stopped fails the WAF", func(p *report.Protection) { p.GuardRunning = false }, "guard.waf", report.Failed, "not proven to run"},
		{"sync failed", func(p *report.Protection) { p.FirewallError = "netlink: operation not permitted" }, "firewall.bans", report.Failed, "operation not permitted"},
		{"bans missing", func(p *report.Protection) { p.BansLoaded = 1 }, "firewall.bans", report.Failed, "nftables holds 1 bans, 2 are to be enforced"},
		{"sync late", func(p *report.Protection) { p.FirewallSynced = p.Observed.Add(-55 * time.Second) }, "firewall.bans", report.AtRisk, "more than the reconciliation allows"},
		{"detection stopped", func(p *report.Protection) { p.DetectRunning = false }, "detect.engine", report.Failed, "not running"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.mod(&p)
			f.src.Protection = &p
			r, err := report.Generate(ctx, f.src, epoch)
			must(t, err)
			if c := controlOf(t, r, tc.control, ""); c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("%s: %s %q, want %s containing %q", tc.control, c.Status, c.Detail, tc.want, tc.detail)
			}
		})
	}
	f.src.Protection = &base
	f.src.Config.Alerts.Watchdog.Interval = 0
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "alerts.delivery", "channel/oncall"); c.Status != report.Failed || !strings.Contains(c.Detail, "interval is 0") {
		t.Errorf("no watchdog: %s %q, want failed", c.Status, c.Detail)
	}
	f.src.Config.Integrity.Enabled = false
	r, err = report.Generate(ctx, f.src, epoch)
	must(t, err)
	if p, _ := r.Practice(practice.IntegrityFiles); p.Status != report.PracticeFailed {
		t.Errorf("integrity disabled: %s, want failed", p.Status)
	}
}

// TestIntegrityHighChange: a scan that left a high-severity difference
// fails the practice; a newer clean scan passes it again.
func TestIntegrityHighChange(t *testing.T) {
	f := sqliteFixture(t)
	f.clock.Set(epoch.Add(-time.Hour))
	_, err := f.bus.Publish(ctx, events.Event{Type: events.TypeIntegrityScanCompleted, Module: events.ModuleIntegrity, Actor: "system:integrity",
		Message: "scan", Data: map[string]any{"differences": 3, "high": 1}})
	must(t, err)
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "integrity.changes", ""); c.Status != report.Failed || !strings.Contains(c.Detail, "1 of them graded high") {
		t.Errorf("high change: %s %q, want failed", c.Status, c.Detail)
	}
	f.clock.Set(epoch.Add(-time.Minute))
	_, err = f.bus.Publish(ctx, events.Event{Type: events.TypeIntegrityBaselineInvalid, Module: events.ModuleIntegrity, Actor: "system:integrity", Severity: events.SeverityCritical,
		Message: "baseline signature does not verify"})
	must(t, err)
	r, err = report.Generate(ctx, f.src, epoch)
	must(t, err)
	if c := controlOf(t, r, "integrity.scan", ""); c.Status != report.Failed || !strings.Contains(c.Detail, "does not verify") {
		t.Errorf("invalid baseline: %s %q, want failed", c.Status, c.Detail)
	}
}

// TestFilterRecomputes: hiding controls recomputes the practices'
// statuses, drops emptied practices and recounts.
func TestFilterRecomputes(t *testing.T) {
	f := sqliteFixture(t)
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	onlyWeb := r.Filter(func(c report.Control) bool { return c.Tags["policy"] == "web" })
	var ids []string
	for _, p := range onlyWeb.Practices {
		ids = append(ids, p.ID+"="+string(p.Status))
		for _, c := range p.Controls {
			if c.Resource != "policy/web" {
				t.Errorf("control %s %s left in", c.ID, c.Resource)
			}
		}
	}
	want := []string{"backups.daily_encrypted=met", "backups.offsite=met", "backups.restore_tested=met"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("practices (-want +got):\n%s", diff)
	}
	if onlyWeb.Status != report.PracticeMet || onlyWeb.Summary != (report.Counts{Met: 3}) {
		t.Errorf("status %s %+v, want met 3", onlyWeb.Status, onlyWeb.Summary)
	}
	if none := r.Filter(func(report.Control) bool { return false }); len(none.Practices) != 0 || none.Summary != (report.Counts{}) {
		t.Errorf("nothing visible: %d practices, %+v", len(none.Practices), none.Summary)
	}
}

// TestPublicLeaksNothing reads the public variant as an attacker would:
// only the published practices, and none of the internal details the
// full report holds (host, policies, channels, sites, accounts, paths,
// errors, addresses).
func TestPublicLeaksNothing(t *testing.T) {
	f := sqliteFixture(t)
	_, err := f.identity.CreateUser(ctx, identity.NewUser{Username: "mallory", Password: "mallory password 12", Roles: []access.RoleBinding{{Role: access.RoleAdmin}}})
	must(t, err)
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	full := string(marshal(t, r))
	pub := r.Public([]string{practice.BackupsDaily, practice.AccessMFA, "no.such.practice"})
	var html bytes.Buffer
	must(t, report.RenderPublicHTML(&html, pub, report.HTMLOptions{}))
	for name, out := range map[string]string{"json": string(marshal(t, pub)), "html": html.String()} {
		secrets := []string{"web1.example.net", "policy/", "channel/", "www.example.net", "shop.example.net", "oncall", "hook", "mallory",
			"/srv", "/var/www", "/mnt/offsite", "pg_dump", "127.0.0.1", "203.0.113", "vault.example.net", "env", "prod", "remediation", "What to do",
			"bulwark policy run", "1h50m"}
		for _, s := range secrets {
			if strings.Contains(full, s) || s == "What to do" {
				if strings.Contains(out, s) {
					t.Errorf("%s: the public report shows %q", name, s)
				}
			}
		}
		for _, p := range practice.All() {
			published := p.ID == practice.BackupsDaily || p.ID == practice.AccessMFA
			if strings.Contains(out, p.Title) != published {
				t.Errorf("%s: practice %q shown = %v, want %v", name, p.Title, !published, published)
			}
		}
	}
	if len(pub.Practices) != 2 || pub.Practices[0].Status != report.PracticeAtRisk || pub.Practices[0].EvidenceAt.IsZero() || pub.Practices[1].Status != report.PracticeFailed {
		t.Errorf("public practices: %+v", pub.Practices)
	}
}
