package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// TestBenchPages measures how long each console page takes to render on
// the server with 10,000 events in the store and 1,000 snapshots in the
// policy's repository (scripts/bench-console.sh, for make bench). It runs
// only when BULWARK_CONSOLE_BENCH names the Markdown file to write, and
// never fails on a timing: it reports.
func TestBenchPages(t *testing.T) {
	out := os.Getenv("BULWARK_CONSOLE_BENCH")
	if out == "" {
		t.Skip("a benchmark: set BULWARK_CONSOLE_BENCH=FILE (make bench does)")
	}
	ctx := context.Background()
	nEvents, nSnaps, rounds := envInt("CONSOLE_BENCH_EVENTS", 10000), envInt("CONSOLE_BENCH_SNAPSHOTS", 1000), envInt("CONSOLE_BENCH_ROUNDS", 20)
	// A repository with the default key derivation, as in production.
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, []byte(repotest.Password), repo.InitOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := startStackOn(t, dir, "")
	if _, err := s.app.Continuity.RunBackup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, _, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots after the first backup: %d, %v", len(snaps), err)
	}
	seed := time.Now()
	for i := 1; i < nSnaps; i++ {
		sn := *snaps[0]
		sn.Time = snaps[0].Time.Add(-time.Duration(i) * time.Hour)
		if _, err := r.SaveSnapshot(ctx, &sn); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	modules := []string{events.ModuleGuard, events.ModuleIntegrity, events.ModuleMonitoring, events.ModuleContinuity, events.ModuleBackups}
	for i := range nEvents {
		if _, err := s.app.Events.Publish(ctx, events.Event{Type: events.TypeSystemStarted, Severity: events.SeverityInfo, Module: modules[i%len(modules)],
			Actor: events.SystemActor("bench"), Resource: fmt.Sprintf("bench/%d", i), Message: "benchmark event"}); err != nil {
			t.Fatal(err)
		}
	}
	// In `bulwark up` every event is also an audit entry (a sink of the bus,
	// delivered in the background): append as many, so that the report
	// verifies a chain of that length.
	for i := range nEvents {
		if _, err := s.app.Audit.Append(ctx, audit.Entry{Actor: "system:bench", Action: "bench.event", Resource: fmt.Sprintf("bench/%d", i), Result: audit.ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	head, _, err := s.app.Audit.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d snapshots, %d events and %d audit entries in %v", nSnaps, nEvents, head, time.Since(seed).Round(time.Millisecond))

	c := s.signIn("admin", adminPassword)
	pages := []string{"/", "/backups", "/backups/web", "/guard", "/integrity", "/monitoring", "/access", "/audit", "/events", "/report", "/account", "/api/v1/report"}
	var b strings.Builder
	fmt.Fprintf(&b, "| page | median | p95 | max | size |\n|---|---|---|---|---|\n")
	for _, p := range pages {
		var d []time.Duration
		size := 0
		for range rounds {
			start := time.Now()
			res, err := c.Get(s.url + p)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			d = append(d, time.Since(start))
			size = int(n)
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d", p, res.StatusCode)
			}
		}
		slices.Sort(d)
		fmt.Fprintf(&b, "| `%s` | %.1f ms | %.1f ms | %.1f ms | %d KB |\n", p, ms(d[len(d)/2]), ms(d[len(d)*95/100]), ms(d[len(d)-1]), size/1024)
	}
	// The report made anew each time (the API reuses one for up to 30 s
	// while nothing is audited; this is the cost when it cannot).
	var d []time.Duration
	for range rounds {
		start := time.Now()
		if _, err := s.app.Report(ctx, false); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	fmt.Fprintf(&b, "| the report made anew (`App.Report`, no reuse) | %.1f ms | %.1f ms | %.1f ms | |\n", ms(d[len(d)/2]), ms(d[len(d)*95/100]), ms(d[len(d)-1]))
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func envInt(k string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(k), &n); err != nil || n <= 0 {
		return def
	}
	return n
}
