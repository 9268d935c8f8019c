package integrity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
//
// What the scan could not read is never folded: at and below every path
// of errs (the scan's errors) the entries of base are kept as they are
// and nothing is added. A directory the scan could not open (EMFILE,
// EACCES, EIO) leaves everything below it out of cur; that is not a
// removal.
func Accept(base, cur []Entry, paths []string, errs []ScanError) ([]Entry, int) {
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
	u := newUnreadable(errs)
	out := make([]Entry, 0, max(len(base), len(cur)))
	n := 0
	merge(base, cur, func(b, c *Entry) {
		p := pathOf(b, c)
		if !covered(p) || u.has(p) {
			if b != nil {
				out = append(out, *b)
			}
			return
		}
		switch {
		case c == nil:
			n++ // removal accepted: dropped
		case b == nil:
			out = append(out, *c)
			n++
		case len(compare(b, c)) > 0:
			out = append(out, *c)
			n++
		default:
			out = append(out, *b)
		}
	})
	return slices.Clip(out), n
}

// Reviewed is a finding as it was reviewed: its path, its kind (added,
// removed, changed) and its state (CurrentFinding.State).
type Reviewed struct {
	Path, Kind, State string
}

// Skipped is a path an accept was asked for and did not fold, and why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// AcceptExact folds into base the changes of cur at exactly the paths of
// want (nothing below them), each only when it still differs from base as
// its finding reported: the same kind, and the same state (stateOf: every
// attribute recorded). A path that changed again since, that no longer
// differs, or that the scan could not read (errs, at the path or above
// it) keeps its entry of base and is listed in skipped, sorted by path.
// It returns the new entries, sorted, and how many were folded.
func AcceptExact(base, cur []Entry, want []Reviewed, errs []ScanError) ([]Entry, int, []Skipped) {
	byPath := make(map[string]Reviewed, len(want))
	for _, r := range want {
		byPath[r.Path] = r
	}
	u := newUnreadable(errs)
	seen := make(map[string]bool, len(byPath))
	var skipped []Skipped
	out := make([]Entry, 0, max(len(base), len(cur)))
	n := 0
	merge(base, cur, func(b, c *Entry) {
		p := pathOf(b, c)
		r, ok := byPath[p]
		if ok {
			seen[p] = true
			why := exactSkip(r, b, c, u)
			if why == "" {
				if c != nil { // added or changed; a removal is dropped
					out = append(out, *c)
				}
				n++
				return
			}
			skipped = append(skipped, Skipped{Path: p, Reason: why})
		}
		if b != nil {
			out = append(out, *b)
		}
	})
	for p, r := range byPath {
		if !seen[p] { // in neither: gone, and not in the baseline
			skipped = append(skipped, Skipped{Path: p, Reason: exactSkip(r, nil, nil, u)})
		}
	}
	slices.SortFunc(skipped, func(a, b Skipped) int { return strings.Compare(a.Path, b.Path) })
	return slices.Clip(out), n, skipped
}

// exactSkip says why r is not folded, b and c being its entries in the
// baseline and the scan (nil: none), or "" when it is folded.
func exactSkip(r Reviewed, b, c *Entry, u unreadable) string {
	if at, why, ok := u.of(r.Path); ok {
		if at == r.Path {
			return "could not be read: " + why
		}
		return "below " + at + ", which could not be read: " + why
	}
	kind, _ := difference(b, c)
	switch {
	case kind == "":
		return "no longer differs from the baseline"
	case kind != r.Kind:
		return fmt.Sprintf("changed again since the finding: now %s, reported %s", kind, r.Kind)
	case r.State == "":
		return "the state its finding reported is not known"
	case stateOf(kind, c) != r.State:
		return "changed again since the finding was reported"
	}
	return ""
}

// stateOf is a token of the state a finding reports: its kind and, unless
// removed, every attribute recorded of the entry (SHA-256 of its baseline
// record; 128 bits, hex). Two reports of one path have the same token
// exactly when they report the same.
func stateOf(kind string, e *Entry) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	if e != nil && kind != KindRemoved {
		h.Write(appendRecord(nil, e))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// pathOf is the path of the entries merge passes (one may be nil).
func pathOf(b, c *Entry) string {
	if c != nil {
		return c.Path
	}
	return b.Path
}

// unreadable maps the paths a scan could not (fully) read to why (the
// first error of each).
type unreadable map[string]string

func newUnreadable(errs []ScanError) unreadable {
	if len(errs) == 0 {
		return nil
	}
	u := make(unreadable, len(errs))
	for _, e := range errs {
		if _, ok := u[e.Path]; !ok {
			u[e.Path] = e.Error
		}
	}
	return u
}

// of finds p or the nearest of its ancestors that could not be read: that
// path and why.
func (u unreadable) of(p string) (at, why string, ok bool) {
	if len(u) == 0 {
		return "", "", false
	}
	for q := p; ; {
		if why, ok := u[q]; ok {
			return q, why, true
		}
		i := strings.LastIndexByte(q, '/')
		switch {
		case i < 0 || q == "/":
			return "", "", false
		case i == 0:
			q = "/"
		default:
			q = q[:i]
		}
	}
}

func (u unreadable) has(p string) bool {
	_, _, ok := u.of(p)
	return ok
}
