package integrity

import (
	"slices"
	"strings"
)

// Finding is one path that differs from the baseline.
type Finding struct {
	Path string `json:"path"`
	// Type is the entry's type (of the new entry; the old one's when
	// removed).
	Type string `json:"type,omitempty"`
	// Attributes names what changed (changed entries only), and Changes
	// gives the old and new values.
	Attributes []string `json:"attributes,omitempty"`
	Changes    []Change `json:"changes,omitempty"`
	// Severity grades the finding (high, medium, low) and Reasons say
	// what made it high (see severity.go).
	Severity string   `json:"severity,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
	// Package owns the file (dpkg), and Expected says its change is
	// explained: the content is the package's own (an upgrade).
	Package  string `json:"package,omitempty"`
	Expected bool   `json:"expected,omitempty"`
}

// Report is what a check found.
type Report struct {
	Added   []Finding `json:"added"`
	Removed []Finding `json:"removed"`
	Changed []Finding `json:"changed"`
}

// Clean reports whether nothing differs.
func (r *Report) Clean() bool { return len(r.Added)+len(r.Removed)+len(r.Changed) == 0 }

// Count is the number of findings.
func (r *Report) Count() int { return len(r.Added) + len(r.Removed) + len(r.Changed) }

// Diff compares a scan with the baseline, both sorted by path, and grades
// each finding (see Grading). An attribute is compared only where both
// recorded it, so a policy that records more than the baseline did reports
// no change for the new attributes.
func Diff(base, cur []Entry, g Grading) *Report {
	r := &Report{Added: []Finding{}, Removed: []Finding{}, Changed: []Finding{}}
	merge(base, cur, func(b, c *Entry) {
		switch {
		case c == nil:
			r.Removed = append(r.Removed, newFinding(g, KindRemoved, b, nil, nil))
		case b == nil:
			r.Added = append(r.Added, newFinding(g, KindAdded, nil, c, nil))
		default:
			if ch := compare(b, c); len(ch) > 0 {
				r.Changed = append(r.Changed, newFinding(g, KindChanged, b, c, ch))
			}
		}
	})
	return r
}

// findEntry returns the entry of path in entries (sorted by path), or nil.
func findEntry(entries []Entry, path string) *Entry {
	if i, ok := slices.BinarySearchFunc(entries, path, func(e Entry, p string) int { return strings.Compare(e.Path, p) }); ok {
		return &entries[i]
	}
	return nil
}

// merge walks base and cur, both sorted by path, and calls fn once for
// every path of either with its entry in each (nil where it has none).
func merge(base, cur []Entry, fn func(b, c *Entry)) {
	i, j := 0, 0
	for i < len(base) || j < len(cur) {
		switch {
		case j == len(cur) || i < len(base) && base[i].Path < cur[j].Path:
			fn(&base[i], nil)
			i++
		case i == len(base) || cur[j].Path < base[i].Path:
			fn(nil, &cur[j])
			j++
		default:
			fn(&base[i], &cur[j])
			i++
			j++
		}
	}
}

// newFinding describes and grades a difference: base and cur are the
// baseline's and the current entry (nil when absent), ch the changes.
func newFinding(g Grading, kind string, base, cur *Entry, ch []Change) Finding {
	e := cur
	if e == nil {
		e = base
	}
	f := Finding{Path: e.Path, Type: typeName(e), Changes: ch}
	for _, c := range ch {
		f.Attributes = append(f.Attributes, c.Attribute)
	}
	g.grade(&f, kind, base, cur)
	return f
}

// Counts tells how many findings there are of each severity.
func (r *Report) Counts() map[string]int {
	n := map[string]int{SeverityHigh: 0, SeverityMedium: 0, SeverityLow: 0}
	for _, fs := range [][]Finding{r.Added, r.Removed, r.Changed} {
		for _, f := range fs {
			n[f.Severity]++
		}
	}
	return n
}

func typeName(e *Entry) string {
	if e.Attrs&AttrType == 0 {
		return ""
	}
	return e.Type.String()
}

// Accept folds the changes of cur under paths (every change when paths is
// empty) into base and returns the new entries, sorted, and how many
// findings were folded. A path covers itself and everything below it.
func Accept(base, cur []Entry, paths []string) ([]Entry, int) {
	covered := func(p string) bool {
		if len(paths) == 0 {
			return true
		}
		for _, q := range paths {
			q = strings.TrimSuffix(q, "/")
			if p == q || strings.HasPrefix(p, q+"/") || q == "" {
				return true
			}
		}
		return false
	}
	out := make([]Entry, 0, max(len(base), len(cur)))
	n := 0
	merge(base, cur, func(b, c *Entry) {
		switch {
		case c == nil:
			if covered(b.Path) {
				n++ // removal accepted: dropped
			} else {
				out = append(out, *b)
			}
		case b == nil:
			if covered(c.Path) {
				out = append(out, *c)
				n++
			}
		case covered(c.Path) && len(compare(b, c)) > 0:
			out = append(out, *c)
			n++
		default:
			out = append(out, *b)
		}
	})
	return slices.Clip(out), n
}
