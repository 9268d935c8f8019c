package logparse

import (
	"slices"
	"testing"
	"time"
)

// fuzzParsers are the parsers FuzzParse exercises: every built-in and a
// few regular-expression parsers of the kind users write.
func fuzzParsers(t testing.TB) []Parser {
	var ps []Parser
	for _, n := range BuiltinNames() {
		p, err := Builtin(n)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	for _, r := range []struct{ name, pattern string }{
		{"re-full", `^(?P<time>\S+ \S+) (?P<source>\S+) (?P<user>\S*) (?P<method>\S+) (?P<path>\S+) (?P<status>\d+)`},
		{"re-loose", `(?P<source>[0-9a-fA-F:.\[\]]+).*?(?:user=(?P<user>\w*))?`},
	} {
		p, err := NewRegex(r.name, r.pattern, KindProbe)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// FuzzParse feeds arbitrary lines to each parser (the first argument picks
// the parser, so the seed corpus pairs each real line with its own parser
// and mutations explore each parser's format): no parser may panic, and an
// entry it returns must have a valid, unmapped, zoneless Source and a known
// Kind.
func FuzzParse(f *testing.F) {
	ps := fuzzParsers(f)
	index := map[string]int{}
	for i, p := range ps {
		index[p.Name()] = i
	}
	for _, tc := range parseCases {
		f.Add(uint8(index[tc.parser]), []byte(tc.line))
	}
	f.Add(uint8(index["re-full"]), []byte("2026-11-21 10:00:00 203.0.113.9 bob GET / 200"))
	f.Add(uint8(index["re-loose"]), []byte("x [2001:db8::1] user=bob"))
	now := time.Date(2026, 2, 28, 23, 0, 0, 0, time.FixedZone("X", -5*3600))
	kinds := Kinds()
	f.Fuzz(func(t *testing.T, which uint8, line []byte) {
		p := ps[int(which)%len(ps)]
		e, ok := p.Parse(line, now)
		if !ok {
			return
		}
		if !e.Source.IsValid() || e.Source.Is4In6() || e.Source.Zone() != "" {
			t.Errorf("%s: Parse(%q) Source = %v, want a valid unmapped address without zone", p.Name(), line, e.Source)
		}
		if !slices.Contains(kinds, e.Kind) {
			t.Errorf("%s: Parse(%q) Kind = %q", p.Name(), line, e.Kind)
		}
		if e.Time.IsZero() {
			t.Errorf("%s: Parse(%q) zero Time", p.Name(), line)
		}
		if len(line) > MaxLine {
			t.Errorf("%s: accepted a %d-byte line", p.Name(), len(line))
		}
	})
}
