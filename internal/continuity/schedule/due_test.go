package schedule

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestJitter(t *testing.T) {
	const max = time.Hour
	for _, name := range []string{"db-users", "files", ""} {
		first := Jitter(name, max)
		for i := 0; i < 3; i++ {
			if got := Jitter(name, max); got != first {
				t.Errorf("Jitter(%q) = %v, then %v: not deterministic", name, first, got)
			}
		}
	}
	// A known answer pins the derivation: changing it would move every
	// policy's start time on upgrade, which must be a deliberate decision.
	if got, want := Jitter("db-users", max), time.Duration(pinnedDBUsers); got != want {
		t.Errorf("Jitter(%q, 1h) = %d, want %d (derivation changed?)", "db-users", got, want)
	}

	for _, m := range []time.Duration{0, -time.Second} {
		if got := Jitter("x", m); got != 0 {
			t.Errorf("Jitter(x, %v) = %v, want 0", m, got)
		}
	}
	if got := Jitter("x", 1); got != 0 {
		t.Errorf("Jitter(x, 1ns) = %v, want 0 (the only value in [0, 1ns))", got)
	}

	// Range and spread over many names: 10 buckets of 10000 names each
	// hold about 1000; the names are fixed, so this cannot flake.
	var buckets [10]int
	distinct := map[time.Duration]bool{}
	for i := 0; i < 10000; i++ {
		j := Jitter(fmt.Sprintf("policy-%d", i), max)
		if j < 0 || j >= max {
			t.Fatalf("Jitter(policy-%d) = %v, outside [0, %v)", i, j, max)
		}
		buckets[j*10/max]++
		distinct[j] = true
	}
	for b, n := range buckets {
		if n < 850 || n > 1150 {
			t.Errorf("bucket %d holds %d of 10000 jitters, want about 1000: %v", b, n, buckets)
		}
	}
	if len(distinct) < 9990 {
		t.Errorf("%d distinct jitters for 10000 names", len(distinct))
	}
}

// pinnedDBUsers is Jitter("db-users", time.Hour).
const pinnedDBUsers = 2310879865808 // 38m30.879865808s; computed independently with Python hashlib

func ts(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	return mustTime(t, s, time.UTC)
}

func TestDue(t *testing.T) {
	tests := []struct {
		name     string
		sched    string
		lastRun  string
		now      string
		opts     Options
		want     Decision
		wantNext string
	}{
		{name: "before the activation", sched: "0 * * * *",
			lastRun: "2024-01-01T10:00:05Z", now: "2024-01-01T10:59:59Z",
			want: Decision{}, wantNext: "2024-01-01T11:00:00Z"},
		{name: "at the activation", sched: "0 * * * *",
			lastRun: "2024-01-01T10:00:05Z", now: "2024-01-01T11:00:00Z",
			want: Decision{Due: true}, wantNext: "2024-01-01T12:00:00Z"},
		{name: "a little late", sched: "0 * * * *",
			lastRun: "2024-01-01T10:00:05Z", now: "2024-01-01T11:00:30Z",
			want: Decision{Due: true}, wantNext: "2024-01-01T12:00:00Z"},
		{name: "just ran", sched: "0 * * * *",
			lastRun: "2024-01-01T11:00:00Z", now: "2024-01-01T11:00:01Z",
			want: Decision{}, wantNext: "2024-01-01T12:00:00Z"},
		{name: "down for five intervals: one catch-up", sched: "0 * * * *",
			lastRun: "2024-01-01T10:00:05Z", now: "2024-01-01T15:30:00Z",
			want: Decision{Due: true, Missed: true}, wantNext: "2024-01-01T16:00:00Z"},
		{name: "interval down for five intervals", sched: "every 2h",
			lastRun: "2024-01-01T00:00:05Z", now: "2024-01-01T10:30:00Z",
			want: Decision{Due: true, Missed: true}, wantNext: "2024-01-01T12:00:00Z"},
		{name: "run lasted longer than the period", sched: "every 30m",
			lastRun: "2024-01-01T10:00:00Z", now: "2024-01-01T11:05:00Z",
			want: Decision{Due: true, Missed: true}, wantNext: "2024-01-01T11:30:00Z"},
		{name: "jitter delays", sched: "0 * * * *", opts: Options{Jitter: 7 * time.Minute},
			lastRun: "2024-01-01T10:07:05Z", now: "2024-01-01T11:06:59Z",
			want: Decision{}, wantNext: "2024-01-01T11:07:00Z"},
		{name: "jitter reached", sched: "0 * * * *", opts: Options{Jitter: 7 * time.Minute},
			lastRun: "2024-01-01T10:07:05Z", now: "2024-01-01T11:07:00Z",
			want: Decision{Due: true}, wantNext: "2024-01-01T12:07:00Z"},
		{name: "jitter on an interval is its phase", sched: "every 2h", opts: Options{Jitter: 13 * time.Minute},
			lastRun: "2024-01-01T00:13:00Z", now: "2024-01-01T02:12:00Z",
			want: Decision{}, wantNext: "2024-01-01T02:13:00Z"},
		{name: "never run: waits for the first activation", sched: "0 * * * *",
			opts: Options{Enrolled: ts(t, "2024-01-01T10:20:00Z")}, now: "2024-01-01T10:30:00Z",
			want: Decision{}, wantNext: "2024-01-01T11:00:00Z"},
		{name: "never run: first activation", sched: "0 * * * *",
			opts: Options{Enrolled: ts(t, "2024-01-01T10:20:00Z")}, now: "2024-01-01T11:00:00Z",
			want: Decision{Due: true}, wantNext: "2024-01-01T12:00:00Z"},
		{name: "never run: down since enrolment", sched: "0 * * * *",
			opts: Options{Enrolled: ts(t, "2024-01-01T10:20:00Z")}, now: "2024-01-01T13:10:00Z",
			want: Decision{Due: true, Missed: true}, wantNext: "2024-01-01T14:00:00Z"},
		{name: "never run: FirstRunNow", sched: "0 * * * *",
			opts: Options{Enrolled: ts(t, "2024-01-01T10:20:00Z"), FirstRunNow: true}, now: "2024-01-01T10:30:00Z",
			want: Decision{Due: true}, wantNext: "2024-01-01T11:00:00Z"},
		{name: "never run, no reference: now", sched: "0 * * * *",
			now:  "2024-01-01T10:30:00Z",
			want: Decision{Due: true}, wantNext: "2024-01-01T11:00:00Z"},
		{name: "last run in the future: clock set back", sched: "0 * * * *",
			lastRun: "2030-01-01T00:00:00Z", now: "2024-01-01T10:30:00Z",
			want: Decision{Due: true}, wantNext: "2024-01-01T11:00:00Z"},
		{name: "never fires", sched: "0 0 30 2 *",
			lastRun: "2024-01-01T00:00:00Z", now: "2024-06-01T00:00:00Z",
			want: Decision{}, wantNext: ""},
		{name: "yearly, caught up once after a year and a half", sched: "@yearly",
			lastRun: "2023-01-01T00:00:00Z", now: "2024-06-01T00:00:00Z",
			want: Decision{Due: true}, wantNext: "2025-01-01T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.sched)
			want := tc.want
			want.Next = ts(t, tc.wantNext)
			got := Due(s, ts(t, tc.lastRun), ts(t, tc.now), tc.opts)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Due(%q, last %s, now %s) (-want +got):\n%s", tc.sched, tc.lastRun, tc.now, diff)
			}
		})
	}
}

// TestDueSimulation runs a scheduler loop over simulated time: it ticks
// every minute, runs the policy when Due says so (each run takes 3
// minutes), and is down from 10:30 to 15:30. It proves the whole cycle:
// on-time runs, exactly one catch-up after the outage, no burst, and the
// schedule resumed afterwards.
func TestDueSimulation(t *testing.T) {
	for _, sched := range []string{"0 * * * *", "every 1h"} {
		t.Run(sched, func(t *testing.T) {
			s := mustParse(t, sched)
			o := Options{Jitter: Jitter("db-users", 10*time.Minute), Enrolled: ts(t, "2024-01-01T07:45:00Z")}
			downFrom, downTo := ts(t, "2024-01-01T10:30:00Z"), ts(t, "2024-01-01T15:30:00Z")
			var last, busyUntil time.Time
			var runs []string
			for now := ts(t, "2024-01-01T08:00:00Z"); now.Before(ts(t, "2024-01-01T20:00:00Z")); now = now.Add(time.Minute) {
				if !now.Before(downFrom) && now.Before(downTo) {
					continue // process down: no ticks, nothing recorded
				}
				if now.Before(busyUntil) {
					continue // a run is in progress: never overlap
				}
				d := Due(s, last, now, o)
				if !d.Due {
					continue
				}
				if !d.Next.After(now) {
					t.Fatalf("at %s Next = %s, not after now", now, d.Next)
				}
				tag := ""
				if d.Missed {
					tag = " missed"
				}
				runs = append(runs, now.Format("15:04")+tag)
				last, busyUntil = now, now.Add(3*time.Minute)
			}
			j := o.Jitter.Truncate(time.Minute) + time.Minute // ticks are whole minutes
			at := func(h int) string {
				return time.Date(2024, 1, 1, h, 0, 0, 0, time.UTC).Add(j).Format("15:04")
			}
			want := []string{at(8), at(9), at(10), "15:30 missed", at(16), at(17), at(18), at(19)}
			if o.Jitter%time.Minute == 0 {
				t.Fatalf("pick a policy name whose jitter is not whole minutes")
			}
			if diff := cmp.Diff(want, runs); diff != "" {
				t.Errorf("runs (-want +got):\n%s", diff)
			}
		})
	}
}
