package prune

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

// snap makes a snapshot with a one-byte id (for readable expectations).
func snap(id byte, t time.Time, tags ...string) *repo.Snapshot {
	var sid repo.ID
	sid[0] = id
	return &repo.Snapshot{ID: sid, Time: t, Hostname: "h", Paths: []string{"/p"}, Tags: tags}
}

func ids(ds []Decision) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%d", d.Snapshot.ID[0]))
	}
	return strings.Join(s, " ")
}

func reasons(ds []Decision) map[byte]string {
	m := map[byte]string{}
	for _, d := range ds {
		m[d.Snapshot.ID[0]] = strings.Join(d.Reasons, ",")
	}
	return m
}

var utc = time.UTC

func at(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, utc) }

// series: snapshots 1..n, one every step, starting at start (1 = oldest).
func series(n int, start time.Time, step time.Duration) []*repo.Snapshot {
	var out []*repo.Snapshot
	for i := 0; i < n; i++ {
		out = append(out, snap(byte(i+1), start.Add(time.Duration(i)*step)))
	}
	return out
}

func TestApply(t *testing.T) {
	// Ten snapshots, every 7 hours from 2026-01-01 00:00 UTC: 1 at Jan 1
	// 00:00, 2 at 07:00, 3 at 14:00, 4 at 21:00, 5 at Jan 2 04:00, 6 at
	// 11:00, 7 at 18:00, 8 at Jan 3 01:00, 9 at 08:00, 10 at 15:00.
	hours7 := series(10, at(2026, 1, 1, 0, 0), 7*time.Hour)
	// One snapshot on the 15th of each month from 2024-11 to 2026-02 (16).
	var monthly []*repo.Snapshot
	for i := 0; i < 16; i++ {
		monthly = append(monthly, snap(byte(i+1), time.Date(2024, time.November+time.Month(i), 15, 12, 0, 0, 0, utc)))
	}
	// Weekly: 2026-01-05 is a Monday (ISO week 2). Snapshots Mon, Wed, Sun
	// of week 2, then Mon of week 3, then Sun of week 4.
	weekly := []*repo.Snapshot{
		snap(1, at(2026, 1, 5, 10, 0)), snap(2, at(2026, 1, 7, 10, 0)), snap(3, at(2026, 1, 11, 23, 0)),
		snap(4, at(2026, 1, 12, 1, 0)), snap(5, at(2026, 1, 25, 9, 0)),
	}
	tagged := []*repo.Snapshot{
		snap(1, at(2026, 1, 1, 0, 0), "monthly"), snap(2, at(2026, 1, 2, 0, 0)), snap(3, at(2026, 1, 3, 0, 0), "x", "monthly"),
		snap(4, at(2026, 1, 4, 0, 0), "other"), snap(5, at(2026, 1, 5, 0, 0)),
	}
	day := 24 * time.Hour
	cases := []struct {
		name        string
		snaps       []*repo.Snapshot
		p           Policy
		keep, rmv   string
		wantReasons map[byte]string
	}{
		{"last 3", hours7, Policy{Last: 3}, "10 9 8", "7 6 5 4 3 2 1", map[byte]string{10: "last", 9: "last", 8: "last"}},
		{"last more than there are", hours7[:2], Policy{Last: 5}, "2 1", "", nil},
		{"hourly 4", hours7, Policy{Hourly: 4}, "10 9 8 7", "6 5 4 3 2 1", nil},
		{"daily 2", hours7, Policy{Daily: 2}, "10 7", "9 8 6 5 4 3 2 1", map[byte]string{10: "daily", 7: "daily"}},
		{"daily 5 (only 3 days)", hours7, Policy{Daily: 5}, "10 7 4", "9 8 6 5 3 2 1", nil},
		{"weekly 2", weekly, Policy{Weekly: 2}, "5 4", "3 2 1", nil},
		{"weekly 3: Sunday belongs to the week before", weekly, Policy{Weekly: 3}, "5 4 3", "2 1", nil},
		{"monthly 3", monthly, Policy{Monthly: 3}, "16 15 14", "13 12 11 10 9 8 7 6 5 4 3 2 1", nil},
		{"yearly 2", monthly, Policy{Yearly: 2}, "16 14", "15 13 12 11 10 9 8 7 6 5 4 3 2 1",
			map[byte]string{16: "yearly", 14: "yearly"}},
		{"yearly 5 (three years)", monthly, Policy{Yearly: 5}, "16 14 2", "15 13 12 11 10 9 8 7 6 5 4 3 1", nil},
		{"combination: reasons add up", hours7, Policy{Last: 1, Daily: 3, Hourly: 2}, "10 9 7 4", "8 6 5 3 2 1",
			map[byte]string{10: "last,hourly,daily", 9: "hourly", 7: "daily", 4: "daily"}},
		{"within 1d of the newest (strictly after)", hours7, Policy{Within: Duration{Days: 1}}, "10 9 8 7", "6 5 4 3 2 1",
			map[byte]string{10: "within 1d", 7: "within 1d"}},
		{"within 22h", hours7, Policy{Within: Duration{Clock: 22 * time.Hour}}, "10 9 8 7", "6 5 4 3 2 1", nil},
		{"within 21h: exactly 21h before is out", hours7, Policy{Within: Duration{Clock: 21 * time.Hour}}, "10 9 8", "7 6 5 4 3 2 1", nil},
		{"within 2m (months)", monthly, Policy{Within: Duration{Months: 2}}, "16 15", "14 13 12 11 10 9 8 7 6 5 4 3 2 1", nil},
		{"within 1y", monthly, Policy{Within: Duration{Years: 1}}, "16 15 14 13 12 11 10 9 8 7 6 5", "4 3 2 1", nil},
		{"keep-tag", tagged, Policy{Tags: []string{"monthly"}}, "3 1", "5 4 2", map[byte]string{3: "tag monthly", 1: "tag monthly"}},
		{"keep-tag and last", tagged, Policy{Last: 1, Tags: []string{"monthly", "other"}}, "5 4 3 1", "2",
			map[byte]string{5: "last", 4: "tag other", 3: "tag monthly", 1: "tag monthly"}},
		{"empty input", nil, Policy{Last: 3}, "", "", nil},
		{"one snapshot, within", hours7[:1], Policy{Within: Duration{Clock: time.Hour}}, "1", "", nil},
		{"all in one day: daily 1 keeps the newest", series(5, at(2026, 3, 1, 1, 0), time.Hour), Policy{Daily: 1}, "5", "4 3 2 1", nil},
		{"input order does not matter", []*repo.Snapshot{hours7[3], hours7[9], hours7[0], hours7[6]}, Policy{Last: 2}, "10 7", "4 1", nil},
		{"daily over 10 days with gaps", []*repo.Snapshot{
			snap(1, at(2026, 1, 1, 9, 0)), snap(2, at(2026, 1, 4, 9, 0)), snap(3, at(2026, 1, 4, 21, 0)), snap(4, at(2026, 1, 10, 9, 0)),
		}, Policy{Daily: 3}, "4 3 1", "2", nil},
		{"within is relative to the newest, not now", series(3, at(2001, 1, 1, 0, 0), day), Policy{Within: Duration{Days: 1, Clock: time.Hour}}, "3 2", "1", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keep, rmv := Apply(c.snaps, c.p)
			if got := ids(keep); got != c.keep {
				t.Errorf("keep %q, want %q", got, c.keep)
			}
			if got := ids(rmv); got != c.rmv {
				t.Errorf("remove %q, want %q", got, c.rmv)
			}
			got := reasons(keep)
			for id, want := range c.wantReasons {
				if got[id] != want {
					t.Errorf("snapshot %d: reasons %q, want %q", id, got[id], want)
				}
			}
			for _, d := range rmv {
				if len(d.Reasons) != 0 {
					t.Errorf("removed snapshot %d has reasons %v", d.Snapshot.ID[0], d.Reasons)
				}
			}
		})
	}
}

// TestApplyTies: snapshots with the same time are ordered by id, so the
// outcome does not depend on the order they were listed in.
func TestApplyTies(t *testing.T) {
	tm := at(2026, 5, 1, 12, 0)
	a, b, c := snap(1, tm), snap(2, tm), snap(3, tm.Add(-time.Hour))
	for _, in := range [][]*repo.Snapshot{{a, b, c}, {b, a, c}, {c, b, a}} {
		keep, rmv := Apply(in, Policy{Last: 1})
		if ids(keep) != "2" || ids(rmv) != "1 3" {
			t.Errorf("last 1 of %s: keep %q remove %q, want keep 2", ids(toDecisions(in)), ids(keep), ids(rmv))
		}
		keep, _ = Apply(in, Policy{Hourly: 2})
		if ids(keep) != "2 3" {
			t.Errorf("hourly 2: keep %q, want \"2 3\"", ids(keep))
		}
		keep, _ = Apply(in, Policy{Within: Duration{Clock: time.Minute}})
		if ids(keep) != "2 1" {
			t.Errorf("within 1m: keep %q, want both snapshots of the newest time", ids(keep))
		}
	}
}

func toDecisions(s []*repo.Snapshot) []Decision {
	var d []Decision
	for _, x := range s {
		d = append(d, Decision{Snapshot: x})
	}
	return d
}

// TestApplyTimeZone: periods follow the zone the snapshot was recorded in,
// not the zone of the machine that runs forget.
func TestApplyTimeZone(t *testing.T) {
	east := time.FixedZone("UTC+10", 10*3600)
	// Jan 2 06:00 and 09:00 in UTC+10 are Jan 1 20:00 and 23:00 UTC, and
	// Jan 1 20:00 in UTC+10 is Jan 1 10:00 UTC: two days where the backups
	// were taken, one day in UTC.
	s1 := snap(1, time.Date(2026, 1, 2, 6, 0, 0, 0, east))
	s2 := snap(2, time.Date(2026, 1, 2, 9, 0, 0, 0, east))
	s0 := snap(3, time.Date(2026, 1, 1, 20, 0, 0, 0, east)) // Jan 1 in UTC+10
	keep, _ := Apply([]*repo.Snapshot{s1, s2, s0}, Policy{Daily: 5})
	if ids(keep) != "2 3" {
		t.Errorf("daily in UTC+10: keep %q, want \"2 3\"", ids(keep))
	}
}

func TestApplyGroups(t *testing.T) {
	tm := at(2026, 1, 1, 0, 0)
	mk := func(id byte, host string, h int, paths ...string) *repo.Snapshot {
		s := snap(id, tm.Add(time.Duration(h)*time.Hour))
		s.Hostname, s.Paths = host, paths
		return s
	}
	snaps := []*repo.Snapshot{
		mk(1, "web1", 0, "/etc", "/home"), mk(2, "web1", 1, "/home", "/etc"), mk(3, "web1", 2, "/etc"),
		mk(4, "db1", 3, "/etc"), mk(5, "db1", 4, "/etc"), mk(6, "web1", 5, "/etc"),
	}
	groups := ApplyGroups(snaps, Policy{Last: 1})
	var got []string
	for _, g := range groups {
		got = append(got, fmt.Sprintf("%s %v keep %s remove %s", g.Hostname, g.Paths, ids(g.Keep), ids(g.Remove)))
	}
	want := []string{
		"db1 [/etc] keep 5 remove 4",
		"web1 [/etc] keep 6 remove 3",
		"web1 [/etc /home] keep 2 remove 1", // paths compared as a set
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPolicyEmptyValidateString(t *testing.T) {
	if !(Policy{}).Empty() {
		t.Error("zero policy is not empty")
	}
	for _, p := range []Policy{{Last: 1}, {Hourly: 1}, {Daily: 1}, {Weekly: 1}, {Monthly: 1}, {Yearly: 1},
		{Within: Duration{Days: 1}}, {Within: Duration{Clock: time.Second}}, {Tags: []string{"x"}}} {
		if p.Empty() {
			t.Errorf("%+v reported empty", p)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{Last: -1}, "--keep-last -1"},
		{Policy{Yearly: -2}, "--keep-yearly -2"},
		{Policy{Within: Duration{Days: -1}}, "--keep-within"},
		{Policy{Tags: []string{""}}, "empty tag"},
	} {
		if err := c.p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.p, err, c.want)
		}
	}
	p := Policy{Last: 3, Daily: 7, Within: Duration{Days: 30}, Tags: []string{"keep"}}
	if s := p.String(); s != "last 3, daily 7, within 30d, tag keep" {
		t.Errorf("String: %q", s)
	}
}

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Duration
		err  string
	}{
		{in: "30d", want: Duration{Days: 30}},
		{in: "2w", want: Duration{Days: 14}},
		{in: "2w3d", want: Duration{Days: 17}},
		{in: "1y2m", want: Duration{Years: 1, Months: 2}},
		{in: "6m", want: Duration{Months: 6}},
		{in: "1y6m15d12h", want: Duration{Years: 1, Months: 6, Days: 15, Clock: 12 * time.Hour}},
		{in: "72h", want: Duration{Clock: 72 * time.Hour}},
		{in: "1h30m", want: Duration{Clock: 90 * time.Minute}},
		{in: "1d1h30m", want: Duration{Days: 1, Clock: 90 * time.Minute}},
		{in: "0.5h", want: Duration{Clock: 30 * time.Minute}},
		{in: "90s", want: Duration{Clock: 90 * time.Second}},
		{in: "0h45m", want: Duration{Clock: 45 * time.Minute}},
		{in: "5ms", want: Duration{Clock: 5 * time.Millisecond}},
		{in: "2m5ms", want: Duration{Months: 2, Clock: 5 * time.Millisecond}},
		{in: "1y1.5h", want: Duration{Years: 1, Clock: 90 * time.Minute}},
		{in: "", err: "empty"},
		{in: "5", err: "want calendar units"},
		{in: "d", err: "want calendar units"},
		{in: "1m1y", err: "neither"},
		{in: "1d2d", err: "neither"},
		{in: "-1h", err: "negative"},
		{in: "1x", err: "want calendar units"},
		{in: "99999999999999999999d", err: "out of range"},
	} {
		got, err := ParseDuration(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		// String round-trips.
		back, err := ParseDuration(got.String())
		if err != nil || back != got {
			t.Errorf("%q: String %q parses as %+v, %v", c.in, got.String(), back, err)
		}
	}
}

func TestDurationBefore(t *testing.T) {
	t0 := time.Date(2026, 3, 31, 12, 0, 0, 0, utc)
	for _, c := range []struct {
		d    Duration
		want time.Time
	}{
		{Duration{Days: 1}, time.Date(2026, 3, 30, 12, 0, 0, 0, utc)},
		{Duration{Months: 1}, time.Date(2026, 3, 3, 12, 0, 0, 0, utc)}, // Feb 31 normalises to Mar 3, as AddDate does
		{Duration{Years: 1, Clock: time.Hour}, time.Date(2025, 3, 31, 11, 0, 0, 0, utc)},
	} {
		if got := c.d.Before(t0); !got.Equal(c.want) {
			t.Errorf("%s before %v: %v, want %v", c.d, t0, got, c.want)
		}
	}
}

// FuzzParseDuration: no panic, and whatever parses prints back to the same
// value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "1y2m", "2w", "1h30m", "1y6m15d12h", "0.5h", "5", "-1h", "1m1y", "99999999999d", "1428572w", "10000000d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d.negative() {
			t.Fatalf("%q parsed as negative %+v", s, d)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, d, d.String(), back, err)
		}
	})
}
