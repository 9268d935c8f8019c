package logparse

// Syslog header formats, as written to files by rsyslog and printed by
// journalctl, all followed by "HOST PROGRAM[PID]: MESSAGE" (the PID is
// optional):
//
//	Nov 21 10:00:00 host sshd[123]: msg                traditional, journalctl -o short
//	Nov 21 10:00:00.123456 host sshd[123]: msg         journalctl -o short-precise
//	2026-11-21T10:00:00.123456+00:00 host sshd[123]: msg  rsyslog RFC 3339 (Debian 12 default)
//	2026-11-21T10:00:00+0000 host sshd[123]: msg       journalctl -o short-iso
//
// Traditional timestamps carry neither a year nor a zone: they are read in
// the zone of now (the host's local time, as the logger wrote them) and
// given the latest year that does not put them more than a day after now,
// so a line from Dec 31 read on Jan 1 lands in the old year, and a slightly
// fast clock on the logging side still lands in the current one.

import (
	"strings"
	"time"
)

// syslogHeader is a parsed syslog line.
type syslogHeader struct {
	time    time.Time
	host    string
	program string
	msg     string
}

// parseSyslog splits a syslog line into its header fields and message.
func parseSyslog(s string, now time.Time) (syslogHeader, bool) {
	var h syslogHeader
	var rest string
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		tok, r, ok := strings.Cut(s, " ")
		if !ok {
			return h, false
		}
		t, err := time.Parse(time.RFC3339, tok)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05Z0700", tok)
			if err != nil {
				return h, false
			}
		}
		h.time, rest = t, r
	} else {
		// "Jan _2 15:04:05", then optional fractional seconds, which
		// time.Parse accepts after the seconds without a layout element.
		if len(s) < 16 {
			return h, false
		}
		n := 15
		if s[n] == '.' {
			n++
			for n < len(s) && n < 26 && s[n] >= '0' && s[n] <= '9' {
				n++
			}
		}
		t, ok := parseStamp(s[:n], now)
		if !ok {
			return h, false
		}
		rest = s[n:]
		if rest == "" || rest[0] != ' ' {
			return h, false
		}
		h.time, rest = t, rest[1:]
	}
	host, rest, ok := strings.Cut(rest, " ")
	if !ok || host == "" {
		return h, false
	}
	tag, msg, ok := strings.Cut(rest, ": ")
	if !ok || tag == "" || strings.IndexByte(tag, ' ') >= 0 {
		return h, false
	}
	prog := tag
	if i := strings.IndexByte(tag, '['); i >= 0 {
		if tag[len(tag)-1] != ']' {
			return h, false
		}
		prog = tag[:i]
	}
	if prog == "" {
		return h, false
	}
	h.host, h.program, h.msg = host, prog, msg
	return h, true
}

// parseStamp reads a "Jan _2 15:04:05" timestamp in now's zone and gives it
// a year (see the file comment).
func parseStamp(s string, now time.Time) (time.Time, bool) {
	loc := now.Location()
	t, err := time.ParseInLocation(time.Stamp, s, loc)
	if err != nil {
		return time.Time{}, false
	}
	return withYear(t, now), true
}

// withYear gives a year-less time t the latest year that puts it at most a
// day after now. Feb 29 skips to the previous leap year.
func withYear(t, now time.Time) time.Time {
	limit := now.Add(24 * time.Hour)
	m, d := t.Month(), t.Day()
	for y := now.Year() + 1; y >= now.Year()-8; y-- {
		c := time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), now.Location())
		if c.Month() != m || c.After(limit) {
			continue
		}
		return c
	}
	return time.Date(now.Year(), m, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), now.Location())
}

// stripRepeated unwraps rsyslog's "message repeated N times: [ MSG]", which
// stands for N identical lines; the entry is that of MSG (once).
func stripRepeated(msg string) string {
	const p = "message repeated "
	if !strings.HasPrefix(msg, p) {
		return msg
	}
	_, inner, ok := strings.Cut(msg[len(p):], " times: [ ")
	if !ok || !strings.HasSuffix(inner, "]") {
		return msg
	}
	return inner[:len(inner)-1]
}
