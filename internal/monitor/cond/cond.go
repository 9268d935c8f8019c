// Package cond parses and evaluates the small conditions of supervision:
// a condition on a JSON document, used by HTTP checks, and a condition on a
// host metric, used by alert rules.
//
// Both read as "left operator right":
//
//	$.status == "ok"                           JSON: a path, then a value
//	$.items[0].size >= 3
//	$.version =~ "^1\."                        a regular expression (RE2)
//	$.maintenance                              a bare path must exist
//	filesystem_used_percent{mountpoint="/"} > 90   metric: a selector, then a number
//	load1 >= 4
//
// A JSON path is $ followed by steps: .name, ["any name"] or [index]
// (negative indices count from the end). Values are JSON literals: numbers,
// strings in double quotes, true, false and null. == and != compare JSON
// values exactly (numbers as numbers); < <= > >= need two numbers, or two
// strings compared bytewise; =~ and !~ match the value's text (a string's
// contents, anything else's JSON) against the regular expression.
//
// A metric selector is a name and optional label matchers, as in
// PromQL: {label="v", label!="v", label=~"re", label!~"re"}, regular
// expressions anchored at both ends. The right side is a number.
//
// The parser is a hand-written scanner over bytes: inputs come from the
// configuration file and are bounded (MaxLen) and fuzzed (FuzzParse).
package cond

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// MaxLen bounds the text of a condition.
const MaxLen = 1024

// Op is a comparison operator.
type Op string

// The operators.
const (
	OpExists Op = ""
	OpEq     Op = "=="
	OpNe     Op = "!="
	OpLt     Op = "<"
	OpLe     Op = "<="
	OpGt     Op = ">"
	OpGe     Op = ">="
	OpMatch  Op = "=~"
	OpNoMat  Op = "!~"
)

// ops lists the operators longest first, so "<=" is not read as "<".
var ops = []Op{OpEq, OpNe, OpLe, OpGe, OpMatch, OpNoMat, OpLt, OpGt}

// Step is one step of a JSON path: a member name or an array index.
type Step struct {
	Name    string
	Index   int
	IsIndex bool
}

// JSON is a parsed condition on a JSON document.
type JSON struct {
	text  string
	Path  []Step
	Op    Op
	Value any // decoded JSON literal; a string for =~ and !~
	re    *regexp.Regexp
}

// String returns the condition as written.
func (c *JSON) String() string { return c.text }

// ParseJSON parses a condition on a JSON document.
func ParseJSON(s string) (*JSON, error) {
	if len(s) > MaxLen {
		return nil, fmt.Errorf("condition is %d bytes, the limit is %d", len(s), MaxLen)
	}
	p := &parser{s: s}
	p.space()
	if !p.eat("$") {
		return nil, p.errorf("a JSON condition starts with $, as in $.status == \"ok\"")
	}
	c := &JSON{text: s}
	for {
		if p.eat(".") {
			name := p.ident()
			if name == "" {
				return nil, p.errorf("expected a member name after '.'")
			}
			c.Path = append(c.Path, Step{Name: name})
			continue
		}
		if p.eat("[") {
			p.space()
			var st Step
			if p.peek() == '"' {
				str, err := p.str()
				if err != nil {
					return nil, err
				}
				st.Name = str
			} else {
				n, ok := p.integer()
				if !ok {
					return nil, p.errorf("expected an index or a quoted name inside [ ]")
				}
				st.Index, st.IsIndex = n, true
			}
			p.space()
			if !p.eat("]") {
				return nil, p.errorf("expected ]")
			}
			c.Path = append(c.Path, st)
			continue
		}
		break
	}
	p.space()
	if p.done() {
		c.Op = OpExists
		return c, nil
	}
	op, ok := p.op()
	if !ok {
		return nil, p.errorf("expected an operator (== != < <= > >= =~ !~) or the end")
	}
	c.Op = op
	p.space()
	start := p.i
	if op == OpMatch || op == OpNoMat {
		str, err := p.str()
		if err != nil {
			return nil, fmt.Errorf("%w (%s takes a regular expression in double quotes)", err, op)
		}
		re, err := regexp.Compile(str)
		if err != nil {
			return nil, fmt.Errorf("condition %q: %w", s, err)
		}
		c.Value, c.re = str, re
	} else {
		dec := json.NewDecoder(strings.NewReader(s[start:]))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, p.errorf("expected a JSON value (a number, \"string\", true, false or null)")
		}
		switch v.(type) {
		case map[string]any, []any:
			return nil, p.errorf("compare with a number, a string, true, false or null, not an object or array")
		}
		if n, ok := v.(json.Number); ok {
			f, err := n.Float64()
			if err != nil {
				return nil, p.errorf("number %s is out of range", n)
			}
			v = f
		}
		if (op == OpLt || op == OpLe || op == OpGt || op == OpGe) && !isOrdered(v) {
			return nil, p.errorf("%s needs a number or a string", op)
		}
		c.Value = v
		p.i = start + int(dec.InputOffset())
	}
	p.space()
	if !p.done() {
		return nil, p.errorf("unexpected text after the value")
	}
	return c, nil
}

func isOrdered(v any) bool {
	switch v.(type) {
	case float64, string:
		return true
	}
	return false
}

// MaxDocument bounds the JSON documents evaluated (an HTTP body is read to
// at most this many bytes by the caller).
const MaxDocument = 4 << 20

// Eval evaluates the condition on a JSON document. The error says why a
// document fails: the path is missing, the value differs (showing it), or
// the document is not JSON.
func (c *JSON) Eval(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return fmt.Errorf("the body is not JSON: %v", err)
	}
	v, where, ok := c.lookup(root)
	if !ok {
		return fmt.Errorf("%s not found in the body (%s)", pathString(c.Path), where)
	}
	if c.Op == OpExists {
		return nil
	}
	if c.holds(v) {
		return nil
	}
	return fmt.Errorf("%s is %s, want %s %s", pathString(c.Path), shortJSON(v), c.Op, shortJSON(c.Value))
}

func (c *JSON) lookup(root any) (any, string, bool) {
	v := root
	for i, st := range c.Path {
		at := pathString(c.Path[:i])
		if st.IsIndex {
			a, ok := v.([]any)
			if !ok {
				return nil, at + " is not an array", false
			}
			idx := st.Index
			if idx < 0 {
				idx += len(a)
			}
			if idx < 0 || idx >= len(a) {
				return nil, fmt.Sprintf("%s has %d elements", at, len(a)), false
			}
			v = a[idx]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, at + " is not an object", false
		}
		if v, ok = m[st.Name]; !ok {
			return nil, fmt.Sprintf("%s has no member %q", at, st.Name), false
		}
	}
	return v, "", true
}

func (c *JSON) holds(v any) bool {
	if n, ok := v.(json.Number); ok {
		if f, err := n.Float64(); err == nil {
			v = f
		}
	}
	switch c.Op {
	case OpMatch, OpNoMat:
		text, ok := v.(string)
		if !ok {
			text = shortJSON(v)
		}
		return c.re.MatchString(text) == (c.Op == OpMatch)
	case OpEq:
		return jsonEqual(v, c.Value)
	case OpNe:
		return !jsonEqual(v, c.Value)
	}
	switch a := v.(type) {
	case float64:
		b, ok := c.Value.(float64)
		return ok && compare(c.Op, a, b)
	case string:
		b, ok := c.Value.(string)
		return ok && compare(c.Op, strings.Compare(a, b), 0)
	}
	return false
}

func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return false // objects and arrays equal no literal
}

func compare[T int | float64](op Op, a, b T) bool {
	switch op {
	case OpLt:
		return a < b
	case OpLe:
		return a <= b
	case OpGt:
		return a > b
	case OpGe:
		return a >= b
	case OpEq:
		return a == b
	case OpNe:
		return a != b
	}
	return false
}

func pathString(steps []Step) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, st := range steps {
		switch {
		case st.IsIndex:
			fmt.Fprintf(&b, "[%d]", st.Index)
		case isIdent(st.Name):
			b.WriteString("." + st.Name)
		default:
			b.WriteString("[" + strconv.Quote(st.Name) + "]")
		}
	}
	return b.String()
}

func shortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// Matcher is one label matcher of a metric selector.
type Matcher struct {
	Label string
	Op    Op // ==, !=, =~ or !~ (written =, !=, =~, !~)
	Value string
	re    *regexp.Regexp
}

// Matches reports whether a label value satisfies the matcher.
func (m Matcher) Matches(v string) bool {
	switch m.Op {
	case OpEq:
		return v == m.Value
	case OpNe:
		return v != m.Value
	case OpMatch:
		return m.re.MatchString(v)
	case OpNoMat:
		return !m.re.MatchString(v)
	}
	return false
}

// Metric is a parsed condition on a metric: a selector and a threshold.
type Metric struct {
	text     string
	Name     string
	Matchers []Matcher
	Op       Op
	Value    float64
}

// String returns the condition as written.
func (c *Metric) String() string { return c.text }

// Selects reports whether a series of the metric with these labels is
// selected.
func (c *Metric) Selects(name string, labels map[string]string) bool {
	if name != c.Name {
		return false
	}
	for _, m := range c.Matchers {
		if !m.Matches(labels[m.Label]) {
			return false
		}
	}
	return true
}

// Holds reports whether a value meets the threshold. NaN never does.
func (c *Metric) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	return compare(c.Op, v, c.Value)
}

// ParseMetric parses a condition on a metric.
func ParseMetric(s string) (*Metric, error) {
	if len(s) > MaxLen {
		return nil, fmt.Errorf("condition is %d bytes, the limit is %d", len(s), MaxLen)
	}
	p := &parser{s: s}
	p.space()
	c := &Metric{text: s, Name: p.metricName()}
	if c.Name == "" {
		return nil, p.errorf("a metric condition starts with a metric name, as in load1 > 4")
	}
	p.space()
	if p.eat("{") {
		for {
			p.space()
			if p.eat("}") {
				break
			}
			label := p.ident()
			if label == "" {
				return nil, p.errorf("expected a label name")
			}
			p.space()
			var m Matcher
			switch {
			case p.eat("=~"):
				m.Op = OpMatch
			case p.eat("!~"):
				m.Op = OpNoMat
			case p.eat("!="):
				m.Op = OpNe
			case p.eat("="):
				m.Op = OpEq
			default:
				return nil, p.errorf("expected = != =~ or !~ after label %s", label)
			}
			p.space()
			v, err := p.str()
			if err != nil {
				return nil, err
			}
			m.Label, m.Value = label, v
			if m.Op == OpMatch || m.Op == OpNoMat {
				re, err := regexp.Compile("^(?:" + v + ")$")
				if err != nil {
					return nil, fmt.Errorf("condition %q: label %s: %w", s, label, err)
				}
				m.re = re
			}
			c.Matchers = append(c.Matchers, m)
			p.space()
			if p.eat(",") {
				continue
			}
			if !p.eat("}") {
				return nil, p.errorf("expected , or }")
			}
			break
		}
	}
	p.space()
	op, ok := p.op()
	if !ok || op == OpMatch || op == OpNoMat {
		return nil, p.errorf("expected a comparison (> >= < <= == !=) after the metric")
	}
	c.Op = op
	p.space()
	start := p.i
	for !p.done() && strings.IndexByte("+-.0123456789eE", p.peek()) >= 0 {
		p.i++
	}
	v, err := strconv.ParseFloat(s[start:p.i], 64)
	if err != nil || math.IsInf(v, 0) {
		p.i = start
		return nil, p.errorf("expected a number")
	}
	c.Value = v
	p.space()
	if !p.done() {
		return nil, p.errorf("unexpected text after the number")
	}
	return c, nil
}

// parser scans a condition; errors name the byte offset.
type parser struct {
	s string
	i int
}

// ErrSyntax is matched by every syntax error.
var ErrSyntax = errors.New("syntax error")

type syntaxError struct {
	text string
	at   int
	msg  string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("condition %q, at byte %d: %s", e.text, e.at, e.msg)
}

func (e *syntaxError) Is(target error) bool { return target == ErrSyntax }

func (p *parser) errorf(format string, args ...any) error {
	return &syntaxError{text: p.s, at: p.i, msg: fmt.Sprintf(format, args...)}
}

func (p *parser) done() bool { return p.i >= len(p.s) }

func (p *parser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *parser) space() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *parser) eat(tok string) bool {
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *parser) op() (Op, bool) {
	for _, op := range ops {
		if p.eat(string(op)) {
			return op, true
		}
	}
	return "", false
}

func isIdentByte(b byte, first bool) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || !first && (b >= '0' && b <= '9' || b == '-')
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// ident reads a member or label name: a letter or _, then letters,
// digits, _ and -.
func (p *parser) ident() string {
	start := p.i
	for !p.done() && isIdentByte(p.s[p.i], p.i == start) {
		p.i++
	}
	return p.s[start:p.i]
}

// metricName reads a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
func (p *parser) metricName() string {
	start := p.i
	for !p.done() {
		b := p.s[p.i]
		if b == ':' || b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || p.i > start && b >= '0' && b <= '9' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i]
}

// integer reads an optionally negative decimal index.
func (p *parser) integer() (int, bool) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	for !p.done() && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.Atoi(p.s[start:p.i])
	if err != nil || n > 1<<31 || n < -(1<<31) {
		p.i = start
		return 0, false
	}
	return n, true
}

// str reads a double-quoted string with JSON escapes.
func (p *parser) str() (string, error) {
	if p.peek() != '"' {
		return "", p.errorf("expected a string in double quotes")
	}
	start := p.i
	p.i++
	for !p.done() {
		switch p.s[p.i] {
		case '\\':
			p.i += 2
			continue
		case '"':
			p.i++
			var out string
			if err := json.Unmarshal([]byte(p.s[start:p.i]), &out); err != nil {
				p.i = start
				return "", p.errorf("bad string: %v", err)
			}
			return out, nil
		}
		p.i++
	}
	p.i = start
	return "", p.errorf("unterminated string")
}
