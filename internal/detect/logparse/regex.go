package logparse

// User-defined parsers: a Go regular expression (RE2 syntax, so matching
// takes time linear in the line) with named groups:
//
//	source  the client address (required)
//	user    the account tried
//	time    when; read with the layouts in timeLayouts, else the parse time
//	status  an HTTP status
//	method, path  an HTTP request
//
// Every line the expression matches with a valid source is one entry of the
// parser's kind.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var regexGroups = []string{"source", "user", "time", "status", "method", "path"}

type regexParser struct {
	name string
	kind string
	re   *regexp.Regexp
	// indexes of the named groups, -1 when absent
	source, user, time, status, method, path int
}

// NewRegex returns a parser called name that turns every line matching
// pattern into an entry of kind. pattern must have a named group "source"
// for the client address and may have "user", "time", "status", "method"
// and "path".
func NewRegex(name, pattern, kind string) (Parser, error) {
	if strings.TrimSpace(name) == "" {
		return nil, fmt.Errorf("logparse: a regular-expression parser needs a name")
	}
	if !slices.Contains(Kinds(), kind) {
		return nil, fmt.Errorf("logparse: parser %q: unknown kind %q (want one of %s)", name, kind, strings.Join(Kinds(), ", "))
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("logparse: parser %q: bad pattern: %w", name, err)
	}
	for _, g := range re.SubexpNames() {
		if g != "" && !slices.Contains(regexGroups, g) {
			return nil, fmt.Errorf("logparse: parser %q: unknown group name %q (known: %s)", name, g, strings.Join(regexGroups, ", "))
		}
	}
	p := &regexParser{
		name: name, kind: kind, re: re,
		source: re.SubexpIndex("source"), user: re.SubexpIndex("user"), time: re.SubexpIndex("time"),
		status: re.SubexpIndex("status"), method: re.SubexpIndex("method"), path: re.SubexpIndex("path"),
	}
	if p.source < 0 {
		return nil, fmt.Errorf("logparse: parser %q: pattern has no (?P<source>...) group for the client address", name)
	}
	return p, nil
}

func (p *regexParser) Name() string { return p.name }

func (p *regexParser) Parse(line []byte, now time.Time) (Entry, bool) {
	s, ok := prepare(line)
	if !ok {
		return Entry{}, false
	}
	m := p.re.FindStringSubmatch(s)
	if m == nil {
		return Entry{}, false
	}
	a, ok := parseAddr(m[p.source])
	if !ok {
		return Entry{}, false
	}
	e := Entry{Time: now, Source: a, Kind: p.kind, Program: p.name, Message: s}
	group := func(i int) string {
		if i < 0 {
			return ""
		}
		return m[i]
	}
	e.User, e.Method, e.Path = group(p.user), group(p.method), group(p.path)
	if t, ok := parseTime(group(p.time), now); ok {
		e.Time = t
	}
	if st, err := strconv.Atoi(group(p.status)); err == nil && st >= 0 && st <= 999 {
		e.Status = st
	}
	return e, true
}

// timeLayouts are tried in order on a "time" group; zoneless ones are read
// in now's zone.
var timeLayouts = []string{
	time.RFC3339,                 // 2026-11-21T10:00:00.123+00:00
	"2006-01-02T15:04:05Z0700",   // journalctl -o short-iso
	"02/Jan/2006:15:04:05 -0700", // access logs
	"2006/01/02 15:04:05",        // nginx error log
	"2006-01-02 15:04:05",        // many applications
	"Mon Jan _2 15:04:05 2006",   // Apache error log, ctime
}

// parseTime reads s with timeLayouts, a syslog "Jan _2 15:04:05" stamp
// (given a year as in syslog.go), or Unix seconds.
func parseTime(s string, now time.Time) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, now.Location()); err == nil {
			return t, true
		}
	}
	if t, ok := parseStamp(s, now); ok {
		return t, true
	}
	if sec, frac, _ := strings.Cut(s, "."); isDigits(sec) && len(sec) <= 12 && (frac == "" || isDigits(frac)) {
		f, err := strconv.ParseFloat(s, 64)
		if err == nil {
			return time.UnixMicro(int64(f * 1e6)).In(now.Location()), true
		}
	}
	return time.Time{}, false
}
