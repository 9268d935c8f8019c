// Package prune decides which snapshots a retention policy keeps (forget)
// and removes the data no remaining snapshot needs (prune).
//
// # Retention (forget)
//
// Snapshots are grouped by host and paths (GroupKey, restic's default) and
// the policy is applied to each group on its own, so a host that backs up
// /etc and /home separately keeps the newest /etc snapshots as well as the
// newest /home ones. Within a group, snapshots are ordered newest first
// (ties broken by id, so the outcome never depends on listing order), and a
// snapshot is kept when any rule keeps it:
//
//   - keep-last N keeps the N newest snapshots.
//   - keep-hourly/daily/weekly/monthly/yearly N walk the snapshots newest
//     first and keep the newest snapshot of each of the N most recent
//     periods that have a snapshot (periods without one do not count).
//     Periods are taken in the time zone recorded in the snapshot (the
//     backup host's wall clock), so the outcome does not depend on where
//     forget runs. Weeks are ISO 8601 weeks (Monday to Sunday).
//   - keep-within D keeps every snapshot taken strictly after the newest
//     snapshot of the group minus D: measured from the newest snapshot, not
//     from now, so a host that stopped backing up does not lose its last
//     backups to the clock.
//   - keep-tag T keeps every snapshot that carries tag T.
//
// A policy with no rule at all is refused by the caller (Policy.Empty): it
// would remove every snapshot.
package prune

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

// Policy is a retention policy in restic's vocabulary. A snapshot is kept
// when any rule keeps it (see the package documentation).
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Within                                       Duration
	Tags                                         []string // keep-tag: snapshots with any of these tags are always kept
}

// Empty reports whether the policy has no rule, which would keep nothing
// (a mistake, not a wish to delete everything).
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 &&
		p.Within.IsZero() && len(p.Tags) == 0
}

// Validate refuses negative counts and durations.
func (p Policy) Validate() error {
	for _, r := range []struct {
		name string
		v    int
	}{{"keep-last", p.Last}, {"keep-hourly", p.Hourly}, {"keep-daily", p.Daily},
		{"keep-weekly", p.Weekly}, {"keep-monthly", p.Monthly}, {"keep-yearly", p.Yearly}} {
		if r.v < 0 {
			return fmt.Errorf("--%s %d: must not be negative", r.name, r.v)
		}
	}
	if p.Within.negative() {
		return fmt.Errorf("--keep-within %s: must not be negative", p.Within)
	}
	for _, t := range p.Tags {
		if t == "" {
			return errors.New("--keep-tag: empty tag")
		}
	}
	return nil
}

// String describes the policy, e.g. "last 3, daily 7, within 30d".
func (p Policy) String() string {
	var s []string
	for _, r := range []struct {
		name string
		v    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily},
		{"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if r.v > 0 {
			s = append(s, fmt.Sprintf("%s %d", r.name, r.v))
		}
	}
	if !p.Within.IsZero() {
		s = append(s, "within "+p.Within.String())
	}
	for _, t := range p.Tags {
		s = append(s, "tag "+t)
	}
	if len(s) == 0 {
		return "(empty)"
	}
	return strings.Join(s, ", ")
}

// Decision is why a snapshot is kept (Reasons non-empty) or removed.
type Decision struct {
	Snapshot *repo.Snapshot
	Reasons  []string
}

// newestFirst orders snapshots newest first, ties by id.
func newestFirst(s []*repo.Snapshot) {
	sort.SliceStable(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.After(s[j].Time)
		}
		return repo.Hex(s[i].ID) > repo.Hex(s[j].ID)
	})
}

// Apply splits snapshots into kept and removed, both newest first. Groups
// of snapshots (per host and paths) are the caller's business: call Apply
// once per group, or use ApplyGroups.
func Apply(snaps []*repo.Snapshot, p Policy) (keep, remove []Decision) {
	if len(snaps) == 0 {
		return nil, nil
	}
	s := append([]*repo.Snapshot(nil), snaps...)
	newestFirst(s)
	reasons := make([][]string, len(s))
	rules := []struct {
		name string
		n    int
		key  func(time.Time) string // "" for keep-last: every snapshot is its own period
	}{
		{"last", p.Last, nil},
		{"hourly", p.Hourly, func(t time.Time) string { return t.Format("2006-01-02 15") }},
		{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", p.Yearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, rule := range rules {
		left := rule.n
		last, first := "", true
		for i, snap := range s {
			if left == 0 {
				break
			}
			if rule.key == nil {
				reasons[i] = append(reasons[i], rule.name)
				left--
				continue
			}
			// The snapshot's own zone: the wall clock of the host that took it.
			k := rule.key(snap.Time)
			if first || k != last {
				reasons[i] = append(reasons[i], rule.name)
				last, first = k, false
				left--
			}
		}
	}
	if !p.Within.IsZero() {
		cutoff := p.Within.Before(s[0].Time)
		for i, snap := range s {
			if snap.Time.After(cutoff) {
				reasons[i] = append(reasons[i], "within "+p.Within.String())
			}
		}
	}
	for i, snap := range s {
		for _, t := range p.Tags {
			if snap.HasTag(t) {
				reasons[i] = append(reasons[i], "tag "+t)
			}
		}
	}
	for i, snap := range s {
		d := Decision{Snapshot: snap, Reasons: reasons[i]}
		if len(d.Reasons) > 0 {
			keep = append(keep, d)
		} else {
			remove = append(remove, d)
		}
	}
	return keep, remove
}

// GroupKey groups snapshots by host and paths, as restic does by default.
func GroupKey(s *repo.Snapshot) string {
	paths := append([]string(nil), s.Paths...)
	sort.Strings(paths)
	return s.Hostname + "\x00" + strings.Join(paths, "\x00")
}

// Group is the outcome of a policy for one host and set of paths.
type Group struct {
	Hostname string
	Paths    []string // sorted
	Keep     []Decision
	Remove   []Decision
}

// ApplyGroups groups snaps by GroupKey and applies p to each group. Groups
// are ordered by host, then paths.
func ApplyGroups(snaps []*repo.Snapshot, p Policy) []Group {
	by := map[string][]*repo.Snapshot{}
	for _, s := range snaps {
		k := GroupKey(s)
		by[k] = append(by[k], s)
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		first := by[k][0]
		paths := append([]string(nil), first.Paths...)
		sort.Strings(paths)
		g := Group{Hostname: first.Hostname, Paths: paths}
		g.Keep, g.Remove = Apply(by[k], p)
		out = append(out, g)
	}
	return out
}

// Duration is a --keep-within duration: calendar years, months and days,
// which vary in length and are applied with time.AddDate, plus a clock
// duration.
type Duration struct {
	Years, Months, Days int
	Clock               time.Duration
}

// IsZero reports whether d is empty.
func (d Duration) IsZero() bool { return d == Duration{} }

func (d Duration) negative() bool { return d.Years < 0 || d.Months < 0 || d.Days < 0 || d.Clock < 0 }

// Before returns t minus d.
func (d Duration) Before(t time.Time) time.Time {
	return t.AddDate(-d.Years, -d.Months, -d.Days).Add(-d.Clock)
}

// String formats d as ParseDuration reads it, e.g. "1y2m3d4h0m0s"; a
// clock part under an hour is written "0h30m0s".
func (d Duration) String() string {
	var b strings.Builder
	for _, u := range []struct {
		n int
		s string
	}{{d.Years, "y"}, {d.Months, "m"}, {d.Days, "d"}} {
		if u.n != 0 {
			b.WriteString(strconv.Itoa(u.n) + u.s)
		}
	}
	if d.Clock != 0 || b.Len() == 0 {
		c := d.Clock.String()
		if d.Clock >= time.Minute && d.Clock < time.Hour {
			c = "0h" + c // "30m0s" would read as 30 months
		}
		b.WriteString(c)
	}
	return b.String()
}

// maxCalendar bounds each calendar number (and the days of weeks and days
// together), far beyond any real retention, so sums cannot overflow.
const maxCalendar = 10_000_000

// ParseDuration reads a --keep-within duration: calendar units first, each
// at most once and in this order — Ny (years), Nm (months), Nw (weeks, 7
// days each), Nd (days) — then optionally a Go duration (time.ParseDuration:
// 36h, 1h30m, 90s). Examples: 30d, 1y2m, 2w, 1y6m15d12h, 72h.
//
// As in restic, "m" right after the number means months: 6m is six
// months. Minutes exist only inside the Go duration, after hours (1h30m,
// 0h45m) or as a fraction of an hour (0.5h); "ms" stays milliseconds.
func ParseDuration(s string) (Duration, error) {
	var d Duration
	if s == "" {
		return d, errors.New("empty duration")
	}
	rest := s
	units := "ymwd"
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			break
		}
		u := strings.IndexByte(units, rest[i])
		if u < 0 || strings.HasPrefix(rest[i:], "ms") {
			break // not a calendar unit: the Go duration starts here
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > maxCalendar {
			return Duration{}, fmt.Errorf("duration %q: %q is out of range", s, rest[:i])
		}
		switch units[u] {
		case 'y':
			d.Years = n
		case 'm':
			d.Months = n
		case 'w':
			d.Days += 7 * n
		case 'd':
			d.Days += n
		}
		units = units[u+1:]
		rest = rest[i+1:]
	}
	if d.Days > maxCalendar {
		return Duration{}, fmt.Errorf("duration %q: %d days is out of range", s, d.Days)
	}
	if rest != "" {
		c, err := time.ParseDuration(rest)
		if err != nil {
			if rest == s {
				return Duration{}, fmt.Errorf("duration %q: want calendar units y, m (months), w, d, then a Go duration (e.g. 30d, 1y2m, 36h)", s)
			}
			return Duration{}, fmt.Errorf("duration %q: %q is neither a calendar unit in order (y, m, w, d) nor a Go duration", s, rest)
		}
		if c < 0 {
			return Duration{}, fmt.Errorf("duration %q: must not be negative", s)
		}
		d.Clock = c
	}
	return d, nil
}
