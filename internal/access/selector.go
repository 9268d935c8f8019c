// Tag selectors: which resources a grant applies to.
//
// Syntax: a comma-separated conjunction of terms; every term must hold.
//
//	key=value    the resource has tag key with exactly this value
//	key!=value   the resource has no tag key, or has it with another value
//	             (write "key,key!=value" to require the tag as well)
//	key          the resource has tag key, with any value
//	!key         the resource has no tag key
//
// The empty string and "*" select all resources. Spaces around terms and
// operators are ignored. Keys and values use [A-Za-z0-9._/-] only, keys up
// to 128 bytes, values 1 to 256 bytes, at most 32 terms and 1024 bytes in
// all; the charset leaves no room for quoting or injection tricks, and the
// caps bound the work a hostile selector can cause.
//
// Parsed selectors are kept in a canonical form (terms sorted, duplicates
// removed), so String of a parsed selector is stable and two selectors that
// mean the same conjunction of the same terms compare Equal.

package access

import (
	"fmt"
	"sort"
	"strings"
)

const (
	maxSelectorLen = 1024
	maxSelectorKey = 128
	maxSelectorVal = 256
	maxTerms       = 32
)

type selOp int

// Operator order fixes the canonical order of terms with the same key.
const (
	opEq selOp = iota
	opNeq
	opExists
	opAbsent
)

type term struct {
	key   string
	op    selOp
	value string
}

func (t term) String() string {
	switch t.op {
	case opEq:
		return t.key + "=" + t.value
	case opNeq:
		return t.key + "!=" + t.value
	case opExists:
		return t.key
	default:
		return "!" + t.key
	}
}

func (t term) matches(tags map[string]string) bool {
	v, ok := tags[t.key]
	switch t.op {
	case opEq:
		return ok && v == t.value
	case opNeq:
		return !ok || v != t.value
	case opExists:
		return ok
	default:
		return !ok
	}
}

// Selector chooses resources by their tags. The zero Selector selects all
// resources.
type Selector struct {
	terms []term
}

// All reports whether s selects every resource.
func (s Selector) All() bool { return len(s.terms) == 0 }

// Matches reports whether a resource with these tags is selected.
func (s Selector) Matches(tags map[string]string) bool {
	for _, t := range s.terms {
		if !t.matches(tags) {
			return false
		}
	}
	return true
}

// String returns the canonical text of s; "*" for all resources.
func (s Selector) String() string {
	if s.All() {
		return "*"
	}
	parts := make([]string, len(s.terms))
	for i, t := range s.terms {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

// Equal reports whether s and o have the same canonical terms.
func (s Selector) Equal(o Selector) bool {
	if len(s.terms) != len(o.terms) {
		return false
	}
	for i := range s.terms {
		if s.terms[i] != o.terms[i] {
			return false
		}
	}
	return true
}

// MarshalText encodes the selector as its canonical string.
func (s Selector) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a selector string.
func (s *Selector) UnmarshalText(b []byte) error {
	v, err := ParseSelector(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MustParseSelector is ParseSelector for constants in code and tests; it
// panics on error.
func MustParseSelector(s string) Selector {
	v, err := ParseSelector(s)
	if err != nil {
		panic(err)
	}
	return v
}

func selKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '/' || c == '-'
}

// ParseSelector parses the selector syntax described at the top of this
// file. Errors wrap ErrInvalid and give the 1-based byte position of the
// problem.
func ParseSelector(src string) (Selector, error) {
	if len(src) > maxSelectorLen {
		return Selector{}, fmt.Errorf("%w scope: selector is %d bytes, the limit is %d", ErrInvalid, len(src), maxSelectorLen)
	}
	if t := strings.TrimSpace(src); t == "" || t == "*" {
		return Selector{}, nil
	}
	p := selParser{src: src}
	var terms []term
	for {
		t, err := p.term()
		if err != nil {
			return Selector{}, err
		}
		terms = append(terms, t)
		if len(terms) > maxTerms {
			return Selector{}, p.errorf("more than %d terms", maxTerms)
		}
		p.space()
		if p.i == len(src) {
			break
		}
		if src[p.i] != ',' {
			return Selector{}, p.errorf("unexpected %q; terms are separated by ','", src[p.i])
		}
		p.i++
		p.space()
		if p.i == len(src) {
			return Selector{}, p.errorf("nothing after ','; remove the trailing comma")
		}
	}
	sort.Slice(terms, func(a, b int) bool {
		x, y := terms[a], terms[b]
		if x.key != y.key {
			return x.key < y.key
		}
		if x.op != y.op {
			return x.op < y.op
		}
		return x.value < y.value
	})
	out := terms[:0]
	for i, t := range terms {
		if i > 0 && t == terms[i-1] {
			continue
		}
		out = append(out, t)
	}
	return Selector{terms: out}, nil
}

type selParser struct {
	src string
	i   int
}

func (p *selParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w scope %q at position %d: %s", ErrInvalid, p.src, p.i+1, fmt.Sprintf(format, args...))
}

func (p *selParser) space() {
	for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t') {
		p.i++
	}
}

// word reads a key or value; what names it in errors.
func (p *selParser) word(what string, limit int) (string, error) {
	start := p.i
	for p.i < len(p.src) && selKeyChar(p.src[p.i]) {
		p.i++
	}
	if p.i == start {
		if p.i == len(p.src) {
			return "", p.errorf("expected a tag %s, found the end", what)
		}
		return "", p.errorf("expected a tag %s, found %q (allowed: letters, digits and . _ / -)", what, p.src[p.i])
	}
	if p.i-start > limit {
		p.i = start
		return "", p.errorf("tag %s longer than %d bytes", what, limit)
	}
	return p.src[start:p.i], nil
}

func (p *selParser) term() (term, error) {
	p.space()
	if p.i < len(p.src) && p.src[p.i] == '!' {
		p.i++
		p.space()
		k, err := p.word("key", maxSelectorKey)
		if err != nil {
			return term{}, err
		}
		p.space()
		if p.i < len(p.src) && p.src[p.i] == '=' {
			return term{}, p.errorf("'!key' only tests that a tag is absent; write key!=value to exclude a value")
		}
		return term{key: k, op: opAbsent}, nil
	}
	k, err := p.word("key", maxSelectorKey)
	if err != nil {
		return term{}, err
	}
	p.space()
	var op selOp
	switch {
	case strings.HasPrefix(p.src[p.i:], "!="):
		op = opNeq
		p.i += 2
	case strings.HasPrefix(p.src[p.i:], "="):
		op = opEq
		p.i++
	default:
		return term{key: k, op: opExists}, nil
	}
	p.space()
	v, err := p.word("value", maxSelectorVal)
	if err != nil {
		return term{}, err
	}
	return term{key: k, op: op, value: v}, nil
}
