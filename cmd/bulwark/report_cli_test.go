package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/report/practice"
)

// reportCLI is a configuration with one policy backing up into a local
// repository, run once, so that the data directory has evidence.
func reportCLI(t *testing.T) (*cliEnv, []string) {
	t.Helper()
	base := t.TempDir()
	primary, src := filepath.Join(base, "primary"), filepath.Join(base, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(base, "bulwark.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`continuity:
  repositories:
    - {name: primary, location: %s, password: {env: REPO_PW}}
  policies:
    - {name: web, sources: [{paths: [%s]}], repository: primary, rpo: 6h}
report:
  publish: [backups.daily_encrypted]
`, primary, src)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t).with("REPO_PW", "report test password").with("BULWARK_PASSWORD", "report test password").with("BULWARK_CACHE_DIR", t.TempDir())
	mustRun(t, c, "repo", "init", "--repo", primary)
	flags := []string{"--config", cfg, "--data", filepath.Join(base, "data")}
	mustRun(t, c, append([]string{"policy", "run", "web"}, flags...)...)
	return c, flags
}

// TestReportCommand: the report in each format from a data directory
// with a real backup; exit status 1 because practices fail for want of
// evidence (no offsite, no restore test, no guard...); the posture audit
// recorded by one report is used by the next with --no-posture.
func TestReportCommand(t *testing.T) {
	c, flags := reportCLI(t)
	run := func(args ...string) (int, string, string) { return c.run("", append(args, flags...)...) }

	code, out, errOut := run("report", "--format", "json", "--no-posture")
	if code != 1 || !strings.Contains(errOut, "10 practices: ") {
		t.Fatalf("json: exit %d, want 1 (failed practices); stderr %q", code, errOut)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if p, _ := r.Practice(practice.BackupsDaily); p.Status != report.PracticeMet {
		t.Errorf("daily backups after a run: %s %+v, want met", p.Status, p.Controls)
	}
	if p, _ := r.Practice(practice.PatchingUpdates); p.Status != report.PracticeFailed || !strings.Contains(p.Controls[0].Detail, "no posture audit is recorded") {
		t.Errorf("patching without a posture audit: %s %+v", p.Status, p.Controls)
	}

	// The posture audit runs by default, and is recorded for later.
	code, out, _ = run("report", "--format", "json")
	if code != 1 {
		t.Fatalf("with posture: exit %d", code)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Practice(practice.PatchingUpdates)
	for _, ctl := range p.Controls {
		if ctl.EvidenceAt.IsZero() || strings.Contains(ctl.Detail, "no posture audit is recorded") {
			t.Errorf("%s after a posture audit: %q, no evidence time", ctl.ID, ctl.Detail)
		}
	}
	code, out, _ = run("report", "--format", "json", "--no-posture")
	var again report.Report
	if err := json.Unmarshal([]byte(out), &again); code != 1 || err != nil {
		t.Fatalf("--no-posture after a recorded audit: exit %d, %v", code, err)
	}
	if q, _ := again.Practice(practice.PatchingUpdates); q.EvidenceAt.IsZero() || !q.EvidenceAt.Equal(p.EvidenceAt) {
		t.Errorf("--no-posture did not use the recorded audit: %v, want %v", q.EvidenceAt, p.EvidenceAt)
	}

	code, out, _ = run("report", "--no-posture")
	for _, want := range []string{"Security practices", "Daily encrypted backups", "met", "backups.rpo policy/web", "fix: "} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("text: exit %d, lacks %q:\n%s", code, want, out)
		}
	}

	dir := t.TempDir()
	html := filepath.Join(dir, "report.html")
	code, out, _ = run("report", "--no-posture", "--format", "html", "--out", html)
	b, err := os.ReadFile(html)
	if code != 1 || out != "" || err != nil || !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte("Offsite copy")) {
		t.Errorf("html --out: exit %d, stdout %q, %v, %.100s", code, out, err, b)
	}

	if _, err := report.FindChromium(report.PDFOptions{}); err == nil || os.Getenv("CI") == "true" {
		pdf := filepath.Join(dir, "report.pdf")
		code, _, errOut = run("report", "--no-posture", "--format", "pdf", "--out", pdf)
		b, err := os.ReadFile(pdf)
		if code != 1 || err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
			t.Errorf("pdf: exit %d, %v, starts %q; stderr %s", code, err, b[:min(8, len(b))], errOut)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "--format", "xml"}, `--format: "xml": want text, json, html or pdf`},
		{[]string{"report", "extra"}, "report takes no arguments"},
	} {
		if code, _, errOut := run(tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	if code, _, errOut := c.run("", "report", "--no-posture", "--data", filepath.Join(dir, "nothing")); code != 2 || !strings.Contains(errOut, "no Bulwark database") {
		t.Errorf("empty data directory: exit %d, %q", code, errOut)
	}
}

// TestReportFromServer: bulwark up serves the report through the API,
// with the edge's state it keeps in memory (and writes to the data
// directory for the CLI), and /trust answers 404 with nothing published.
func TestReportFromServer(t *testing.T) {
	srv := startAPIServer(t)
	pem, err := os.ReadFile(srv.certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	do := func(method, path, token string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.url+path, rd)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b := do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": testAdminPassword})
	var login struct{ Token string }
	if err := json.Unmarshal(b, &login); code != 200 || err != nil || login.Token == "" {
		t.Fatalf("login: %d %s", code, b)
	}
	code, b = do("GET", "/api/v1/report", login.Token, nil)
	var r report.Report
	if err := json.Unmarshal(b, &r); code != 200 || err != nil || len(r.Practices) != len(practice.IDs()) {
		t.Fatalf("report: %d %v %.300s", code, err, b)
	}
	p, _ := r.Practice(practice.EdgeDDoS)
	if p.Status != report.PracticeFailed || !strings.Contains(p.Controls[0].Detail, "guard.sites is empty") {
		t.Errorf("edge without sites: %s %+v", p.Status, p.Controls)
	}
	if _, err := os.Stat(filepath.Join(srv.app.DataDir, "protection.json")); err != nil {
		t.Errorf("the edge's heartbeat is not in the data directory: %v", err)
	}
	if code, _ := do("GET", "/trust", "", nil); code != 404 {
		t.Errorf("/trust with nothing published: %d, want 404", code)
	}
}
