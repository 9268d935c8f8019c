// Package statuspage renders the public status pages: server-side HTML
// with one stylesheet, no script and nothing fetched from elsewhere, so the
// same files work when served by Bulwark at /status and when exported
// (Export) to a directory or a bucket that keeps serving them while
// Bulwark is down.
//
// Layout of an export: index.html is the page "main" and NAME/index.html
// every other page, each beside a status.json of its data; status.css is
// shared. Links are relative, so the tree can be served from any prefix.
package statuspage

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/signkey"
)

//go:embed assets/*
var assets embed.FS

// CSS is the stylesheet every page links to as status.css.
func CSS() []byte {
	b, _ := fs.ReadFile(assets, "assets/status.css")
	return b
}

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"bar":     barClass,
	"barText": barText,
	"pct":     pct,
	"since":   since,
	"label":   overallText,
	"date":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"lines":   func(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") },
}).ParseFS(assets, "assets/page.html"))

// view is what the template gets: the data and where the stylesheet is.
type view struct {
	*monitor.PageData
	CSS string
}

// Render writes a page's HTML; css is the stylesheet's URL relative to the
// page.
func Render(pd *monitor.PageData, css string) ([]byte, error) {
	var b bytes.Buffer
	if err := page.Execute(&b, view{pd, css}); err != nil {
		return nil, fmt.Errorf("status page %s: %w", pd.Name, err)
	}
	return b.Bytes(), nil
}

// File is one file of an export.
type File struct {
	Path string // slash-separated, relative
	Data []byte
	Type string // MIME type
}

// Files renders the pages as the files of an export.
func Files(pages []*monitor.PageData) ([]File, error) {
	out := []File{{Path: "status.css", Data: CSS(), Type: "text/css; charset=utf-8"}}
	for _, pd := range pages {
		dir, css := "", "status.css"
		if pd.Name != "main" {
			dir, css = pd.Name+"/", "../status.css"
		}
		html, err := Render(pd, css)
		if err != nil {
			return nil, err
		}
		js, err := json.MarshalIndent(pd, "", "  ")
		if err != nil {
			return nil, err
		}
		out = append(out, File{Path: dir + "index.html", Data: html, Type: "text/html; charset=utf-8"},
			File{Path: dir + "status.json", Data: append(js, '\n'), Type: "application/json"})
	}
	return out, nil
}

// Export writes the files into dir, each replaced atomically (written
// beside, then renamed), so a web server reading the directory never
// serves half a page.
func Export(dir string, files []File) error {
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := signkey.WriteFileAtomic(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

// barClass grades a day: up (all runs passed), minor (99% or more), major
// (less), none (no runs, or the monitor was not running).
func barClass(d monitor.Day) string {
	switch {
	case d.UptimePercent == nil:
		return "none"
	case *d.UptimePercent >= 100:
		return "up"
	case *d.UptimePercent >= 99:
		return "minor"
	}
	return "major"
}

func barText(d monitor.Day) string {
	var s string
	if d.UptimePercent == nil {
		s = d.Date + ": no data"
	} else {
		s = fmt.Sprintf("%s: %s up (%d of %d runs passed)", d.Date, pct(d.UptimePercent), d.Runs-d.Failures, d.Runs)
	}
	if d.MonitoredPercent > 0 && d.MonitoredPercent < 99.5 {
		s += fmt.Sprintf("; not monitored %.0f%% of the day (not counted)", 100-d.MonitoredPercent)
	}
	return s
}

func pct(p *float64) string {
	if p == nil {
		return "no data"
	}
	v := *p
	if v >= 99.995 {
		return "100%"
	}
	return fmt.Sprintf("%.2f%%", math.Floor(v*100)/100)
}

func since(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return "since " + t.UTC().Format("2006-01-02 15:04 UTC")
}

func overallText(s string) string {
	switch s {
	case "operational":
		return "All systems operational"
	case "degraded":
		return "Some systems are down"
	case "outage":
		return "Major outage"
	}
	return "No checks have run yet"
}
