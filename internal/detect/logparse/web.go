package logparse

// Web server logs.
//
// Access logs (nginx "combined", Apache "common", "combined" and
// "vhost_combined"):
//
//	203.0.113.9 - bob [21/Nov/2026:10:00:00 +0000] "GET /admin HTTP/1.1" 401 571 "-" "curl/8.0"
//	www.example.com:443 203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "-"
//
// are read by a scanner rather than a regular expression: the fields before
// "[" (address, ident, user; a vhost:port in front for Apache), the time,
// the quoted request line (nginx escapes a quote as \x22, Apache as \"; a
// backslash escapes the next byte either way), the status.
//
// Error logs carry much text the client chose (user names, paths), and
// nginx does not escape it. nginx writes the client address after the
// message ("..., client: ADDR, server: ..."), so only messages whose
// client-chosen part cannot contain the delimiter are accepted: fixed
// messages, and basic-auth user names without a double quote. Apache 2.4
// writes the client in a header field before the message ("[client
// ADDR:PORT]"), where the client has no say. Only messages that show a
// client being refused are entries (kind http_error); the rest (upstream
// timeouts, missing files) are not the client's misdeed.

import (
	"regexp"
	"strings"
	"time"
)

type accessParser struct {
	name, program string
	vhost         bool // a "vhost:port " field may come first
}

func (p accessParser) Name() string { return p.name }

func (p accessParser) Parse(line []byte, now time.Time) (Entry, bool) {
	s, ok := prepare(line)
	if !ok {
		return Entry{}, false
	}
	lb := strings.IndexByte(s, '[')
	if lb < 1 || s[lb-1] != ' ' {
		return Entry{}, false
	}
	f := strings.Fields(s[:lb])
	if len(f) != 3 && !(p.vhost && len(f) == 4) {
		return Entry{}, false
	}
	if len(f) == 4 && strings.IndexByte(f[0], ':') < 0 {
		return Entry{}, false
	}
	addr, user := f[len(f)-3], f[len(f)-1]
	a, ok := parseAddr(addr)
	if !ok {
		return Entry{}, false
	}
	rest := s[lb+1:]
	rb := strings.IndexByte(rest, ']')
	if rb < 0 {
		return Entry{}, false
	}
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", rest[:rb])
	if err != nil {
		return Entry{}, false
	}
	rest = rest[rb+1:]
	if !strings.HasPrefix(rest, ` "`) {
		return Entry{}, false
	}
	req, rest, ok := cutQuoted(rest[2:])
	if !ok || len(rest) < 4 || rest[0] != ' ' || !isDigits(rest[1:4]) || (len(rest) > 4 && rest[4] != ' ') {
		return Entry{}, false
	}
	status := int(rest[1]-'0')*100 + int(rest[2]-'0')*10 + int(rest[3]-'0')
	e := Entry{Time: t, Source: a, Kind: KindHTTP, Program: p.program, Status: status, Message: req}
	if user != "-" {
		e.User = user
	}
	if rf := strings.Fields(req); (len(rf) == 3 || len(rf) == 2) && isMethod(rf[0]) {
		e.Method, e.Path = rf[0], rf[1]
	}
	return e, true
}

// cutQuoted splits s after the closing double quote of a string whose
// opening quote was already consumed; a backslash escapes the next byte.
func cutQuoted(s string) (inner, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// isMethod reports whether s looks like an HTTP method token.
func isMethod(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// nginx: "2026/11/21 10:00:00 [error] 1234#1234: *5 MESSAGE".
var nginxErrorLine = regexp.MustCompile(`^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[[a-z]+\] \d+#\d+: (?:\*\d+ )?(.*)$`)

const nginxClient = `, client: (?P<addr>[^,\s]+), server: `

var nginxErrorRules = rules(KindHTTPError,
	`^access forbidden by rule`+nginxClient,
	`^limiting requests, excess: [0-9.]+ by zone "[^"]*"`+nginxClient,
	`^limiting connections by zone "[^"]*"`+nginxClient,
	`^user "(?P<user>[^"]*)" was not found in "[^"]*"`+nginxClient,
	`^user "(?P<user>[^"]*)": password mismatch`+nginxClient,
)

type nginxErrorParser struct{}

func (nginxErrorParser) Name() string { return "nginx-error" }

func (nginxErrorParser) Parse(line []byte, now time.Time) (Entry, bool) {
	s, ok := prepare(line)
	if !ok {
		return Entry{}, false
	}
	m := nginxErrorLine.FindStringSubmatch(s)
	if m == nil {
		return Entry{}, false
	}
	t, err := time.ParseInLocation("2006/01/02 15:04:05", m[1], now.Location())
	if err != nil {
		return Entry{}, false
	}
	return match(nginxErrorRules, m[2], Entry{Time: t, Program: "nginx", Message: m[2]})
}

// Apache error log messages that show a refused client. 2.4 messages start
// with an AH code; 2.2 ones are matched by text.
var (
	apacheCodes = map[string]bool{
		"AH01614": true, // client used wrong authentication scheme
		"AH01617": true, // user X: authentication failure for "/": Password Mismatch
		"AH01618": true, // user X not found: /
		"AH01630": true, // client denied by server configuration (mod_authz_core)
		"AH01797": true, // client denied by server configuration (mod_access_compat)
		"AH00126": true, // Invalid URI in request
		"AH00135": true, // Invalid method in request
		"AH01264": true, // script not found or unable to stat
		"AH10244": true, // invalid URI path (path traversal, CVE-2021-41773 probes)
	}
	apacheUser22 = []string{"authentication failure for", "client denied by server configuration", "not found: "}
	apacheUser   = regexp.MustCompile(`^user (.*?)(?:: authentication failure for "| not found: )`)
)

type apacheErrorParser struct{}

func (apacheErrorParser) Name() string { return "apache-error" }

// Parse reads "[TIME] [MODULE:LEVEL] [pid P:tid T] [client ADDR:PORT] MSG"
// (2.4) or "[TIME] [LEVEL] [client ADDR] MSG" (2.2).
func (apacheErrorParser) Parse(line []byte, now time.Time) (Entry, bool) {
	s, ok := prepare(line)
	if !ok {
		return Entry{}, false
	}
	var fields []string
	for len(fields) < 8 && strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Entry{}, false
		}
		fields = append(fields, s[1:end])
		s = strings.TrimPrefix(s[end+1:], " ")
	}
	if len(fields) < 3 {
		return Entry{}, false
	}
	t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", fields[0], now.Location())
	if err != nil {
		return Entry{}, false
	}
	v24 := strings.IndexByte(fields[1], ':') >= 0 // [module:level]
	var client string
	for _, f := range fields[2:] {
		if c, ok := strings.CutPrefix(f, "client "); ok {
			client = c
			break
		}
	}
	if client == "" {
		return Entry{}, false
	}
	if v24 { // ADDR:PORT, with an IPv6 address unbracketed
		i := strings.LastIndexByte(client, ':')
		if i < 0 || !isDigits(client[i+1:]) {
			return Entry{}, false
		}
		client = client[:i]
	}
	a, ok := parseAddr(client)
	if !ok {
		return Entry{}, false
	}
	msg := s
	if code, rest, ok := strings.Cut(msg, ": "); ok && len(code) == 7 && strings.HasPrefix(code, "AH") && isDigits(code[2:]) {
		if !apacheCodes[code] {
			return Entry{}, false
		}
		msg = rest
	} else {
		refused := false
		for _, p := range apacheUser22 {
			refused = refused || strings.Contains(msg, p)
		}
		if !refused {
			return Entry{}, false
		}
	}
	e := Entry{Time: t, Source: a, Kind: KindHTTPError, Program: "apache", Message: s}
	if m := apacheUser.FindStringSubmatch(msg); m != nil {
		e.User = m[1]
	}
	return e, true
}
