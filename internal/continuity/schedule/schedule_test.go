package schedule

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST tests must not depend on the machine's zoneinfo

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical String
	}{
		{"every 2h", "every 2h"},
		{"every 30m", "every 30m"},
		{"every 1d12h", "every 1d12h"},
		{"EVERY 90m", "every 1h30m"},
		{"every 36h", "every 1d12h"},
		{"every 90s", "every 1m30s"},
		{"every 1m", "every 1m"},
		{"every 366d", "every 366d"},
		{"  every\t1D  ", "every 1d"},
		{"@hourly", "0 * * * *"},
		{"@daily", "0 0 * * *"},
		{"@midnight", "0 0 * * *"},
		{"@weekly", "0 0 * * 0"},
		{"@monthly", "0 0 1 * *"},
		{"@yearly", "0 0 1 1 *"},
		{"@ANNUALLY", "0 0 1 1 *"},
		{"* * * * *", "* * * * *"},
		{"*/15 * * * *", "*/15 * * * *"},
		{"0,15,30,45 * * * *", "*/15 * * * *"},
		{"*/1 * * * *", "* * * * *"},
		{"10-50/5 * * * *", "10-50/5 * * * *"},
		{"1,2,3,7,9,10 * * * *", "1-3,7,9,10 * * * *"},
		{"0 9-17 * * MON-FRI", "0 9-17 * * 1-5"},
		{"0 12 * * sun,SAT", "0 12 * * 0,6"},
		{"0 0 * * 7", "0 0 * * 0"},
		{"0 0 * * 5-7", "0 0 * * 0,5,6"},
		{"0 0 * * 0-7", "0 0 * * 0-6"},
		{"0 0 1,15 * *", "0 0 1,15 * *"},
		{"0 0 * jan,Jul *", "0 0 * 1,7 *"},
		{"0 0 1 JAN-DEC/3 *", "0 0 1 */3 *"},
		{"0 0 1 2-12/3 *", "0 0 1 2-11/3 *"},
		{"0,30 * * * *", "0,30 * * * *"},
		{"0 0 1 */3 *", "0 0 1 */3 *"},
		{"0 0 */2 * *", "0 0 */2 * *"},
		{"0 0 */2,4 * *", "0 0 */2,4 * *"},
		{"0 0 */10,5 * 1", "0 0 */10,5 * 1"},
		{"0 0 *,5 * *", "0 0 * * *"},
		{"0 0 1-31 * 5", "0 0 1-31 * 5"},     // restricted although complete: OR rule
		{"0 0 1-31/2 * *", "0 0 1-31/2 * *"}, // restricted, unlike */2
		{"  30   2 * * *  ", "30 2 * * *"},
		{"0 0 30 2 *", "0 0 30 2 *"}, // well-formed, never fires
		{"00 02 * * *", "0 2 * * *"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := s.String(); got != tc.want {
				t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
			again, err := Parse(s.String())
			if err != nil {
				t.Fatalf("Parse(String()=%q): %v", s.String(), err)
			}
			if diff := cmp.Diff(s, again, cmp.AllowUnexported(cron{}, interval{})); diff != "" {
				t.Errorf("canonical form %q parses differently (-first +again):\n%s", s.String(), diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `schedule is empty: write an interval ("every 2h"), a shortcut ("@daily") or a 5-field cron expression ("30 2 * * *")`},
		{"   ", `schedule is empty: write an interval ("every 2h"), a shortcut ("@daily") or a 5-field cron expression ("30 2 * * *")`},
		{strings.Repeat("1", 1025), "schedule is 1025 bytes long, more than the limit of 1024: write an interval, a shortcut or a 5-field cron expression"},
		{"0 25 * * *", `schedule "0 25 * * *": field 2 (hour): 25 is outside 0-23`},
		{"60 * * * *", `schedule "60 * * * *": field 1 (minute): 60 is outside 0-59`},
		{"* * 0 * *", `schedule "* * 0 * *": field 3 (day-of-month): 0 is outside 1-31`},
		{"* * 32 * *", `schedule "* * 32 * *": field 3 (day-of-month): 32 is outside 1-31`},
		{"* * * 13 *", `schedule "* * * 13 *": field 4 (month): 13 is outside 1-12`},
		{"* * * 0 *", `schedule "* * * 0 *": field 4 (month): 0 is outside 1-12`},
		{"* * * * 8", `schedule "* * * * 8": field 5 (day-of-week): 8 is outside 0-7`},
		{"* * * * * *", `schedule "* * * * * *": cron expression has 6 fields, want 5 (minute hour day-of-month month day-of-week)`},
		{"* * * *", `schedule "* * * *": cron expression has 4 fields, want 5 (minute hour day-of-month month day-of-week)`},
		{"5-1 * * * *", `schedule "5-1 * * * *": field 1 (minute): range "5-1" runs backwards: write the smaller value first`},
		{"* * * * SAT-SUN", `schedule "* * * * SAT-SUN": field 5 (day-of-week): range "SAT-SUN" runs backwards: write the smaller value first`},
		{"*/0 * * * *", `schedule "*/0 * * * *": field 1 (minute): step 0 in "*/0" is outside 1-60`},
		{"*/61 * * * *", `schedule "*/61 * * * *": field 1 (minute): step 61 in "*/61" is outside 1-60`},
		{"* * * * */8", `schedule "* * * * */8": field 5 (day-of-week): step 8 in "*/8" is outside 1-7`},
		{"*/x * * * *", `schedule "*/x * * * *": field 1 (minute): step "x" in "*/x" is not a number between 1 and 60`},
		{"*/ * * * *", `schedule "*/ * * * *": field 1 (minute): step "" in "*/" is not a number between 1 and 60`},
		{"*/5/2 * * * *", `schedule "*/5/2 * * * *": field 1 (minute): step "5/2" in "*/5/2" is not a number between 1 and 60`},
		{"*/99999 * * * *", `schedule "*/99999 * * * *": field 1 (minute): step "99999" in "*/99999" is not a number between 1 and 60`},
		{"5/15 * * * *", `schedule "5/15 * * * *": field 1 (minute): step in "5/15" needs a range or *, like 5-59/15 or */15`},
		{"1,,2 * * * *", `schedule "1,,2 * * * *": field 1 (minute): empty element in list "1,,2"`},
		{"1, * * * *", `schedule "1, * * * *": field 1 (minute): empty element in list "1,"`},
		{"* * * foo *", `schedule "* * * foo *": field 4 (month): "foo" is not a number (1-12) or a name (JAN-DEC)`},
		{"* * * * funday", `schedule "* * * * funday": field 5 (day-of-week): "funday" is not a number (0-7) or a name (SUN-SAT)`},
		{"* * * MON *", `schedule "* * * MON *": field 4 (month): "MON" is not a number (1-12) or a name (JAN-DEC)`},
		{"x * * * *", `schedule "x * * * *": field 1 (minute): "x" is not a number (0-59)`},
		{"*-5 * * * *", `schedule "*-5 * * * *": field 1 (minute): "*" is not a number (0-59)`},
		{"1- * * * *", `schedule "1- * * * *": field 1 (minute): missing number in "1-"`},
		{"-1 * * * *", `schedule "-1 * * * *": field 1 (minute): missing number in "-1"`},
		{"99999999999 * * * *", `schedule "99999999999 * * * *": field 1 (minute): 99999999999 is outside 0-59`},
		{"@reboot", `schedule "@reboot": unknown shortcut: use @hourly, @daily (@midnight), @weekly, @monthly, @yearly or @annually`},
		{"@daily extra", `schedule "@daily extra": unknown shortcut: use @hourly, @daily (@midnight), @weekly, @monthly, @yearly or @annually`},
		{"every", `schedule "every": "every" needs exactly one duration, like "every 2h" or "every 1d12h"`},
		{"every 2h 3m", `schedule "every 2h 3m": "every" needs exactly one duration, like "every 2h" or "every 1d12h"`},
		{"every 0m", `schedule "every 0m": duration "0m" is shorter than the minimum of 1m`},
		{"every 59s", `schedule "every 59s": duration "59s" is shorter than the minimum of 1m`},
		{"every 367d", `schedule "every 367d": duration "367d" is longer than the maximum of 366d`},
		{"every 366d1s", `schedule "every 366d1s": duration "366d1s" is longer than the maximum of 366d`},
		{"every 9999999999d", `schedule "every 9999999999d": duration "9999999999d" is longer than the maximum of 366d`},
		{"every 2x", `schedule "every 2x": duration "2x": unknown unit "x" (use d, h, m or s)`},
		{"every 2", `schedule "every 2": duration "2": 2 has no unit (use d, h, m or s)`},
		{"every h", `schedule "every h": duration "h": expected a number at "h"`},
		{"every -1h", `schedule "every -1h": duration "-1h": expected a number at "-1h"`},
		{"every 1h1d", `schedule "every 1h1d": duration "1h1d": unit "d" repeated or out of order (write units largest first, like 1d12h)`},
		{"every 1h1h", `schedule "every 1h1h": duration "1h1h": unit "h" repeated or out of order (write units largest first, like 1d12h)`},
		{"0 0 * * \x00", `schedule "0 0 * * \x00": field 5 (day-of-week): "\x00" is not a number (0-7) or a name (SUN-SAT)`},
	}
	for _, tc := range tests {
		name := tc.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			s, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error %q", tc.in, s, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse(%q) error\n got: %s\nwant: %s", tc.in, got, tc.want)
			}
		})
	}
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func mustParse(t testing.TB, s string) Schedule {
	t.Helper()
	sch, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return sch
}

func mustTime(t testing.TB, s string, loc *time.Location) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time.Parse(%q): %v", s, err)
	}
	return tm.In(loc)
}

// TestNext checks hand-computed activations. Times are written with the
// offset of the schedule's zone, and results are compared as RFC 3339
// strings, so a result in the wrong zone or offset fails too. An empty want
// means the zero time (never).
func TestNext(t *testing.T) {
	tests := []struct {
		name, sched, zone, after, want string
	}{
		// strictly after, steps, rollovers
		{"on the hour is not after", "0 * * * *", "UTC", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"},
		{"a nanosecond past", "0 * * * *", "UTC", "2024-01-01T10:00:00.000000001Z", "2024-01-01T11:00:00Z"},
		{"just before", "0 * * * *", "UTC", "2024-01-01T09:59:59.9Z", "2024-01-01T10:00:00Z"},
		{"step */15", "*/15 * * * *", "UTC", "2024-01-01T10:07:30Z", "2024-01-01T10:15:00Z"},
		{"step 10-50/5 wraps hour", "10-50/5 * * * *", "UTC", "2024-01-01T00:50:00Z", "2024-01-01T01:10:00Z"},
		{"hour step wraps day", "5 */6 * * *", "UTC", "2024-01-01T18:06:00Z", "2024-01-02T00:05:00Z"},
		{"year rollover", "0 0 1 1 *", "UTC", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"last minute of the year", "59 23 31 12 *", "UTC", "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"},
		{"monthly from month end", "@monthly", "UTC", "2024-01-31T12:00:00Z", "2024-02-01T00:00:00Z"},
		{"31st skips short months", "0 0 31 * *", "UTC", "2024-01-31T00:00:00Z", "2024-03-31T00:00:00Z"},
		{"31st from April", "0 0 31 * *", "UTC", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z"},
		{"Feb 29 next leap year", "0 0 29 2 *", "UTC", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"Feb 29 same year", "0 0 29 2 *", "UTC", "2024-02-28T23:59:59Z", "2024-02-29T00:00:00Z"},
		{"Feb 29 skips 2100", "0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
		{"Feb 29 in 2000", "0 0 29 2 *", "UTC", "1999-01-01T00:00:00Z", "2000-02-29T00:00:00Z"},
		{"Feb 29 on a Sunday (AND)", "0 0 29 2 */7", "UTC", "2024-01-01T00:00:00Z", "2032-02-29T00:00:00Z"},
		{"Feb 30 never", "0 0 30 2 *", "UTC", "2024-01-01T00:00:00Z", ""},
		{"31 Apr/Jun never", "0 0 31 4,6 *", "UTC", "2024-01-01T00:00:00Z", ""},
		{"Feb 30 with */7 weekday never", "0 0 30 2 */7", "UTC", "2024-01-01T00:00:00Z", ""},
		{"Feb 30 OR Monday fires", "0 0 30 2 1", "UTC", "2024-01-01T00:00:00Z", "2024-02-05T00:00:00Z"},
		{"Sunday as 7", "0 0 * * 7", "UTC", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},
		{"weekdays from Friday", "0 9 * * MON-FRI", "UTC", "2024-01-05T09:00:00Z", "2024-01-08T09:00:00Z"},
		// day-of-month OR day-of-week (Oct 2024: Fridays 4, 11, 18, 25; the 13th is a Sunday)
		{"OR: Friday first", "0 0 13 * 5", "UTC", "2024-10-05T00:00:00Z", "2024-10-11T00:00:00Z"},
		{"OR: then the 13th", "0 0 13 * 5", "UTC", "2024-10-11T00:00:00Z", "2024-10-13T00:00:00Z"},
		{"OR: then Friday", "0 0 13 * 5", "UTC", "2024-10-13T00:00:00Z", "2024-10-18T00:00:00Z"},
		{"OR: restricted 1-31 matches every day", "0 0 1-31 * 5", "UTC", "2024-10-01T00:00:00Z", "2024-10-02T00:00:00Z"},
		{"AND: */2 is unrestricted", "0 0 */2 * 5", "UTC", "2024-10-01T00:00:00Z", "2024-10-11T00:00:00Z"},
		{"AND: * day-of-month", "0 0 * * 5", "UTC", "2024-10-05T00:00:00Z", "2024-10-11T00:00:00Z"},
		{"AND: * day-of-week", "0 0 13 * *", "UTC", "2024-10-05T00:00:00Z", "2024-10-13T00:00:00Z"},
		{"Friday 13th needs both", "0 0 13 * 5", "UTC", "2024-09-12T00:00:00Z", "2024-09-13T00:00:00Z"},
		// location of after
		{"Tokyo wall clock", "30 2 * * *", "Asia/Tokyo", "2024-01-01T00:00:00+09:00", "2024-01-01T02:30:00+09:00"},
		{"before 1970", "0 12 * * *", "UTC", "1969-07-20T20:17:00Z", "1969-07-21T12:00:00Z"},
		{"zero time", "0 0 1 1 *", "UTC", "0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z"},
		// New York 2024: 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT -> 01:00 EST
		{"NY gap: 02:30 runs at 03:00 EDT", "30 2 * * *", "America/New_York", "2024-03-10T00:00:00-05:00", "2024-03-10T03:00:00-04:00"},
		{"NY gap: next day normal", "30 2 * * *", "America/New_York", "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"},
		{"NY gap: several skipped minutes run once", "*/15 2 * * *", "America/New_York", "2024-03-10T01:59:00-05:00", "2024-03-10T03:00:00-04:00"},
		{"NY gap: not again after the jump", "*/15 2 * * *", "America/New_York", "2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"},
		{"NY gap: 02:00 itself", "0 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00", "2024-03-10T03:00:00-04:00"},
		{"NY gap: 03:00 unaffected", "0 3 * * *", "America/New_York", "2024-03-10T00:00:00-05:00", "2024-03-10T03:00:00-04:00"},
		{"NY gap: hourly", "0 * * * *", "America/New_York", "2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00"},
		{"NY overlap: first 01:30", "30 1 * * *", "America/New_York", "2024-11-03T00:00:00-04:00", "2024-11-03T01:30:00-04:00"},
		{"NY overlap: not the second 01:30", "30 1 * * *", "America/New_York", "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"},
		{"NY overlap: from inside the second pass", "30 1 * * *", "America/New_York", "2024-11-03T01:10:00-05:00", "2024-11-04T01:30:00-05:00"},
		{"NY overlap: hourly 01:00 EDT", "0 * * * *", "America/New_York", "2024-11-03T00:30:00-04:00", "2024-11-03T01:00:00-04:00"},
		{"NY overlap: hourly skips 01:00 EST", "0 * * * *", "America/New_York", "2024-11-03T01:00:00-04:00", "2024-11-03T02:00:00-05:00"},
		{"NY overlap: 02:00 exists once", "0 2 * * *", "America/New_York", "2024-11-03T00:00:00-04:00", "2024-11-03T02:00:00-05:00"},
		// Berlin 2024: 2024-03-31 02:00 CET -> 03:00 CEST; 2024-10-27 03:00 CEST -> 02:00 CET
		{"Berlin gap: 02:30 runs at 03:00 CEST", "30 2 * * *", "Europe/Berlin", "2024-03-31T00:00:00+01:00", "2024-03-31T03:00:00+02:00"},
		{"Berlin gap: next day normal", "30 2 * * *", "Europe/Berlin", "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"},
		{"Berlin overlap: first 02:30", "30 2 * * *", "Europe/Berlin", "2024-10-27T00:00:00+02:00", "2024-10-27T02:30:00+02:00"},
		{"Berlin overlap: once", "30 2 * * *", "Europe/Berlin", "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"},
		{"Berlin overlap: */30 skips the repeat", "*/30 * * * *", "Europe/Berlin", "2024-10-27T02:45:00+02:00", "2024-10-27T03:00:00+01:00"},
		// intervals: anchored at the Unix epoch, absolute, zone of after
		{"every 2h", "every 2h", "UTC", "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"},
		{"every 2h on an activation", "every 2h", "UTC", "2024-01-01T02:00:00Z", "2024-01-01T04:00:00Z"},
		{"every 2h in New York", "every 2h", "America/New_York", "2024-01-01T00:30:00-05:00", "2024-01-01T01:00:00-05:00"},
		{"every 1d is UTC midnight", "every 1d", "Europe/Berlin", "2024-01-01T12:00:00+01:00", "2024-01-02T01:00:00+01:00"},
		{"every 1d12h", "every 1d12h", "UTC", "1970-01-01T00:00:00Z", "1970-01-02T12:00:00Z"},
		{"every 7m before the epoch", "every 7m", "UTC", "1969-12-31T23:59:00Z", "1970-01-01T00:00:00Z"},
		{"every 7m further before", "every 7m", "UTC", "1969-12-31T23:50:00Z", "1969-12-31T23:53:00Z"},
		{"every 1h ignores fall-back", "every 1h", "America/New_York", "2024-11-03T01:30:00-04:00", "2024-11-03T01:00:00-05:00"},
		{"every 1h ignores spring-forward", "every 1h", "America/New_York", "2024-03-10T01:30:00-05:00", "2024-03-10T03:00:00-04:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := mustLoad(t, tc.zone)
			s := mustParse(t, tc.sched)
			after := mustTime(t, tc.after, loc)
			got := s.Next(after)
			if tc.want == "" {
				if !got.IsZero() {
					t.Errorf("%q.Next(%s) = %s, want the zero time", tc.sched, tc.after, got.Format(time.RFC3339))
				}
				return
			}
			if got.Location() != loc {
				t.Errorf("%q.Next(%s) is in %v, want %v", tc.sched, tc.after, got.Location(), loc)
			}
			if g := got.Format(time.RFC3339Nano); g != tc.want {
				t.Errorf("%q.Next(%s) = %s, want %s", tc.sched, tc.after, g, tc.want)
			}
		})
	}
}

// matches reports whether the civil minute w satisfies c: the definition,
// evaluated field by field, independent of Next's skipping search.
func (c *cron) matches(w time.Time) bool {
	return c.minute&(1<<uint(w.Minute())) != 0 &&
		c.hour&(1<<uint(w.Hour())) != 0 &&
		c.month&(1<<uint(w.Month())) != 0 &&
		c.dayMatches(w)
}

// TestNextAgainstBruteForce walks every minute of two windows (covering
// Feb 29 2024, both 2024 DST transitions of New York and Berlin, and a year
// end) as absolute instants, and derives the activations from the package's
// definition alone: a civil minute fires at the first instant the wall
// clock reaches it (reads it or a later minute). Next, chained from the
// window's start, must yield exactly that sequence. This covers DST gaps
// and overlaps without relying on time.Date's choice for ambiguous times.
func TestNextAgainstBruteForce(t *testing.T) {
	exprs := []string{
		"* * * * *", "*/7 * * * *", "30 2 * * *", "*/20 1-3 * * *", "0 0 13 * 5",
		"0 0 */2 * 5", "15 */5 1,15,31 * *", "0 0 29 2 *", "45 23 * 1,3,10,11,12 SAT,SUN",
	}
	windows := [][2]time.Time{
		{time.Date(2024, 2, 20, 0, 0, 0, 0, time.UTC), time.Date(2024, 4, 5, 0, 0, 0, 0, time.UTC)},
		{time.Date(2024, 10, 20, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC)},
	}
	for _, zone := range []string{"UTC", "America/New_York", "Europe/Berlin"} {
		loc := mustLoad(t, zone)
		for _, win := range windows {
			start, end := win[0].In(loc), win[1].In(loc)
			// For each minute instant, the civil minutes the wall clock
			// newly reaches there (usually one; 61 after a spring-forward
			// gap, none during the repeat of a fall-back).
			type step struct {
				at      time.Time
				reached []time.Time
			}
			var steps []step
			reached := civil(start)
			for at := start.Add(time.Minute); at.Before(end); at = at.Add(time.Minute) {
				st := step{at: at}
				for m, w := reached.Add(time.Minute), civil(at); !m.After(w); m = m.Add(time.Minute) {
					st.reached = append(st.reached, m)
					reached = m
				}
				steps = append(steps, st)
			}
			for _, e := range exprs {
				sch := mustParse(t, e)
				c := sch.(*cron)
				t.Run(fmt.Sprintf("%s/%s/%s", zone, start.Format("2006-01-02"), e), func(t *testing.T) {
					var want []time.Time
					for _, st := range steps {
						for _, m := range st.reached {
							if c.matches(m) {
								want = append(want, st.at)
								break
							}
						}
					}
					var got []time.Time
					for at := sch.Next(start); !at.IsZero() && at.Before(end) && len(got) <= len(want); at = sch.Next(at) {
						got = append(got, at)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("activations differ from brute force (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"every 2h", "every 1d12h", "every 1m", "every 366d", "@daily", "@yearly",
		"* * * * *", "*/15 * * * *", "10-50/5 1-5 * * MON-FRI", "0 0 29 2 *", "0 0 30 2 *",
		"0 0 13 * 5", "0 0 */2,5 * sun", "0 0 1-31/2 jan-dec/2 0-7", "5/15 * * * *",
		"0 25 * * *", "", "@", "every", "1,,2 * * * *", "*/0 * * * *", "0 0 31 4,6,9,11 */7",
	} {
		f.Add(s)
	}
	locs := []*time.Location{time.UTC, mustLoad(f, "America/New_York"), mustLoad(f, "Europe/Berlin")}
	afters := []time.Time{
		time.Date(2024, 3, 10, 1, 59, 30, 0, time.UTC),
		time.Date(2024, 10, 27, 0, 59, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		{},
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("Parse(%q): empty error", in)
			}
			return
		}
		again, err := Parse(s.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", in, s.String(), err)
		}
		if diff := cmp.Diff(s, again, cmp.AllowUnexported(cron{}, interval{})); diff != "" {
			t.Fatalf("canonical form %q of %q parses differently:\n%s", s.String(), in, diff)
		}
		if again.String() != s.String() {
			t.Fatalf("String not stable: %q then %q", s.String(), again.String())
		}
		c, isCron := s.(*cron)
		for _, loc := range locs {
			for _, a := range afters {
				a = a.In(loc)
				n := s.Next(a)
				if n.IsZero() {
					if !isCron || !c.never {
						t.Fatalf("%q.Next(%v) = zero for a schedule that can fire", in, a)
					}
					continue
				}
				if !n.After(a) {
					t.Fatalf("%q.Next(%v) = %v, not after", in, a, n)
				}
				if isCron && loc == time.UTC && !c.matches(civil(n)) {
					t.Fatalf("%q.Next(%v) = %v does not match the expression", in, a, n)
				}
			}
		}
	})
}

// BenchmarkNext measures Next for a common schedule, a DST zone, and the
// long searches: Feb 29 on a Sunday (AND rule, years apart), and the full
// 401-year bound, reached only by a never-firing expression that skipped
// the static check (forced here; Parse always sets never).
func BenchmarkNext(b *testing.B) {
	ny := mustLoad(b, "America/New_York")
	after := time.Date(2024, 3, 1, 0, 0, 0, 0, ny)
	for _, e := range []string{"30 2 * * *", "*/5 * * * *", "0 0 29 2 */7", "0 0 30 2 *", "every 2h"} {
		s := mustParse(b, e)
		b.Run(e, func(b *testing.B) {
			for b.Loop() {
				s.Next(after)
			}
		})
	}
	forced := *mustParse(b, "0 0 30 2 *").(*cron)
	forced.never = false
	b.Run("401-year bound", func(b *testing.B) {
		for b.Loop() {
			if !forced.Next(after).IsZero() {
				b.Fatal("Feb 30 fired")
			}
		}
	})
}
