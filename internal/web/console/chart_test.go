package console

import (
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor"
)

func TestLineChart(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	pt := func(min int, v float64) monitor.Point {
		return monitor.Point{Time: t0.Add(time.Duration(min) * time.Minute), Mean: v, Min: v - 1, Max: v + 1, Samples: 4}
	}
	tests := []struct {
		name      string
		unit      string
		pts       []monitor.Point
		lines     int // polylines: one per stretch without a gap
		want, not []string
	}{
		{"empty", "%", nil, 0, []string{"no samples in this period"}, []string{"<polyline"}},
		{"steady", "%", []monitor.Point{pt(0, 10), pt(1, 20), pt(2, 30)}, 1, []string{">100%<", ">50%<", "<circle"}, nil},
		// The monitor did not sample from minute 3 to 30: the line breaks.
		{"gap", "%", []monitor.Point{pt(0, 10), pt(1, 20), pt(2, 30), pt(30, 40), pt(31, 50)}, 2, nil, nil},
		// Not a percentage: the scale rounds the maximum up to 1, 2 or 5 x 10^n.
		{"load", "", []monitor.Point{pt(0, 3), pt(1, 12.3)}, 1, []string{">20<", ">10<"}, []string{"%"}},
		// Labels come from series names the API returned: escaped.
		{"escape", "<b>", []monitor.Point{pt(0, 1)}, 1, []string{"&lt;b&gt;"}, []string{"<b>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := lineChart("CPU", tc.unit, tc.pts, t0, t0.Add(time.Hour))
			if n := strings.Count(c.SVG, "<polyline"); n != tc.lines {
				t.Errorf("%d polylines, want %d:\n%s", n, tc.lines, c.SVG)
			}
			for _, w := range tc.want {
				if !strings.Contains(c.SVG, w) {
					t.Errorf("missing %q:\n%s", w, c.SVG)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(c.SVG, w) {
					t.Errorf("unexpected %q:\n%s", w, c.SVG)
				}
			}
			if !strings.HasPrefix(c.SVG, "<svg") || !strings.HasSuffix(c.SVG, "</svg>") || strings.Contains(c.SVG, "style=") {
				t.Errorf("not a self-contained SVG without inline styles:\n%s", c.SVG)
			}
		})
	}
}
