package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/clocktest"

	"github.com/bulwarkhq/bulwark/internal/firewall"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/report/practice"
)

func controlIn(t *testing.T, r report.Report, practiceID, controlID string) (report.Practice, report.Control) {
	t.Helper()
	p, ok := r.Practice(practiceID)
	if !ok {
		t.Fatalf("no practice %s", practiceID)
	}
	for _, c := range p.Controls {
		if c.ID == controlID {
			return p, c
		}
	}
	t.Fatalf("no control %s in %s", controlID, practiceID)
	return p, report.Control{}
}

// TestReportBackupEndToEnd: a real policy backing up into a real local
// repository. After a run the daily-backup practice is met; once the
// injected clock passes the RPO it fails; another run makes it met again.
// The offsite practice follows the copy to a second local repository.
func TestReportBackupEndToEnd(t *testing.T) {
	base := t.TempDir()
	_, primary := repotest.New(t, repotest.Options{})
	_, offsite := repotest.New(t, repotest.Options{})
	src := filepath.Join(base, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>hello</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	cfg := filepath.Join(base, "bulwark.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`continuity:
  repositories:
    - {name: primary, location: %s, password: {env: REPO_PW}}
    - {name: offsite, location: %s, password: {env: REPO_PW}}
  policies:
    - name: web
      sources: [{paths: [%s]}]
      repository: primary
      offsite: [offsite]
      rpo: 1h
report:
  publish: [backups.daily_encrypted]
`, primary, offsite, src)), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Now().UTC().Truncate(time.Second))
	ctx := context.Background()
	a, err := Open(ctx, Options{ConfigPath: cfg, DataDir: data, Stderr: &bytes.Buffer{}, Now: clk.Now, LogLevel: "error",
		Getenv: func(k string) string { return map[string]string{"REPO_PW": repotest.Password}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	r, err := a.Report(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if p, c := controlIn(t, r, practice.BackupsDaily, "backups.rpo"); p.Status != report.PracticeFailed || c.Status != report.Failed {
		t.Fatalf("before any backup: practice %s, control %s (%s); want failed", p.Status, c.Status, c.Detail)
	}

	if _, err := a.Continuity.RunBackup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	r, err = a.Report(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{practice.BackupsDaily, practice.BackupsOffsite} {
		if p, _ := r.Practice(id); p.Status != report.PracticeMet {
			t.Errorf("10 minutes after a run: %s is %s (%+v), want met", id, p.Status, p.Controls)
		}
	}

	clk.Advance(time.Hour) // 70 minutes after the run: past the 1 h RPO
	r, err = a.Report(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	p, c := controlIn(t, r, practice.BackupsDaily, "backups.rpo")
	if p.Status != report.PracticeFailed || c.Status != report.Failed || c.Remediation == "" || c.Measurements["age_seconds"] != 4200 {
		t.Errorf("past the RPO: practice %s, control %s %q %v; want failed after 4200 s", p.Status, c.Status, c.Detail, c.Measurements)
	}
	if pub := r.Public(a.Config.Report.Publish); len(pub.Practices) != 1 || pub.Practices[0].Status != report.PracticeFailed {
		t.Errorf("public: %+v", pub)
	}

	if _, err := a.Continuity.RunBackup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	r, err = a.Report(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if p, c := controlIn(t, r, practice.BackupsDaily, "backups.rpo"); p.Status != report.PracticeMet || c.Status != report.OK {
		t.Errorf("after another run: practice %s, control %s (%s); want met", p.Status, c.Status, c.Detail)
	}
}

// TestProtectionRecorded: the edge's state is kept in memory while up
// runs it and in DATA/protection.json for other processes, marked stopped
// at the end; the report reads it back.
func TestProtectionRecorded(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	a, err := Open(context.Background(), Options{DataDir: t.TempDir(), Stderr: &bytes.Buffer{}, Now: clk.Now, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if p, err := a.Protection(); p != nil || err != nil {
		t.Fatalf("before up ever ran: %+v, %v; want none", p, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := a.recordProtection(ctx)
	a.guardStarted(true)
	a.detectStarted(true)
	a.firewallSynced(3, 2, firewall.SyncStats{Total: 2}, nil)
	p, err := a.Protection()
	if err != nil || p == nil || !p.GuardRunning || !p.FirewallRunning || p.BansLoaded != 2 || p.BansWanted != 2 || p.BansInForce != 3 || !p.FirewallSynced.Equal(clk.Now()) {
		t.Fatalf("live state: %+v, %v", p, err)
	}
	a.firewallSynced(3, 2, firewall.SyncStats{}, fmt.Errorf("netlink: operation not permitted"))
	if p, _ := a.Protection(); p.FirewallError == "" || p.BansLoaded != 2 {
		t.Errorf("failed sync: %+v, want the error and the last loaded count", p)
	}
	cancel()
	<-done
	// Another process (the CLI) reads the file.
	b, err := Open(context.Background(), Options{DataDir: a.DataDir, Stderr: &bytes.Buffer{}, Now: clk.Now, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err = b.Protection()
	if err != nil || p == nil || p.GuardRunning || p.FirewallRunning || !p.Observed.Equal(clk.Now()) || p.BansInForce != 3 {
		t.Fatalf("recorded after stop: %+v, %v; want stopped, observed now", p, err)
	}
	b.Config.Firewall.Enabled = true
	r, err := b.Report(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := controlIn(t, r, practice.EdgeDDoS, "firewall.bans"); c.Status != report.Failed || !strings.Contains(c.Detail, "not running") {
		t.Errorf("firewall control after stop: %s (%s), want failed", c.Status, c.Detail)
	}
}

// The API's report is reused while nothing is audited, for at most
// ReportReuseFor; a new audit entry or the passing of that time makes a
// new one.
func TestReportReusedForAPI(t *testing.T) {
	clk := clocktest.New(time.Now().UTC().Truncate(time.Second))
	ctx := context.Background()
	a, err := Open(ctx, Options{DataDir: t.TempDir(), Stderr: &bytes.Buffer{}, Now: clk.Now, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	first, err := a.reportForAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	if again, _ := a.reportForAPI(ctx); !again.GeneratedAt.Equal(first.GeneratedAt) {
		t.Errorf("a report 10 s later with nothing audited was made again (%v, %v)", first.GeneratedAt, again.GeneratedAt)
	}
	if err := a.auditSystem(ctx, "test.change", "test", nil); err != nil {
		t.Fatal(err)
	}
	second, _ := a.reportForAPI(ctx)
	if second.GeneratedAt.Equal(first.GeneratedAt) {
		t.Error("a new audit entry did not make a new report")
	}
	clk.Advance(ReportReuseFor)
	if third, _ := a.reportForAPI(ctx); third.GeneratedAt.Equal(second.GeneratedAt) {
		t.Errorf("a report older than %v was reused", ReportReuseFor)
	}
}
