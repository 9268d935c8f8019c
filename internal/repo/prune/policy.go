// Package prune decides which snapshots a retention policy keeps (forget)
// and removes the data no kept snapshot needs (prune).
package prune

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

// Policy is a retention policy in restic's vocabulary. A snapshot is kept
// when any rule keeps it. Each keep-N rule walks snapshots newest first and
// keeps the newest snapshot of each of the N most recent periods (hours,
// days, ...) that have one. Within keeps every snapshot younger than the
// duration, measured from the newest snapshot, not from now, so a host that
// stopped backing up does not lose its last backups to the clock.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Within                                       time.Duration
	Tags                                         []string // snapshots with any of these tags are always kept
}

// Empty reports whether the policy keeps nothing (a mistake, not a wish to
// delete everything).
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 && p.Within == 0 && len(p.Tags) == 0
}

// Validate refuses negative counts.
func (p Policy) Validate() error {
	for name, v := range map[string]int{"keep-last": p.Last, "keep-hourly": p.Hourly, "keep-daily": p.Daily,
		"keep-weekly": p.Weekly, "keep-monthly": p.Monthly, "keep-yearly": p.Yearly} {
		if v < 0 {
			return fmt.Errorf("--%s %d: must not be negative", name, v)
		}
	}
	if p.Within < 0 {
		return fmt.Errorf("--keep-within must not be negative")
	}
	return nil
}

// Decision is why a snapshot is kept (Reasons non-empty) or removed.
type Decision struct {
	Snapshot *repo.Snapshot
	Reasons  []string
}

// Apply splits snapshots into kept and removed. Groups of snapshots (per
// host and paths) are the caller's business: call Apply once per group.
func Apply(snaps []*repo.Snapshot, p Policy) (keep, remove []Decision) {
	s := append([]*repo.Snapshot(nil), snaps...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Time.After(s[j].Time) })
	reasons := make([][]string, len(s))
	if len(s) == 0 {
		return nil, nil
	}
	rules := []struct {
		name string
		n    int
		key  func(time.Time) string
	}{
		{"last", p.Last, func(t time.Time) string { return "" }},
		{"hourly", p.Hourly, func(t time.Time) string { return t.Format("2006-01-02 15") }},
		{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", p.Yearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, rule := range rules {
		left := rule.n
		last := "\x00"
		for i, snap := range s {
			if left == 0 {
				break
			}
			k := rule.key(snap.Time.Local())
			if rule.name == "last" || k != last {
				reasons[i] = append(reasons[i], rule.name)
				last = k
				left--
			}
		}
	}
	if p.Within > 0 {
		cutoff := s[0].Time.Add(-p.Within)
		for i, snap := range s {
			if !snap.Time.Before(cutoff) {
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
