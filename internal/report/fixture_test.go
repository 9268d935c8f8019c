package report_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/clocktest"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

var ctx = context.Background()

// epoch is the fixed clock of the prepared inputs.
var epoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// accounts reads identity for the two-factor control, as internal/app's
// adapter does (only app and api may import identity in the product).
type accounts struct {
	id  *identity.Service
	now func() time.Time
}

func (a accounts) Accounts(ctx context.Context) ([]report.Account, error) {
	var out []report.Account
	after := ""
	for {
		us, err := a.id.ListUsers(ctx, after, 200)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			var roles []string
			for _, b := range u.Roles {
				if !b.Expired(a.now()) {
					roles = append(roles, b.Role)
				}
			}
			out = append(out, report.Account{Username: u.Username, Disabled: u.Disabled, Roles: roles, MFA: u.HasMFA()})
			after = u.Username
		}
		if len(us) < 200 {
			return out, nil
		}
	}
}

func (a accounts) Require2FA(ctx context.Context) (bool, []string, error) {
	st, err := a.id.Settings(ctx)
	return st.Require2FA, st.Require2FARoles, err
}

// okSender is the far end of a test channel: it accepts every message.
type okSender struct{}

func (okSender) Send(context.Context, notify.Message) error { return nil }

func migrations() []store.Migrations {
	return []store.Migrations{identity.Migrations, access.Migrations, audit.Migrations, events.Migrations, continuity.Migrations, detect.Migrations, notify.Migrations}
}

// fixture is a store holding prepared evidence, the capabilities over it
// and the sources of a report.
type fixture struct {
	db       *store.DB
	clock    *clocktest.Clock
	bus      *events.Bus
	history  *continuity.History
	identity *identity.Service
	access   *access.Store
	audit    *audit.Log
	notifier *notify.Notifier
	bans     *detect.Bans
	src      report.Sources
}

func newFixture(t testing.TB, db *store.DB) *fixture {
	t.Helper()
	f := &fixture{db: db, clock: clocktest.New(epoch)}
	f.bus = events.NewBus(db, events.Options{Now: f.clock.Now})
	t.Cleanup(func() { f.bus.Close(context.Background()) })
	f.history = continuity.NewHistory(db)
	f.access = access.NewStore(db, f.clock.Now)
	ic := identity.DefaultConfig()
	ic.Argon2 = identity.MinimumArgon2
	ic.Now = f.clock.Now
	var err error
	f.identity, err = identity.New(db, f.access, ic)
	must(t, err)
	must(t, f.access.EnsureBuiltins(ctx))
	f.audit = audit.New(db, ed25519.NewKeyFromSeed(make([]byte, 32)), audit.Options{CheckpointEvery: 10, Now: f.clock.Now})
	t.Cleanup(func() { f.audit.Close() })
	f.notifier, err = notify.NewNotifier(db, []notify.Channel{{Name: "oncall", Kind: "email", Sender: okSender{}}, {Name: "hook", Kind: "webhook", Sender: okSender{}}},
		notify.Options{Now: f.clock.Now, Host: "test", Sleep: func(context.Context, time.Duration) error { return nil }})
	must(t, err)
	f.bans, err = detect.Open(ctx, db, detect.Options{Bus: f.bus, Now: f.clock.Now})
	must(t, err)
	f.src = report.Sources{Config: fixtureConfig(), History: f.history, Events: f.bus, Deliveries: f.notifier,
		Accounts: accounts{f.identity, f.clock.Now}, Access: f.access, Audit: f.audit, Bans: f.bans, Host: "web1.example.net"}
	return f
}

// fixtureConfig is the configuration of the prepared inputs: two
// policies (web with an offsite copy, daily restore tests and scrubs;
// db with a short RPO and neither), integrity, two alert channels of
// which one has a heartbeat, two guard sites, the firewall.
func fixtureConfig() config.Config {
	cfg := config.Default()
	cfg.Continuity = config.Continuity{
		Repositories: []config.Repository{{Name: "primary", Location: "/srv/backup/primary"}, {Name: "offsite", Location: "https://vault.example.net:8443/web1"}},
		Policies: []config.Policy{
			{Name: "web", Repository: "primary", Offsite: []string{"offsite"}, Schedule: "every 1h", RPO: config.Duration(6 * time.Hour), Tags: []string{"env=prod"},
				Sources:     []config.Source{{Name: "site", Paths: []string{"/var/www"}}},
				RestoreTest: config.RestoreTest{Schedule: "every 1d"}, Scrub: config.Scrub{Schedule: "every 1d", Period: config.Duration(7 * 24 * time.Hour)}},
			{Name: "db", Repository: "primary", Schedule: "every 1h", RPO: config.Duration(2 * time.Hour),
				Sources: []config.Source{{Name: "users", Postgres: config.EnvSecret("DSN")}}},
		},
	}
	cfg.Integrity.Enabled = true
	cfg.Alerts.Channels = []config.Channel{{Name: "oncall"}, {Name: "hook"}}
	cfg.Alerts.Watchdog = config.Watchdog{Interval: config.Duration(time.Hour), Channels: []string{"oncall"}}
	cfg.Guard.Sites = []config.GuardSite{{Hosts: []string{"www.example.net"}, Upstreams: []string{"http://127.0.0.1:8080"}, WAF: "block"},
		{Hosts: []string{"shop.example.net"}, Upstreams: []string{"http://127.0.0.1:8081"}, WAF: "detect"}}
	cfg.Firewall.Enabled = true
	return cfg
}

// run records a finished run of kind started at start.
func (f *fixture) run(t testing.TB, policy string, kind continuity.Kind, start time.Time, took time.Duration, runErr error, evidence any) {
	t.Helper()
	id, err := f.history.Start(ctx, policy, kind, start)
	must(t, err)
	must(t, f.history.Finish(ctx, id, start.Add(took), runErr, evidence))
}

func backupEvidence(policy string, start time.Time, copies ...continuity.CopyResult) *continuity.BackupReport {
	if copies == nil {
		copies = []continuity.CopyResult{}
	}
	return &continuity.BackupReport{Policy: policy, Started: start, Duration: 40, Repository: "primary", OK: true, Copies: copies,
		Sources: []continuity.SourceResult{{Source: "site", Kind: "paths", Snapshot: "5f1c9a2b"}}}
}

type errString string

func (e errString) Error() string { return string(e) }

// prepare records the evidence of the golden report.
func (f *fixture) prepare(t testing.TB) {
	t.Helper()
	at := func(d time.Duration) time.Time { return epoch.Add(-d) }
	// web: backups every hour with their offsite copy; the newest an hour
	// ago, so within its 6 h RPO.
	for _, h := range []int{25, 13, 2, 1} {
		s := at(time.Duration(h) * time.Hour)
		f.run(t, "web", continuity.KindBackup, s, 40*time.Second, nil,
			backupEvidence("web", s, continuity.CopyResult{Repository: "offsite", Copied: 1, Bytes: 2048, Duration: 3}))
	}
	f.run(t, "web", continuity.KindRestoreTest, at(20*time.Hour), 12500*time.Millisecond, nil, &continuity.RestoreTestEvidence{
		Policy: "web", Repository: "primary", Started: at(20 * time.Hour), Duration: 12.5, Result: "passed",
		Tests: []continuity.SnapshotTest{{Source: "site", Which: "newest", Snapshot: "5f1c9a2b", FilesVerified: 1200, Duration: 8},
			{Source: "site", Which: "older", Snapshot: "0a9b8c7d", FilesVerified: 1180, Duration: 4.5}}})
	for n := 1; n <= 7; n++ { // one full pass of 7 groups over the last 7 days
		s := at(time.Duration(8-n)*24*time.Hour - time.Hour)
		f.run(t, "web", continuity.KindScrub, s, time.Minute, nil, &continuity.ScrubReport{Policy: "web", Repository: "primary", Started: s,
			Group: fmtGroup(n, 7), Problems: []string{}, OK: true})
	}
	// db: the last success 1h50m ago against a 2 h RPO, and a failed run
	// since; no restore test, no scrub, no offsite.
	f.run(t, "db", continuity.KindBackup, at(110*time.Minute), 30*time.Second, nil, backupEvidence("db", at(110*time.Minute)))
	f.run(t, "db", continuity.KindBackup, at(50*time.Minute), 5*time.Second, errString("source users: pg_dump: connection to server at 127.0.0.1 refused"), backupEvidence("db", at(50*time.Minute)))

	// File integrity: a full scan 3 h ago, two low differences.
	f.clock.Set(at(3 * time.Hour))
	_, err := f.bus.Publish(ctx, events.Event{Type: events.TypeIntegrityScanCompleted, Module: events.ModuleIntegrity, Actor: "system:integrity",
		Message: "integrity scan (schedule)", Data: map[string]any{"reason": "schedule", "entries": 5210, "differences": 2, "high": 0}})
	must(t, err)
	// Alerts: oncall's heartbeat 20 minutes ago; hook delivered once, a
	// day ago, outside any heartbeat.
	f.clock.Set(at(24 * time.Hour))
	must(t, f.notifier.Deliver(ctx, "hook", notify.Message{Title: "test", Text: "test", State: notify.StateTest, Severity: events.SeverityInfo, Time: f.clock.Now()}))
	f.clock.Set(at(20 * time.Minute))
	must(t, f.notifier.Deliver(ctx, "oncall", notify.Message{Title: "Bulwark heartbeat", Text: "running", State: notify.StateHeartbeat, Severity: events.SeverityInfo, Time: f.clock.Now()}))
	// Accounts: admin with TOTP; sec may change access, has no second
	// factor, and its role requires one; ops only operates.
	f.clock.Set(at(48 * time.Hour))
	admin, err := f.identity.GetUser(ctx, "admin")
	if err != nil {
		_, _, err = f.identity.EnsureAdmin(ctx, "fixture admin password 1")
		must(t, err)
		admin, err = f.identity.GetUser(ctx, "admin")
	}
	must(t, err)
	enrol(t, f.identity, admin.ID, f.clock.Now())
	_, err = f.access.CreateRole(ctx, access.Role{Name: "access-admin", Require2FA: true, Grants: []access.Grant{{Module: access.ModuleAccess, Level: access.LevelWrite}}})
	must(t, err)
	_, err = f.identity.CreateUser(ctx, identity.NewUser{Username: "sec", Password: "fixture sec password 1", Roles: []access.RoleBinding{{Role: "access-admin"}}})
	must(t, err)
	_, err = f.identity.CreateUser(ctx, identity.NewUser{Username: "ops", Password: "fixture ops password 1", Roles: []access.RoleBinding{{Role: access.RoleOperator}}})
	must(t, err)
	// The audit log: entries, and an anchor two days ago.
	_, err = f.audit.Append(ctx, audit.Entry{Actor: "user:admin", Action: "audit.anchor", Resource: "audit", Result: "ok", Details: map[string]any{"to": "/mnt/offsite/anchor.json"}})
	must(t, err)
	f.clock.Set(at(time.Hour))
	for i := range 3 {
		_, err := f.bans.Add(ctx, detect.Ban{Net: netip.MustParsePrefix(fmtAddr(i)), Reason: "ssh password guessing", Origin: "scenario:ssh-bf", Scenario: "ssh-bf"}, 24*time.Hour)
		must(t, err)
	}
	f.clock.Set(epoch)
	// The edge, as bulwark up last recorded it 10 s ago: one of the three
	// bans is in an exempt network.
	f.src.Protection = &report.Protection{Observed: at(10 * time.Second), GuardRunning: true, GuardSince: at(72 * time.Hour),
		DetectRunning: true, DetectSince: at(72 * time.Hour), FirewallRunning: true, FirewallSynced: at(25 * time.Second),
		BansInForce: 3, BansWanted: 2, BansLoaded: 2}
	// Patching: the posture audit an hour ago, from a version without
	// the automatic-updates check.
	f.src.Posture = &posture.Report{Time: at(time.Hour), Findings: []posture.Finding{
		{ID: "updates.security", Title: "No security update is pending", Severity: posture.High, Status: posture.Pass, Evidence: []string{"0 security updates pending (apt)"}},
		{ID: "os.end_of_life", Title: "The operating system still receives security updates", Severity: posture.High, Status: posture.Pass, Evidence: []string{"/etc/os-release: Debian 12, supported until 2028-06-30"}},
		{ID: "ssh.root_login", Title: "SSH does not accept root logins with a password", Severity: posture.High, Status: posture.Pass, Evidence: []string{}},
	}}
}

func fmtGroup(n, m int) string {
	b, _ := json.Marshal(n)
	c, _ := json.Marshal(m)
	return string(b) + "/" + string(c)
}

func fmtAddr(i int) string {
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}).String() + "/32"
}

// enrol turns on TOTP for uid with a code computed at now.
func enrol(t testing.TB, id *identity.Service, uid int64, now time.Time) {
	t.Helper()
	en, err := id.BeginTOTP(ctx, uid)
	must(t, err)
	secret, err := identity.DecodeTOTPSecret(en.Secret)
	must(t, err)
	_, err = id.ConfirmTOTP(ctx, uid, identity.TOTPCode(secret, now, identity.DefaultTOTP))
	must(t, err)
}

// sqliteFixture is a prepared fixture on a fresh SQLite store.
func sqliteFixture(t testing.TB) *fixture {
	t.Helper()
	f := newFixture(t, storetest.SQLite(t, migrations()...))
	f.prepare(t)
	return f
}
