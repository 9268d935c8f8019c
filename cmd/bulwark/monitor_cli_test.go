package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/notify"
)

// TestMonitorCheck is the acceptance interface of `bulwark monitor check`:
// the configuration shape, one JSON object per check with name,
// ok, duration_seconds and message, and the exit status.
func TestMonitorCheck(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "all ok")
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "bulwark.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`monitor:
  checks:
    - name: web
      interval: 30s
      http: {url: "%s/", status: 200, contains: "ok", max_latency: 2s}
    - name: db
      tcp: {address: "127.0.0.1:5432"}
    - name: pg
      postgres: {dsn: {env: PG_DSN}}
`, srv.URL)), 0o644))
	c := newCLI(t).with("PG_DSN", "postgres://root@127.0.0.1:5432/test?sslmode=disable")
	out := mustRun(t, c, "monitor", "check", "--config", cfg, "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per check, got:\n%s", out)
	}
	for i, name := range []string{"web", "db", "pg"} {
		var r map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, lines[i])
		}
		if r["name"] != name || r["ok"] != true || r["message"] == "" {
			t.Errorf("line %d: %v", i, r)
		}
		if d, ok := r["duration_seconds"].(float64); !ok || d <= 0 {
			t.Errorf("line %d: duration_seconds %v", i, r["duration_seconds"])
		}
	}
	status.Store(503)
	code, out, stderr := c.run("", "monitor", "check", "--config", cfg)
	if code != 1 || !strings.Contains(out, "CRITICAL web") || !strings.Contains(out, "status 503, want 200") || !strings.Contains(stderr, "3 checks, 1 failed") {
		t.Errorf("a failing check: exit %d\n%s%s", code, out, stderr)
	}
	code, _, stderr = c.run("", "monitor", "check", "--config", cfg, "--check", "web,nope")
	if code != 2 || !strings.Contains(stderr, `no check named "nope" (configured: web, db, pg)`) {
		t.Errorf("an unknown check: exit %d %s", code, stderr)
	}
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	must(t, os.WriteFile(empty, nil, 0o644))
	code, _, stderr = c.run("", "monitor", "check", "--config", empty)
	if code != 2 || !strings.Contains(stderr, "configures no checks") {
		t.Errorf("no checks: exit %d %s", code, stderr)
	}
}

// TestMonitorMetrics: `bulwark monitor metrics --json` prints one sample
// with the host's figures filled in; --prometheus node_exporter's names.
func TestMonitorMetrics(t *testing.T) {
	c := newCLI(t)
	out := mustRun(t, c, "monitor", "metrics", "--json", "--over", "200ms")
	var s struct {
		CPU struct {
			Count       int      `json:"count"`
			BusyPercent *float64 `json:"busy_percent"`
		} `json:"cpu"`
		Load   map[string]float64 `json:"load"`
		Memory struct {
			TotalBytes uint64 `json:"total_bytes"`
		} `json:"memory"`
		Filesystems []struct {
			MountPoint string `json:"mountpoint"`
			SizeBytes  uint64 `json:"size_bytes"`
		} `json:"filesystems"`
		Clock struct {
			UptimeSeconds float64 `json:"uptime_seconds"`
		} `json:"clock"`
		Processes struct {
			Total int `json:"total"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if s.CPU.Count < 1 || s.CPU.BusyPercent == nil || s.Memory.TotalBytes == 0 || len(s.Filesystems) == 0 || s.Clock.UptimeSeconds <= 0 || s.Processes.Total < 2 {
		t.Errorf("sample lacks figures: %+v", s)
	}
	if _, ok := s.Load["load1"]; !ok {
		t.Errorf("no load1 in %v", s.Load)
	}
	prom := mustRun(t, c, "monitor", "metrics", "--prometheus")
	for _, name := range []string{"node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}", "node_load1 ", "node_memory_MemTotal_bytes ", "node_filesystem_avail_bytes{", "node_boot_time_seconds "} {
		if !strings.Contains(prom, name) {
			t.Errorf("--prometheus lacks %s", name)
		}
	}
}

// TestAlertTest: `bulwark alert test CHANNEL --config FILE` delivers a
// signed test webhook that the receiver verifies (exit 0), says when a
// channel fails (exit 1) and names the channels it has (exit 2).
func TestAlertTest(t *testing.T) {
	secret := []byte("alert-test-webhook-key")
	var got atomic.Int32
	var badSig atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.VerifySignature(secret, r.Header.Get(notify.TimestampHeader), r.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			badSig.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var p notify.Payload
		if json.Unmarshal(body, &p) == nil && p.State == notify.StateTest {
			got.Add(1)
		}
	}))
	defer hook.Close()
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer dead.Close()
	data := t.TempDir()
	cfg := filepath.Join(data, "bulwark.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`alerts:
  channels:
    - name: hook
      webhook: {url: "%s", secret: {env: HOOK_KEY}}
    - name: dead
      webhook: {url: "%s"}
`, hook.URL, dead.URL)), 0o644))
	c := newCLI(t).with("HOOK_KEY", string(secret))
	out := mustRun(t, c, "alert", "test", "hook", "--config", cfg, "--data", data)
	if got.Load() != 1 || badSig.Load() != 0 || !strings.Contains(out, "attempt 1 to hook (webhook): ok") {
		t.Errorf("delivered %d (bad signatures %d):\n%s", got.Load(), badSig.Load(), out)
	}
	code, out, stderr := c.run("", "alert", "test", "dead", "--config", cfg, "--data", data, "--attempts", "2")
	if code != 1 || strings.Count(out, "failed:") != 2 || !strings.Contains(out, "503") {
		t.Errorf("a failing channel: exit %d\n%s%s", code, out, stderr)
	}
	code, _, stderr = c.run("", "alert", "test", "nope", "--config", cfg, "--data", data)
	if code != 2 || !strings.Contains(stderr, `no channel "nope"`) || !strings.Contains(stderr, "configured: hook, dead") {
		t.Errorf("an unknown channel: exit %d %s", code, stderr)
	}
	// The secret comes from the environment: without it, a clear error.
	code, _, stderr = newCLI(t).run("", "alert", "test", "hook", "--config", cfg, "--data", data)
	if code != 2 || !strings.Contains(stderr, "HOOK_KEY") {
		t.Errorf("a missing secret: exit %d %s", code, stderr)
	}
}

// TestUpSupervises: `bulwark up` runs the configured checks, serves
// /status without login and the host's metrics at /metrics, pushes the
// pages to a directory, and `bulwark status export` writes them from the
// store once the server is gone.
func TestUpSupervises(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "ok")
	}))
	defer site.Close()
	data, mirror := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(data, "bulwark.yaml"), []byte(fmt.Sprintf(`monitor:
  interval: 1s
  checks:
    - name: web
      interval: 1s
      http: {url: "%s", status: 200, contains: "ok"}
    - name: db
      interval: 1s
      tcp: {address: "127.0.0.1:5432"}
status:
  title: Example status
  publish:
    - dir: %s
`, site.URL, mirror)), 0o600))
	s := startServer(t, data, "BULWARK_ADMIN_PASSWORD=acceptance-admin-password")
	get := func(path string) (int, string) {
		resp, err := s.client.Get("https://" + s.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("/status")
		if code == 200 && strings.Contains(body, "All systems operational") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never showed every check up: %d\n%s\n%s", code, body, s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, body := get("/metrics")
	for _, want := range []string{"node_load1 ", "node_memory_MemAvailable_bytes ", "node_filesystem_size_bytes{", `bulwark_check_up{check="web",kind="http"} 1`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if code, body := get("/status/status.json"); code != 200 || !strings.Contains(body, `"title": "Example status"`) && !strings.Contains(body, `"title":"Example status"`) {
		t.Errorf("/status/status.json: %d %s", code, body)
	}
	if code, _ := get("/status/nope"); code != 404 {
		t.Errorf("/status/nope: %d", code)
	}
	// The mirror is written when the pages change.
	deadline = time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(mirror, "index.html"))
		if strings.Contains(string(b), "Example status") && strings.Contains(string(b), `href="status.css"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror was not written: %q", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The site goes down: the page says so.
	status.Store(500)
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, body := get("/status")
		if strings.Contains(body, "Some systems are down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never showed web down:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The mirror follows the change (within the publisher's 10 s pause).
	deadline = time.Now().Add(40 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(mirror, "index.html"))
		if strings.Contains(string(b), "Some systems are down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror never showed web down:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.stop(t, syscall.SIGTERM)

	out := filepath.Join(t.TempDir(), "export")
	c := newCLI(t)
	code, _, stderr := c.run("", "status", "export", out, "--data", data)
	if code != 0 || !strings.Contains(stderr, "wrote 1 pages (3 files)") {
		t.Fatalf("status export: exit %d %s", code, stderr)
	}
	page, _ := os.ReadFile(filepath.Join(out, "index.html"))
	if !strings.Contains(string(page), "Example status") || !strings.Contains(string(page), "Some systems are down") || !strings.Contains(string(page), ">web <") {
		t.Errorf("exported page:\n%s", page)
	}
	if _, err := os.Stat(filepath.Join(out, "status.css")); err != nil {
		t.Error(err)
	}
}
