package console

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor"
)

// chart is a metric chart drawn as SVG on the server: no script, no
// library, and it scales with the page (viewBox).
type chart struct {
	Title string
	Last  string
	SVG   string
}

// Chart geometry, in viewBox units.
const (
	chartW, chartH = 600.0, 160.0
	padL, padR     = 44.0, 8.0
	padT, padB     = 8.0, 22.0
)

// lineChart draws the mean of points over [from, to] with the min-max band
// behind it. Percent series keep a 0-100 scale; others scale to their
// maximum. A gap of more than three median steps breaks the line (the
// monitor was not sampling), rather than drawing a straight line over it.
func lineChart(title, unit string, pts []monitor.Point, from, to time.Time) chart {
	c := chart{Title: title}
	span := to.Sub(from).Seconds()
	if span <= 0 {
		span = 1
	}
	top := 100.0
	if unit != "%" {
		top = 0
		for _, p := range pts {
			top = math.Max(top, p.Max)
		}
		if top <= 0 {
			top = 1
		}
		top = niceCeil(top)
	}
	x := func(t time.Time) float64 {
		return padL + (chartW-padL-padR)*math.Max(0, math.Min(1, t.Sub(from).Seconds()/span))
	}
	y := func(v float64) float64 {
		return padT + (chartH-padT-padB)*(1-math.Max(0, math.Min(1, v/top)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" preserveAspectRatio="none">`, chartW, chartH, html.EscapeString(title+" over the last "+humanDuration(to.Sub(from))))
	// Grid and labels.
	for _, f := range []float64{0, 0.5, 1} {
		yy := y(top * f)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d0d7de" stroke-width="1"/>`, padL, yy, chartW-padR, yy)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" fill="#57606a">%s%s</text>`, padL-4, yy+4, trimFloat(top*f), html.EscapeString(unit))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#57606a">%s</text>`, padL, chartH-6, html.EscapeString(from.UTC().Format("15:04")))
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" fill="#57606a">%s</text>`, chartW-padR, chartH-6, html.EscapeString(to.UTC().Format("15:04 UTC")))
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="13" text-anchor="middle" fill="#57606a">no samples in this period</text></svg>`, chartW/2, chartH/2)
		c.SVG = b.String()
		return c
	}
	step := medianStep(pts)
	var line, band strings.Builder
	var upper, lower []string
	flush := func() {
		if len(upper) > 1 {
			band.WriteString(`<polygon fill="#0969da" fill-opacity="0.15" points="` + strings.Join(upper, " "))
			for i := len(lower) - 1; i >= 0; i-- {
				band.WriteString(" " + lower[i])
			}
			band.WriteString(`"/>`)
		}
		upper, lower = upper[:0], lower[:0]
	}
	for i, p := range pts {
		gap := i > 0 && step > 0 && p.Time.Sub(pts[i-1].Time) > 3*step
		if i == 0 || gap {
			flush()
			if i > 0 {
				line.WriteString(`"/>`)
			}
			line.WriteString(`<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="`)
		} else {
			line.WriteByte(' ')
		}
		fmt.Fprintf(&line, "%.1f,%.1f", x(p.Time), y(p.Mean))
		upper = append(upper, fmt.Sprintf("%.1f,%.1f", x(p.Time), y(p.Max)))
		lower = append(lower, fmt.Sprintf("%.1f,%.1f", x(p.Time), y(p.Min)))
	}
	line.WriteString(`"/>`)
	flush()
	b.WriteString(band.String())
	b.WriteString(line.String())
	last := pts[len(pts)-1]
	fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#0969da"/>`, x(last.Time), y(last.Mean))
	b.WriteString(`</svg>`)
	c.SVG = b.String()
	c.Last = trimFloat(pts[len(pts)-1].Mean) + unit
	return c
}

func medianStep(pts []monitor.Point) time.Duration {
	if len(pts) < 2 {
		return 0
	}
	d := make([]time.Duration, 0, len(pts)-1)
	for i := 1; i < len(pts); i++ {
		d = append(d, pts[i].Time.Sub(pts[i-1].Time))
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return fmt.Sprintf("%.0f", v)
	}
	if math.Abs(v) >= 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
