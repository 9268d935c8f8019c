package waf

// The CRS's regular expressions, with a cache of their recent answers.
//
// Most of what the CRS costs per request is its @rx rules: a few hundred
// large regular expressions (the SQL injection ones run to kilobytes),
// each matched by Go's regexp against every header, cookie, argument name
// and value a rule names, after its transformations. Yet most of those
// values are the same from one request to the next: a site's browsers send
// a handful of User-Agent, Accept, Accept-Language and Referer strings, the
// same cookie and argument names, the same paths. A regular expression's
// answer for a value never changes, so each pattern keeps the answers for
// the values it saw last and does not match them again.
//
// The cache is exact: a hit returns what the match returned, and when the
// rule captures (TX.0 to TX.9) the same groups. It is bounded: one
// direct-mapped table of cacheSlots answers for all patterns (a pattern and
// value's slot is their hash; a new answer evicts the old one), and values
// longer than cacheMaxValue are matched every time and never kept, so an
// attacker who sends a new value each time pays the match as before (plus
// one hash) and cannot grow the cache, only evict answers, which costs the
// next request with that value a match. The slots are atomic pointers:
// requests on several cores read and fill the table without a lock.
//
// What it exposes: a hit skips a match, so a client able to time one
// request to within a few microseconds could tell whether a value it
// guesses (256 bytes or less) was seen recently, from anyone; the
// difference is one regular expression, far below the jitter of a
// request over a network, and the guard's rate limits bound the probing.
// Values stay in the table until evicted, as they stay in Coraza's own
// per-request copies until collected. A value unique to each request (a
// session cookie, a token) always misses, and costs a copy and an answer
// record on top of the match.
//
// Which rules use it: the CRS's @rx rules whose pattern is UTF-8 text
// whose \x escapes are all ASCII (crsFS rewrites their operator to
// @cachedrx; see cacheable). The others, which may match arbitrary bytes,
// keep Coraza's own @rx, which picks a byte-oriented matcher for them.
// Patterns are compiled as Coraza's @rx compiles them, with (?sm) (dot
// matches newline, ^ and $ match at line breaks), and shared, with their
// caches, between rules with the same pattern.
//
// Measured (waf_bench_test.go, 2 cores): see the table there.

import (
	"bytes"
	"hash/maphash"
	"io"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

const (
	// cacheSlots is the number of answers kept, for all patterns together
	// (a power of two).
	cacheSlots = 1 << 15
	// cacheMaxValue is the longest value whose answer is kept.
	cacheMaxValue = 256
	// cachedOp is the name crsFS gives the operator.
	cachedOp = "cachedrx"
)

func init() { plugins.RegisterOperator(cachedOp, newCachedRX) }

// cachedRX is a compiled pattern.
type cachedRX struct {
	re *regexp.Regexp
	id uint64 // mixed into the hash of a value, so patterns use different slots
}

// answers is the cache: a direct-mapped table of the answers of all
// patterns, at most cacheSlots*(cacheMaxValue+about 100) bytes (11 MiB)
// however many patterns and values there are.
var answers struct {
	seed  maphash.Seed
	ids   atomic.Uint64
	slots [cacheSlots]atomic.Pointer[rxAnswer]
}

func init() { answers.seed = maphash.MakeSeed() }

// rxAnswer is what matching value against op's pattern returned. groups
// holds the submatch index pairs when the match was made for a capturing
// rule (captured).
type rxAnswer struct {
	op       *cachedRX
	value    string
	match    bool
	captured bool
	groups   []int
}

func newCachedRX(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	compile := func() (any, error) {
		re, err := regexp.Compile("(?sm)" + o.Arguments)
		if err != nil {
			return nil, err
		}
		return &cachedRX{re: re, id: answers.ids.Add(1) * 0x9e3779b97f4a7c15}, nil
	}
	if o.Memoizer == nil {
		op, err := compile()
		if err != nil {
			return nil, err
		}
		return op.(*cachedRX), nil
	}
	op, err := o.Memoizer.Do(cachedOp+":"+o.Arguments, compile)
	if err != nil {
		return nil, err
	}
	return op.(*cachedRX), nil
}

// Evaluate matches value, or answers from the cache.
func (o *cachedRX) Evaluate(tx plugintypes.TransactionState, value string) bool {
	capturing := tx.Capturing()
	if len(value) > cacheMaxValue {
		return o.match(tx, capturing, value).match
	}
	slot := &answers.slots[(maphash.String(answers.seed, value)^o.id)&(cacheSlots-1)]
	if a := slot.Load(); a != nil && a.op == o && a.value == value && (a.captured || !capturing) {
		if capturing {
			capture(tx, value, a.groups)
		}
		return a.match
	}
	a := o.match(tx, capturing, strings.Clone(value))
	slot.Store(a)
	return a.match
}

// match matches value and captures as Coraza's @rx does: groups 0 to 8,
// "" for a group that did not take part.
func (o *cachedRX) match(tx plugintypes.TransactionState, capturing bool, value string) *rxAnswer {
	if !capturing {
		return &rxAnswer{op: o, value: value, match: o.re.MatchString(value)}
	}
	groups := o.re.FindStringSubmatchIndex(value)
	capture(tx, value, groups)
	return &rxAnswer{op: o, value: value, match: groups != nil, captured: true, groups: groups}
}

func capture(tx plugintypes.TransactionState, value string, groups []int) {
	for i := 0; i < len(groups)/2 && i < 9; i++ {
		if groups[2*i] >= 0 {
			tx.CaptureField(i, value[groups[2*i]:groups[2*i+1]])
		} else {
			tx.CaptureField(i, "")
		}
	}
}

// crsFS is the embedded CRS with the operator of its plain @rx rules
// renamed to @cachedrx (see the top of this file). Only the rule files
// (.conf) change; data files pass through.
type crsFS struct{ fs.FS }

func (c crsFS) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil || !strings.HasSuffix(name, ".conf") {
		return f, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(cacheRules(data)), info: fi}, nil
}

// cacheRules rewrites `"@rx PATTERN"` and `"!@rx PATTERN"` operator
// arguments to @cachedrx where PATTERN is cacheable. It reads the file as
// Coraza's parser does as far as quoting goes: a double-quoted string
// runs to the next quote not escaped by a backslash, and a line whose first
// non-blank character is # is a comment; only a quoted string that begins
// with the operator is an operator argument, so text inside another string
// or a comment is never changed.
func cacheRules(conf []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(conf) + len(conf)/64)
	lineStart := true
	for i := 0; i < len(conf); {
		c := conf[i]
		switch {
		case lineStart && c == '#':
			end := bytes.IndexByte(conf[i:], '\n')
			if end < 0 {
				end = len(conf) - i
			}
			out.Write(conf[i : i+end])
			i += end
			continue
		case c == '"':
			end := closingQuote(conf, i+1)
			str := conf[i+1 : end]
			neg := bytes.HasPrefix(str, []byte("!@rx "))
			if (neg || bytes.HasPrefix(str, []byte("@rx "))) && end < len(conf) {
				pattern := str[len("@rx "):]
				if neg {
					pattern = str[len("!@rx "):]
				}
				if cacheable(pattern) {
					out.WriteByte('"')
					if neg {
						out.WriteByte('!')
					}
					out.WriteString("@" + cachedOp + " ")
					out.Write(pattern)
					out.WriteByte('"')
					i = end + 1
					lineStart = false
					continue
				}
			}
			end = min(end+1, len(conf))
			out.Write(conf[i:end])
			lineStart = false
			i = end
			continue
		}
		out.WriteByte(c)
		switch {
		case c == '\n':
			lineStart = true
		case c != ' ' && c != '\t':
			lineStart = false
		}
		i++
	}
	return out.Bytes()
}

// cacheable reports whether an @rx pattern is one @cachedrx compiles the
// way Coraza's @rx would. Coraza matches a pattern over bytes rather than
// UTF-8 text when decoding its \x escapes gives invalid UTF-8; a pattern
// of valid UTF-8 whose every \x escape is an ASCII character (\x00 to
// \x7f, or braced as \x{5c}) can never be one, so it is matched as text,
// as @cachedrx does. The others stay with Coraza's @rx.
func cacheable(pattern []byte) bool {
	if !utf8.Valid(pattern) {
		return false
	}
	for rest := pattern; ; {
		i := bytes.Index(rest, []byte(`\x`))
		if i < 0 {
			return true
		}
		rest = rest[i+2:]
		hex := rest
		if len(rest) > 0 && rest[0] == '{' {
			end := bytes.IndexByte(rest, '}')
			if end < 0 {
				return false
			}
			hex = bytes.TrimLeft(rest[1:end], "0")
			if len(hex) == 0 {
				continue // \x{0}
			}
			if len(hex) > 2 {
				return false
			}
		} else if len(hex) >= 2 {
			hex = hex[:2]
		} else {
			return false
		}
		v, err := strconv.ParseUint(string(hex), 16, 8)
		if err != nil || v >= 0x80 {
			return false
		}
	}
}

// closingQuote returns the index of the first unescaped '"' at or after
// start, or len(b).
func closingQuote(b []byte, start int) int {
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(b)
}

// memFile is a rewritten rule file.
type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return sizedInfo{f.info, f.Size()}, nil }
func (f *memFile) Close() error               { return nil }

// sizedInfo is a file's info with the size of its rewritten content.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
