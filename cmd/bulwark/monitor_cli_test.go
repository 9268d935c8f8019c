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
	"testing"
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
