package statuspage

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func fixture() *monitor.PageData {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	pct := func(v float64) *float64 { return &v }
	days := []monitor.Day{
		{Date: "2026-11-20", MonitoredPercent: 0},
		{Date: "2026-11-21", Runs: 2880, Failures: 10, UptimePercent: pct(99.65), MonitoredPercent: 62.5},
		{Date: "2026-11-22", Runs: 1200, UptimePercent: pct(100), MonitoredPercent: 100},
	}
	return &monitor.PageData{Name: "main", Title: "Example <hosting> status", Description: "Web & mail", Generated: t0, Overall: "degraded",
		Checks: []monitor.PageCheck{
			{Name: "web", State: "up", Since: t0.Add(-time.Hour), UptimePercent: pct(99.75), Days: days},
			{Name: "mail", State: "down", Since: t0.Add(-5 * time.Minute), UptimePercent: pct(97.1), Days: days},
		},
		Incidents: []monitor.PublicIncident{{ID: 1, Title: `Mail delayed <script>alert(1)</script>`, Body: "Queue backed up.\nDraining now.", Status: "monitoring", Created: t0.Add(-time.Hour), Updated: t0}},
	}
}

// TestRender compares the page with a golden file (go test -update
// rewrites it) and checks what must hold whatever the layout: text is
// escaped, gaps are marked, the stylesheet link is the one given.
func TestRender(t *testing.T) {
	got, err := Render(fixture(), "../status.css")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "page.golden.html")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("the page differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
	s := string(got)
	for _, must := range []string{
		"Example &lt;hosting&gt; status", "Web &amp; mail", "Mail delayed &lt;script&gt;", `href="../status.css"`,
		`class="bar minor gap"`, "not monitored 38% of the day (not counted)", `class="bar none"`, "Some systems are down",
		"<p>Queue backed up.</p>", "<p>Draining now.</p>",
	} {
		if !strings.Contains(s, must) {
			t.Errorf("the page lacks %q", must)
		}
	}
	if strings.Contains(s, "<script>") {
		t.Error("unescaped script in the page")
	}
}

// TestFiles: the export's layout and relative stylesheet links.
func TestFiles(t *testing.T) {
	other := fixture()
	other.Name = "internal"
	files, err := Files([]*monitor.PageData{fixture(), other})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, " "); got != "status.css index.html status.json internal/index.html internal/status.json" {
		t.Errorf("files %s", got)
	}
	if !strings.Contains(string(files[3].Data), `href="../status.css"`) || !strings.Contains(string(files[1].Data), `href="status.css"`) {
		t.Error("stylesheet links are not relative to each page")
	}
	dir := t.TempDir()
	if err := Export(dir, files); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "internal", "status.json")); err != nil || !strings.Contains(string(b), `"name": "internal"`) {
		t.Errorf("exported json: %v %s", err, b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
