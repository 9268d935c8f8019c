// Package logparse turns log lines into detection input: who (a client
// address) did what (a Kind) when, for the scenarios that decide bans.
//
// Built-in parsers cover sshd (auth.log and journald text), nginx and Apache
// access and error logs, and Postfix and Dovecot authentication failures;
// users add their own as regular expressions with named groups (NewRegex).
//
// Log lines are untrusted: much of their text is chosen by the very clients
// being judged (user names, request lines). So every parser is total (it
// never panics and returns false for anything it does not recognise), works
// in time linear in the line (hand-written scanners and Go's RE2 regular
// expressions, no backtracking), rejects lines longer than MaxLine, and
// takes the client address only from a position the server itself writes:
// a fixed header field, or the last field of an sshd message anchored at
// the end of the line, so that a crafted user name cannot frame another
// address. See each parser's file for its formats.
package logparse

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// MaxLine is the longest line a parser accepts, in bytes; longer lines are
// rejected without being examined.
const MaxLine = 64 << 10

// Kinds of entries.
const (
	// KindAuthFailure is a failed password, key, SASL or basic-auth login
	// for an account that exists (or may exist).
	KindAuthFailure = "auth_failure"
	// KindInvalidUser is a login attempt for an account that does not exist.
	KindInvalidUser = "invalid_user"
	// KindProbe is a connection that never got to a real login: no or bad
	// protocol identification, no common algorithms, a disconnect before
	// authentication, too many authentication attempts.
	KindProbe = "probe"
	// KindAuthSuccess is an accepted login, so scenarios can reset counters.
	KindAuthSuccess = "auth_success"
	// KindHTTP is an access log line; Status, Method and Path are set.
	KindHTTP = "http"
	// KindHTTPError is an error log line naming a client that was refused:
	// denied by rule, rate limited, basic-auth failure.
	KindHTTPError = "http_error"
)

// Kinds lists every kind, for validating configuration.
func Kinds() []string {
	return []string{KindAuthFailure, KindInvalidUser, KindProbe, KindAuthSuccess, KindHTTP, KindHTTPError}
}

// Entry is one recognised event.
type Entry struct {
	// Time is when the line says the event happened; lines without a time
	// (or with one that cannot be read) get the parse time.
	Time time.Time
	// Source is the client address, always valid, IPv4-mapped IPv6
	// addresses unmapped and without a zone.
	Source netip.Addr
	// User is the account tried, when the line names one.
	User string
	// Kind is one of the Kind constants.
	Kind string
	// Program is the syslog program ("sshd", "sshd-session",
	// "postfix/smtpd", "dovecot"), "nginx" or "apache", or the name of a
	// regular-expression parser.
	Program string
	// Status is the HTTP status of an access log line.
	Status int
	// Method and Path are from the request line of an access log line (empty
	// when the request line is malformed, as scanners' often are).
	Method, Path string
	// Message is the message part of the line (the request line for access
	// logs).
	Message string
}

// Parser recognises the lines of one log format.
type Parser interface {
	// Name identifies the parser in configuration and errors.
	Name() string
	// Parse returns the entry a line describes, and false for lines the
	// parser does not recognise or that carry no valid client address. now
	// fills the year of syslog timestamps without one and the time of lines
	// without a time. line may end in "\n" or "\r\n".
	Parse(line []byte, now time.Time) (Entry, bool)
}

var builtins = []struct {
	name string
	p    Parser
}{
	{"sshd", sshdParser{}},
	{"nginx-access", accessParser{name: "nginx-access", program: "nginx"}},
	{"nginx-error", nginxErrorParser{}},
	{"apache-access", accessParser{name: "apache-access", program: "apache", vhost: true}},
	{"apache-error", apacheErrorParser{}},
	{"postfix", postfixParser{}},
	{"dovecot", dovecotParser{}},
}

// BuiltinNames lists the names Builtin accepts.
func BuiltinNames() []string {
	names := make([]string, len(builtins))
	for i, b := range builtins {
		names[i] = b.name
	}
	return names
}

// Builtin returns the built-in parser called name.
func Builtin(name string) (Parser, error) {
	for _, b := range builtins {
		if b.name == name {
			return b.p, nil
		}
	}
	return nil, fmt.Errorf("logparse: unknown built-in parser %q (known: %s)", name, strings.Join(BuiltinNames(), ", "))
}

// prepare rejects over-long lines and strips the line ending.
func prepare(line []byte) (string, bool) {
	if len(line) > MaxLine {
		return "", false
	}
	n := len(line)
	if n > 0 && line[n-1] == '\n' {
		n--
	}
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return string(line[:n]), true
}

// parseAddr reads a client address as logs print it: bare, or in square
// brackets; IPv4-mapped addresses are unmapped and zones dropped, so one
// client always has one Source.
func parseAddr(s string) (netip.Addr, bool) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
