// Package schedule parses and evaluates the schedules of continuity policies
// (backups, copies, restore tests, scrubs) and decides when a policy is due.
//
// # Syntax
//
// A schedule is one of:
//
//	every 2h, every 30m, every 1d12h   a fixed interval (units d=24h, h, m, s,
//	                                   largest first, each at most once;
//	                                   1m <= interval <= 366d)
//	@hourly @daily @weekly @monthly    shortcuts for "0 * * * *", "0 0 * * *",
//	@yearly @annually                  "0 0 * * 0", "0 0 1 * *", "0 0 1 1 *",
//	                                   and @midnight for @daily
//	M H DOM MON DOW                    a 5-field cron expression
//
// Cron fields accept "*", numbers, lists "1,15", ranges "1-5" and steps
// "*/15" or "10-50/5" (a step needs "*" or a range: "5/15" is refused as
// ambiguous). MON accepts JAN-DEC and DOW SUN-SAT, case-insensitive, also
// inside ranges; DOW is 0-7 with 0 and 7 both Sunday.
//
// # Day-of-month and day-of-week
//
// As in Vixie cron and cronie (crontab(5)): when both DOM and DOW are
// restricted, a day matches if EITHER matches; otherwise both must. A field
// is "unrestricted" when its text starts with "*", exactly as crontab(5)
// defines it, so "*/2" counts as unrestricted while "1-31" counts as
// restricted. "0 0 13 * 5" fires on every 13th and on every Friday;
// "0 0 */2 * 5" fires on Fridays that fall on odd days.
//
// # Cron, time zones and DST
//
// A cron schedule is evaluated on the wall clock of the location of the time
// passed to Next. Each wall-clock minute W that matches fires once, at the
// first instant at which the wall clock reads W or later:
//   - a minute skipped by a spring-forward transition (02:30 on the night
//     New York jumps from 02:00 to 03:00) fires at the transition instant
//     (03:00 new time), once even if several skipped minutes match; cronie
//     and Vixie cron likewise run jobs of a skipped hour right after the
//     jump, and for a backup a late run beats a lost one;
//   - a minute repeated by a fall-back transition fires only on its first
//     occurrence (01:30 daylight time, not again at 01:30 standard time),
//     as cronie does, so a daily job never runs twice in one night.
//
// # Intervals
//
// An interval is an absolute duration, independent of time zones and DST.
// Activations are anchored at the Unix epoch: "every 2h" fires at every
// instant that is a whole multiple of 2h after 1970-01-01 00:00:00 UTC
// (00:00, 02:00, ... UTC), so the phase is fixed and does not depend on when
// the process started. The per-policy offset is the jitter (see Jitter and
// Due), which shifts all activations of a policy by the same amount. Note
// that "every 1d" therefore fires at 00:00 UTC (plus jitter), not at local
// midnight: use a cron expression for wall-clock times.
//
// # Never-firing schedules
//
// A cron expression that no date can satisfy ("0 0 30 2 *", Feb 30) parses,
// because it is well-formed, but its Next returns the zero time; callers
// that validate configuration should test Next(now).IsZero() and reject it.
// Every Next call does bounded work: the search covers at most 401 years,
// longer than the 400-year cycle after which the Gregorian calendar and the
// weekdays repeat, so anything that can fire is found within it.
package schedule

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule.
type Schedule interface {
	// Next returns the first activation strictly after after, in after's
	// location, or the zero time if there is none (a cron expression no
	// date satisfies, or a time beyond the range time.Time can represent).
	Next(after time.Time) time.Time
	// String returns the canonical form: Parse(s.String()) yields an
	// equivalent schedule whose String is identical. Intervals print as
	// "every 1d12h", cron expressions (and shortcuts) as 5 numeric fields.
	String() string
}

// MaxLength is the longest schedule text Parse accepts; it bounds the work
// and the size of error messages for hostile input.
const MaxLength = 1024

// Interval bounds: shorter intervals would be busy loops rather than
// backup schedules, and longer ones exceed the retention vocabulary
// (keep-yearly).
const (
	// MinInterval is the shortest interval "every" accepts.
	MinInterval = time.Minute
	// MaxInterval is the longest interval "every" accepts (366 days).
	MaxInterval = 366 * 24 * time.Hour
)

// Parse parses a schedule (see the package comment for the syntax). Errors
// say what is wrong and where, for example
// `schedule "0 25 * * *": field 2 (hour): 25 is outside 0-23`.
func Parse(s string) (Schedule, error) {
	if len(s) > MaxLength {
		return nil, fmt.Errorf("schedule is %d bytes long, more than the limit of %d: write an interval, a shortcut or a 5-field cron expression", len(s), MaxLength)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, errors.New(`schedule is empty: write an interval ("every 2h"), a shortcut ("@daily") or a 5-field cron expression ("30 2 * * *")`)
	}
	var (
		sch Schedule
		err error
	)
	f := strings.Fields(t)
	switch {
	case t[0] == '@':
		sch, err = parseShortcut(t)
	case strings.EqualFold(f[0], "every"):
		sch, err = parseInterval(f[1:])
	default:
		sch, err = parseCron(f)
	}
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", t, err)
	}
	return sch, nil
}

var shortcuts = map[string]string{
	"@hourly":   "0 * * * *",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@weekly":   "0 0 * * 0",
	"@monthly":  "0 0 1 * *",
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
}

func parseShortcut(t string) (Schedule, error) {
	expr, ok := shortcuts[strings.ToLower(t)]
	if !ok {
		return nil, errors.New("unknown shortcut: use @hourly, @daily (@midnight), @weekly, @monthly, @yearly or @annually")
	}
	return parseCron(strings.Fields(expr))
}

// ---- intervals ----

// interval fires at every whole multiple of period seconds since the Unix
// epoch.
type interval struct {
	period int64 // seconds, MinInterval..MaxInterval
}

var units = [...]struct {
	c    byte
	secs int64
}{{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}}

func parseInterval(args []string) (Schedule, error) {
	if len(args) != 1 {
		return nil, errors.New(`"every" needs exactly one duration, like "every 2h" or "every 1d12h"`)
	}
	text := args[0]
	rest := strings.ToLower(text)
	var total int64
	last := -1
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return nil, fmt.Errorf("duration %q: expected a number at %q", text, rest)
		}
		if i == len(rest) {
			return nil, fmt.Errorf("duration %q: %s has no unit (use d, h, m or s)", text, rest)
		}
		u := -1
		for k, un := range units {
			if rest[i] == un.c {
				u = k
			}
		}
		if u < 0 {
			return nil, fmt.Errorf("duration %q: unknown unit %q (use d, h, m or s)", text, rest[i:i+1])
		}
		if u <= last {
			return nil, fmt.Errorf("duration %q: unit %q repeated or out of order (write units largest first, like 1d12h)", text, rest[i:i+1])
		}
		last = u
		// Nine digits times a day cannot overflow; more digits are
		// over the maximum anyway.
		if i > 9 {
			return nil, fmt.Errorf("duration %q is longer than the maximum of 366d", text)
		}
		n, _ := strconv.ParseInt(rest[:i], 10, 64)
		total += n * units[u].secs
		rest = rest[i+1:]
	}
	if total < int64(MinInterval/time.Second) {
		return nil, fmt.Errorf("duration %q is shorter than the minimum of 1m", text)
	}
	if total > int64(MaxInterval/time.Second) {
		return nil, fmt.Errorf("duration %q is longer than the maximum of 366d", text)
	}
	return &interval{period: total}, nil
}

// Next returns the first multiple of the period since the Unix epoch that is
// strictly after after.
func (iv *interval) Next(after time.Time) time.Time {
	sec := after.Unix()
	if sec > 1<<62 { // far beyond any real date; keeps the arithmetic exact
		return time.Time{}
	}
	k := sec / iv.period
	if sec%iv.period < 0 { // floor division for times before 1970
		k--
	}
	next := (k + 1) * iv.period
	return time.Unix(next, 0).In(after.Location())
}

// String returns "every " and the period in d, h, m, s units.
func (iv *interval) String() string {
	var b strings.Builder
	b.WriteString("every ")
	rest := iv.period
	for _, u := range units {
		if n := rest / u.secs; n > 0 {
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteByte(u.c)
			rest -= n * u.secs
		}
	}
	return b.String()
}

// ---- cron ----

// cron holds one bit per allowed value of each field.
type cron struct {
	minute, hour, dom, month, dow uint64 // bits 0-59, 0-23, 1-31, 1-12, 0-6
	domStar, dowStar              bool   // field text starts with "*"
	never                         bool   // no date satisfies dom+month
}

type fieldSpec struct {
	name     string
	min, max int // accepted values (day-of-week accepts 7 for Sunday)
	starMax  int // last value "*" covers
	names    []string
}

var fieldSpecs = [5]fieldSpec{
	{name: "minute", min: 0, max: 59, starMax: 59},
	{name: "hour", min: 0, max: 23, starMax: 23},
	{name: "day-of-month", min: 1, max: 31, starMax: 31},
	{name: "month", min: 1, max: 12, starMax: 12,
		names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day-of-week", min: 0, max: 7, starMax: 6,
		names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

func parseCron(f []string) (Schedule, error) {
	if len(f) != 5 {
		return nil, fmt.Errorf("cron expression has %d fields, want 5 (minute hour day-of-month month day-of-week)", len(f))
	}
	var set [5]uint64
	for i, text := range f {
		b, err := parseField(&fieldSpecs[i], text)
		if err != nil {
			return nil, fmt.Errorf("field %d (%s): %w", i+1, fieldSpecs[i].name, err)
		}
		set[i] = b
	}
	if set[4]&(1<<7) != 0 { // 7 is Sunday too
		set[4] = set[4]&^(1<<7) | 1
	}
	c := &cron{
		minute: set[0], hour: set[1], dom: set[2], month: set[3], dow: set[4],
		domStar: f[2][0] == '*', dowStar: f[4][0] == '*',
	}
	c.never = !c.canFire()
	return c, nil
}

func parseField(fs *fieldSpec, text string) (uint64, error) {
	var set uint64
	for _, el := range strings.Split(text, ",") {
		if el == "" {
			return 0, fmt.Errorf("empty element in list %q", text)
		}
		base, stepText, hasStep := strings.Cut(el, "/")
		var lo, hi int
		if base == "*" {
			lo, hi = fs.min, fs.starMax
		} else {
			a, b, isRange := strings.Cut(base, "-")
			var err error
			if lo, err = fs.value(a, el); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = fs.value(b, el); err != nil {
					return 0, err
				}
				if lo > hi {
					return 0, fmt.Errorf("range %q runs backwards: write the smaller value first", base)
				}
			} else if hasStep {
				return 0, fmt.Errorf("step in %q needs a range or *, like %s-%d/%s or */%s", el, a, fs.max, stepText, stepText)
			}
		}
		step := 1
		if hasStep {
			count := fs.starMax - fs.min + 1
			if stepText == "" || len(stepText) > 3 || strings.Trim(stepText, "0123456789") != "" {
				return 0, fmt.Errorf("step %q in %q is not a number between 1 and %d", stepText, el, count)
			}
			step, _ = strconv.Atoi(stepText)
			if step < 1 || step > count {
				return 0, fmt.Errorf("step %d in %q is outside 1-%d", step, el, count)
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

// value parses one number or name of a field; el is the list element, for
// error messages.
func (fs *fieldSpec) value(s, el string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing number in %q", el)
	}
	if strings.Trim(s, "0123456789") == "" {
		if len(s) > 4 {
			return 0, fmt.Errorf("%s is outside %d-%d", s, fs.min, fs.max)
		}
		n, _ := strconv.Atoi(s)
		if n < fs.min || n > fs.max {
			return 0, fmt.Errorf("%d is outside %d-%d", n, fs.min, fs.max)
		}
		return n, nil
	}
	for i, name := range fs.names {
		if strings.EqualFold(s, name) {
			if fs.min == 1 {
				return i + 1, nil
			}
			return i, nil
		}
	}
	if fs.names != nil {
		return 0, fmt.Errorf("%q is not a number (%d-%d) or a name (%s-%s)", s, fs.min, fs.max,
			strings.ToUpper(fs.names[0]), strings.ToUpper(fs.names[len(fs.names)-1]))
	}
	return 0, fmt.Errorf("%q is not a number (%d-%d)", s, fs.min, fs.max)
}

// daysIn is the longest length of each month (February counts its leap day).
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// canFire reports whether some date satisfies the expression. With the OR
// rule any matching weekday will do; otherwise some allowed day of month
// must exist in some allowed month (weekdays then cycle through every date
// within the 400-year Gregorian cycle).
func (c *cron) canFire() bool {
	if !c.domStar && !c.dowStar {
		return true
	}
	for m := 1; m <= 12; m++ {
		if c.month&(1<<uint(m)) != 0 && c.dom&(1<<uint(daysIn[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

func (c *cron) dayMatches(w time.Time) bool {
	dom := c.dom&(1<<uint(w.Day())) != 0
	dow := c.dow&(1<<uint(w.Weekday())) != 0
	if c.domStar || c.dowStar {
		return dom && dow
	}
	return dom || dow
}

// nextBit returns the lowest set bit of set at or above from.
func nextBit(set uint64, from int) (int, bool) {
	x := set &^ (1<<uint(from) - 1)
	if x == 0 {
		return 0, false
	}
	return bits.TrailingZeros64(x), true
}

// Next walks the wall clock of after's location, minute candidates in
// increasing order (skipping whole months, days and hours that cannot
// match), and returns the activation instant of the first matching minute
// that lies strictly after after. The walk is done on civil times
// represented in UTC, so it never meets a DST discontinuity; activation
// maps a civil minute to its instant.
func (c *cron) Next(after time.Time) time.Time {
	if c.never {
		return time.Time{}
	}
	loc := after.Location()
	y, mo, d := after.Date()
	h, mi, _ := after.Clock()
	w := time.Date(y, mo, d, h, mi, 0, 0, time.UTC).Add(time.Minute)
	limit := y + 401
	for w.Year() <= limit {
		y, mo, d = w.Date()
		if c.month&(1<<uint(mo)) == 0 {
			w = time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.dayMatches(w) {
			w = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		h, ok := nextBit(c.hour, w.Hour())
		if !ok {
			w = time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		from := w.Minute()
		if h != w.Hour() {
			from = 0
		}
		m, ok := nextBit(c.minute, from)
		if !ok {
			w = time.Date(y, mo, d, h+1, 0, 0, 0, time.UTC)
			continue
		}
		w = time.Date(y, mo, d, h, m, 0, 0, time.UTC)
		if t := activation(w, loc); t.After(after) {
			return t
		}
		w = w.Add(time.Minute)
	}
	return time.Time{}
}

// civil returns t's wall clock in its location as a UTC time, so wall
// clocks can be compared without zone effects.
func civil(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, m, s := t.Clock()
	return time.Date(y, mo, d, h, m, s, t.Nanosecond(), time.UTC)
}

// activation returns the first instant at which the wall clock of loc reads
// w or later: w itself, its first occurrence when a fall-back repeats it,
// or the transition instant when a spring-forward skips it. time.Date
// leaves both choices to chance in those cases, so they are resolved here
// from the zone boundaries.
func activation(w time.Time, loc *time.Location) time.Time {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, loc)
	got := civil(t)
	start, end := t.ZoneBounds()
	if !got.Equal(w) {
		// w does not exist: t was computed with the offset of one side of
		// the gap, and the other edge of t's zone is the jump.
		if got.Before(w) && !end.IsZero() {
			return end
		}
		if got.After(w) && !start.IsZero() {
			return start
		}
		return t
	}
	if !start.IsZero() {
		_, cur := t.Zone()
		_, prev := start.Add(-time.Nanosecond).Zone()
		if prev > cur { // the clock went back at start: w may have occurred before
			e := t.Add(-time.Duration(prev-cur) * time.Second)
			if e.Before(start) && civil(e).Equal(w) {
				return e
			}
		}
	}
	return t
}

// String returns the five fields in canonical numeric form.
func (c *cron) String() string {
	return strings.Join([]string{
		render(c.minute, 0, 59, c.minute == span(0, 59), false),
		render(c.hour, 0, 23, c.hour == span(0, 23), false),
		render(c.dom, 1, 31, c.domStar, true),
		render(c.month, 1, 12, c.month == span(1, 12), false),
		render(c.dow, 0, 6, c.dowStar, true),
	}, " ")
}

// span returns the set lo..hi.
func span(lo, hi int) uint64 {
	return (1<<uint(hi+1) - 1) &^ (1<<uint(lo) - 1)
}

// progression returns the set lo, lo+step, ... <= hi.
func progression(lo, hi, step int) uint64 {
	var s uint64
	for v := lo; v <= hi; v += step {
		s |= 1 << uint(v)
	}
	return s
}

// render prints one field. starMatters is set for day-of-month and
// day-of-week, whose "starts with *" flag changes the meaning (the OR
// rule), so the printed form must start with "*" exactly when star is set;
// elsewhere "*" forms are used only where they are exact.
func render(set uint64, lo, hi int, star, starMatters bool) string {
	if star && set == span(lo, hi) {
		return "*"
	}
	if !starMatters {
		// "*/n" only for three values or more: "*/6" for months 1 and 7
		// would hide what "1,7" says plainly.
		for n := 2; n <= (hi-lo)/2; n++ {
			if set == progression(lo, hi, n) {
				return "*/" + strconv.Itoa(n)
			}
		}
		return list(set, lo, hi)
	}
	if !star {
		return list(set, lo, hi)
	}
	// The "*" must be kept: print the "*/n" that covers the most values,
	// then whatever remains as a list. A "*"-led set always contains lo,
	// so n = hi-lo+1 (just lo) ends the search at the latest.
	for n := 2; ; n++ {
		p := progression(lo, hi, n)
		if set&p != p {
			continue
		}
		if rest := set &^ p; rest != 0 {
			return "*/" + strconv.Itoa(n) + "," + list(rest, lo, hi)
		}
		return "*/" + strconv.Itoa(n)
	}
}

// list prints a set as an arithmetic progression "a-b/n" when it is one of
// at least three values, else as comma-separated values and runs "a-b" of
// three or more.
func list(set uint64, lo, hi int) string {
	var vals []int
	for v := lo; v <= hi; v++ {
		if set&(1<<uint(v)) != 0 {
			vals = append(vals, v)
		}
	}
	if n := len(vals); n >= 3 {
		step := vals[1] - vals[0]
		if step > 1 && set == progression(vals[0], vals[n-1], step) {
			return fmt.Sprintf("%d-%d/%d", vals[0], vals[n-1], step)
		}
	}
	var parts []string
	for i := 0; i < len(vals); {
		j := i
		for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, fmt.Sprintf("%d-%d", vals[i], vals[j]))
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, strconv.Itoa(vals[k]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
