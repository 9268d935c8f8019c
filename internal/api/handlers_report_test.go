package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/report/practice"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// reportAccounts reads identity for the report, as internal/app does.
type reportAccounts struct {
	id  *identity.Service
	now func() time.Time
}

func (a reportAccounts) Accounts(ctx context.Context) ([]report.Account, error) {
	us, err := a.id.ListUsers(ctx, "", 1000)
	if err != nil {
		return nil, err
	}
	var out []report.Account
	for _, u := range us {
		acc := report.Account{Username: u.Username, Disabled: u.Disabled, MFA: u.HasMFA()}
		for _, b := range u.Roles {
			if !b.Expired(a.now()) {
				acc.Roles = append(acc.Roles, b.Role)
			}
		}
		out = append(out, acc)
	}
	return out, nil
}

func (a reportAccounts) Require2FA(ctx context.Context) (bool, []string, error) {
	st, err := a.id.Settings(ctx)
	return st.Require2FA, st.Require2FARoles, err
}

// reportEnv is an API server whose report is made from its real store:
// two backup policies, web (team=blue) backed up an hour ago and db
// (team=red) never; gens counts the reports made.
func reportEnv(t *testing.T, db *store.DB, publish []string) (*env, *atomic.Int64) {
	t.Helper()
	cfg := config.Default()
	cfg.Continuity.Policies = []config.Policy{
		{Name: "web", Repository: "primary", RPO: config.Duration(6 * time.Hour), Tags: []string{"team=blue"}, Sources: []config.Source{{Paths: []string{"/srv/www"}}}},
		{Name: "db", Repository: "primary", RPO: config.Duration(6 * time.Hour), Tags: []string{"team=red"}, Sources: []config.Source{{Command: []string{"pg_dumpall"}}}},
	}
	cfg.Report.Publish = publish
	gens := &atomic.Int64{}
	e := newEnvWith(t, db, func(e *env, d *api.Deps) {
		hist := continuity.NewHistory(db)
		start := e.clock.Now().Add(-time.Hour)
		id, err := hist.Start(context.Background(), "web", continuity.KindBackup, start)
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.Finish(context.Background(), id, start.Add(time.Minute), nil, map[string]any{"ok": true}); err != nil {
			t.Fatal(err)
		}
		d.Report = func(ctx context.Context) (report.Report, error) {
			gens.Add(1)
			return report.Generate(ctx, report.Sources{Config: cfg, History: hist, Events: e.events, Accounts: reportAccounts{e.identity, e.clock.Now},
				Access: e.access, Audit: e.audit, Host: "web1.internal.example"}, e.clock.Now())
		}
		if publish != nil {
			d.Trust = &api.TrustPage{Publish: publish}
		}
	})
	return e, gens
}

// doAccept GETs path without credentials, accepting accept.
func (e *env) doAccept(path, accept string) response {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func practiceIDs(r report.Report) []string {
	var out []string
	for _, p := range r.Practices {
		out = append(out, p.ID+"="+string(p.Status))
	}
	return out
}

// TestReportAPI: an administrator sees every practice; a tag-scoped user
// sees only the controls of the policies their scope reaches, with the
// statuses computed from those alone; a user of another module sees only
// that module's practice; a billing user sees nothing; the HTML form is
// served under the strict CSP.
func TestReportAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := reportEnv(t, db, nil)
		admin := e.login("admin", adminPassword)
		var full report.Report
		e.want(e.do("GET", "/api/v1/report", admin, nil), 200).json(t, &full)
		if len(full.Practices) != len(practice.IDs()) || full.Host != "web1.internal.example" {
			t.Fatalf("admin: %v, host %q", practiceIDs(full), full.Host)
		}
		if p, _ := full.Practice(practice.BackupsDaily); p.Status != report.PracticeFailed || len(p.Controls) != 2 {
			t.Errorf("admin's daily backups: %s with %d controls, want failed (db) with 2", p.Status, len(p.Controls))
		}

		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "blue", "grants": []map[string]any{
			{"module": "backups", "level": "read", "scope": "team=blue"}, {"module": "continuity", "level": "read", "scope": "team=blue"}}}), 201)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "watcher", "grants": []map[string]any{{"module": "monitoring", "level": "read"}}}), 201)
		blue := e.mkuser(admin, "bluey", "blue")
		watcher := e.mkuser(admin, "watch", "watcher")
		billing := e.mkuser(admin, "accounts", "billing")

		r := e.want(e.do("GET", "/api/v1/report", blue, nil), 200)
		var scoped report.Report
		r.json(t, &scoped)
		want := []string{"backups.daily_encrypted=met", "backups.offsite=failed", "backups.restore_tested=failed"}
		if got := practiceIDs(scoped); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("tag-scoped user sees %v, want %v", got, want)
		}
		for _, leak := range []string{"policy/db", "team=red", `"red"`, "audit.chain", "access.admin_2fa", "admin"} {
			if strings.Contains(string(r.Body), leak) {
				t.Errorf("tag-scoped user's report shows %q", leak)
			}
		}
		if scoped.Summary.Failed != 2 || scoped.Summary.Met != 1 {
			t.Errorf("tag-scoped summary %+v, want 1 met, 2 failed", scoped.Summary)
		}

		var mon report.Report
		e.want(e.do("GET", "/api/v1/report", watcher, nil), 200).json(t, &mon)
		if got := practiceIDs(mon); len(got) != 1 || !strings.HasPrefix(got[0], practice.MonitorSupervision+"=") {
			t.Errorf("monitoring reader sees %v, want supervision only", got)
		}
		var none report.Report
		e.want(e.do("GET", "/api/v1/report", billing, nil), 200).json(t, &none)
		if len(none.Practices) != 0 || none.Summary != (report.Counts{}) || none.Host != "" {
			t.Errorf("billing user sees %v", practiceIDs(none))
		}
		if r := e.do("GET", "/api/v1/report", "", nil); r.Status != 401 {
			t.Errorf("anonymous: %d, want 401", r.Status)
		}
		h := e.want(e.do("GET", "/api/v1/report?format=html", blue, nil), 200)
		if ct := h.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || h.Header.Get("Content-Security-Policy") != report.CSP() ||
			!strings.Contains(string(h.Body), "Daily encrypted backups") || strings.Contains(string(h.Body), "policy/db") {
			t.Errorf("html: %s, CSP %q\n%.300s", ct, h.Header.Get("Content-Security-Policy"), h.Body)
		}
		if r := e.do("GET", "/api/v1/report?format=pdf", admin, nil); r.Status != 400 || r.errField() != "format" {
			t.Errorf("format=pdf: %d %s", r.Status, r.Body)
		}
	}, migrations()...)
}

// TestTrustPage: /trust shows the published practices only, with no
// internal detail, from a cached report; nothing published is 404, and
// without a report it is 404 too (never a page of failures made up).
func TestTrustPage(t *testing.T) {
	db := storetest.SQLite(t, migrations()...)
	e, gens := reportEnv(t, db, []string{practice.BackupsDaily, practice.AuditTrail})
	r := e.want(e.do("GET", "/trust", "", nil), 200)
	page := string(r.Body)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || r.Header.Get("Content-Security-Policy") != report.CSP() {
		t.Errorf("content type %q, CSP %q", ct, r.Header.Get("Content-Security-Policy"))
	}
	for _, p := range practice.All() {
		published := p.ID == practice.BackupsDaily || p.ID == practice.AuditTrail
		if strings.Contains(page, p.Title) != published {
			t.Errorf("practice %q shown = %v, want %v", p.Title, !published, published)
		}
	}
	for _, leak := range []string{"web1.internal.example", "policy/", "team", "/srv/www", "pg_dumpall", "admin", "What to do", "bulwark policy run", `class="bw-control"`} {
		if strings.Contains(page, leak) {
			t.Errorf("/trust shows %q", leak)
		}
	}
	var pub report.Public
	jr := e.doAccept("/trust", "application/json")
	jr.json(t, &pub)
	if len(pub.Practices) != 2 || pub.Practices[0].ID != practice.BackupsDaily || pub.Practices[0].Status != report.PracticeFailed {
		t.Errorf("public JSON: %+v", pub)
	}
	if strings.Contains(string(jr.Body), "controls") || strings.Contains(string(jr.Body), "web1.internal.example") {
		t.Errorf("public JSON shows internal details: %s", jr.Body)
	}
	if n := gens.Load(); n != 1 {
		t.Errorf("%d reports made for three requests within a minute, want 1", n)
	}
	e.clock.Advance(2 * time.Minute)
	e.want(e.do("GET", "/trust", "", nil), 200)
	if n := gens.Load(); n != 2 {
		t.Errorf("%d reports made after the cache expired, want 2", n)
	}

	empty, _ := reportEnv(t, storetest.SQLite(t, migrations()...), []string{})
	if r := empty.do("GET", "/trust", "", nil); r.Status != 404 {
		t.Errorf("nothing published: %d, want 404", r.Status)
	}
	unset, _ := reportEnv(t, storetest.SQLite(t, migrations()...), nil)
	if r := unset.do("GET", "/trust", "", nil); r.Status != 404 {
		t.Errorf("no trust page configured: %d, want 404", r.Status)
	}
}
