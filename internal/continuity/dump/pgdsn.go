package dump

// PostgreSQL connection strings, parsed the way libpq parses them
// (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING)
// so that the password can be taken out before anything reaches a command
// line. Two spellings:
//
//   - keyword/value: `host=db.example port=5432 dbname=app user=bk
//     password='it''s'`. Pairs are separated by whitespace, `=` may be
//     surrounded by whitespace, a value is either a run of non-space
//     characters or single-quoted; inside either, a backslash escapes the
//     next character (`\'`, `\\`).
//   - URI: `postgres[ql]://[user[:password]@][host[:port][,host[:port]]...][/dbname][?key=value&...]`
//     with percent-encoding in every part, IPv6 hosts in brackets, and
//     several hosts (failover) separated by commas.
//
// Both become an ordered list of keyword/value pairs (URI parts map to
// host, port, user, password, dbname and the query's keywords). The result
// is written back in keyword/value form with every value quoted, which
// libpq reads as the same parameters. Keywords are not checked against
// libpq's list: the tools report unknown ones themselves.

import (
	"errors"
	"fmt"
	"strings"
)

// PGConnInfo is a parsed PostgreSQL connection string: keyword/value pairs
// in the order given. A keyword given twice keeps its last value (libpq's
// rule), so Get returns the last.
type PGConnInfo struct {
	pairs [][2]string
}

// maxDSN bounds what the parsers accept: a DSN is a line of configuration.
const maxDSN = 64 << 10

// ParsePGDSN parses a libpq connection string in keyword/value or URI
// form. An empty string is valid (libpq's defaults: local socket, the
// user's name as database).
func ParsePGDSN(s string) (*PGConnInfo, error) {
	if len(s) > maxDSN {
		return nil, fmt.Errorf("postgres DSN: %d bytes, more than the %d allowed", len(s), maxDSN)
	}
	if strings.ContainsRune(s, 0) {
		return nil, errors.New("postgres DSN: contains a NUL byte")
	}
	if strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://") {
		ci, err := parsePGURI(s)
		if err != nil {
			return nil, fmt.Errorf("postgres DSN %s: %w", redactPG(s), err)
		}
		return ci, nil
	}
	if hasScheme(s) {
		return nil, fmt.Errorf("postgres DSN %s: a URI must start with postgres:// or postgresql://", redactPG(s))
	}
	ci, err := parsePGKeywords(s)
	if err != nil {
		return nil, fmt.Errorf("postgres DSN: %w (want host=H port=P dbname=D user=U or postgres://U@H:P/D)", err)
	}
	return ci, nil
}

// hasScheme reports whether s starts like a URI ("mysql://..."); libpq
// decides by the prefix alone, so "://" inside a quoted value is fine.
func hasScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

func parsePGKeywords(s string) (*PGConnInfo, error) {
	ci := &PGConnInfo{}
	i := 0
	space := func() {
		for i < len(s) && isPGSpace(s[i]) {
			i++
		}
	}
	for {
		space()
		if i == len(s) {
			return ci, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isPGSpace(s[i]) {
			i++
		}
		key := s[start:i]
		space()
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("missing \"=\" after the word at offset %d (a value with spaces must be quoted: key='a b')", start)
		}
		if key == "" {
			return nil, errors.New("\"=\" without a keyword before it")
		}
		if !validPGKey(key) {
			return nil, fmt.Errorf("keyword at offset %d: use letters, digits and _", start)
		}
		i++ // '='
		space()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' && i < len(s) {
					val.WriteByte(s[i])
					i++
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("value of %s: unterminated quoted string", key)
			}
			if i < len(s) && !isPGSpace(s[i]) {
				return nil, fmt.Errorf("value of %s: text right after the closing quote", key)
			}
		} else {
			for i < len(s) && !isPGSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		ci.Set(key, val.String())
	}
}

func isPGSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func validPGKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return k != ""
}

func parsePGURI(s string) (*PGConnInfo, error) {
	_, rest, _ := strings.Cut(s, "://")
	rest, query, hasQuery := strings.Cut(rest, "?")
	auth, path, hasPath := strings.Cut(rest, "/")
	ci := &PGConnInfo{}
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(auth[:at], ":")
		u, err := pctDecode(user)
		if err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
		if u != "" {
			ci.Set("user", u)
		}
		if hasPass {
			p, err := pctDecode(pass)
			if err != nil {
				return nil, errors.New("password: bad percent-encoding")
			}
			ci.Set("password", p)
		}
		auth = auth[at+1:]
	}
	if auth != "" {
		var hosts, ports []string
		anyPort := false
		for _, hp := range strings.Split(auth, ",") {
			var host, port string
			if strings.HasPrefix(hp, "[") {
				end := strings.IndexByte(hp, ']')
				if end < 0 {
					return nil, fmt.Errorf("host %q: missing \"]\" after an IPv6 address", hp)
				}
				host = hp[1:end]
				after := hp[end+1:]
				if after != "" {
					if !strings.HasPrefix(after, ":") {
						return nil, fmt.Errorf("host %q: unexpected %q after \"]\"", hp, after)
					}
					port = after[1:]
				}
			} else {
				host, port, _ = strings.Cut(hp, ":")
			}
			h, err := pctDecode(host)
			if err != nil {
				return nil, fmt.Errorf("host %q: %w", host, err)
			}
			if port != "" {
				if !allDigits(port) {
					return nil, fmt.Errorf("port %q: not a number", port)
				}
				anyPort = true
			}
			hosts = append(hosts, h)
			ports = append(ports, port)
		}
		if strings.Join(hosts, "") != "" {
			ci.Set("host", strings.Join(hosts, ","))
		}
		if anyPort {
			ci.Set("port", strings.Join(ports, ","))
		}
	}
	if hasPath && path != "" {
		db, err := pctDecode(path)
		if err != nil {
			return nil, fmt.Errorf("database name: %w", err)
		}
		ci.Set("dbname", db)
	}
	if hasQuery && query != "" {
		for _, kv := range strings.Split(query, "&") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("query parameter %q: want key=value", kv)
			}
			dk, err := pctDecode(k)
			if err != nil {
				return nil, fmt.Errorf("query parameter %q: %w", k, err)
			}
			dv, err := pctDecode(v)
			if err != nil {
				return nil, fmt.Errorf("query parameter %q: %w", k, err)
			}
			if !validPGKey(dk) {
				return nil, fmt.Errorf("query parameter %q: not a libpq keyword", dk)
			}
			ci.Set(dk, dv)
		}
	}
	return ci, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// pctDecode undoes percent-encoding; '+' stays '+' (libpq's rule).
func pctDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("incomplete percent-encoding")
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", errors.New("bad percent-encoding")
		}
		c := hi<<4 | lo
		if c == 0 {
			return "", errors.New("percent-encoded NUL")
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Get returns the last value of key and whether it is set.
func (c *PGConnInfo) Get(key string) (string, bool) {
	for i := len(c.pairs) - 1; i >= 0; i-- {
		if c.pairs[i][0] == key {
			return c.pairs[i][1], true
		}
	}
	return "", false
}

// Set replaces every value of key by one value (appended at the end).
func (c *PGConnInfo) Set(key, value string) {
	c.Del(key)
	c.pairs = append(c.pairs, [2]string{key, value})
}

// Del removes key.
func (c *PGConnInfo) Del(key string) {
	out := c.pairs[:0]
	for _, p := range c.pairs {
		if p[0] != key {
			out = append(out, p)
		}
	}
	c.pairs = out
}

// Pairs returns a copy of the keyword/value pairs.
func (c *PGConnInfo) Pairs() [][2]string { return append([][2]string(nil), c.pairs...) }

// Clone returns an independent copy.
func (c *PGConnInfo) Clone() *PGConnInfo { return &PGConnInfo{pairs: c.Pairs()} }

// Database returns the dbname keyword ("" when absent).
func (c *PGConnInfo) Database() string { v, _ := c.Get("dbname"); return v }

// String writes the pairs in keyword/value form, every value quoted. It
// includes the password: see Redacted and WithoutPassword.
func (c *PGConnInfo) String() string {
	var b strings.Builder
	for i, p := range c.pairs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p[0])
		b.WriteString("='")
		for j := 0; j < len(p[1]); j++ {
			if p[1][j] == '\'' || p[1][j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(p[1][j])
		}
		b.WriteByte('\'')
	}
	return b.String()
}

// WithoutPassword returns a copy without the password keyword and the
// password (empty, ok=false when there was none). The copy is what goes on
// a command line; the password travels in PGPASSWORD.
func (c *PGConnInfo) WithoutPassword() (rest *PGConnInfo, password string, ok bool) {
	password, ok = c.Get("password")
	rest = c.Clone()
	rest.Del("password")
	return rest, password, ok
}

// Redacted is String with the password replaced by "xxxxx", for messages.
func (c *PGConnInfo) Redacted() string {
	r := c.Clone()
	if _, ok := r.Get("password"); ok {
		r.Set("password", "xxxxx")
	}
	return r.String()
}

// redactPG hides a URI's password in an error about the URI itself.
func redactPG(s string) string {
	_, rest, _ := strings.Cut(s, "://")
	auth, _, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		return "(redacted URI, the part before @ is not shown)"
	}
	return fmt.Sprintf("%q", s)
}
