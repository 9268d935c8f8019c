package logparse

// Mail server authentication failures, from syslog (see syslog.go).
//
// Postfix (any smtpd service: "postfix/smtpd", "postfix/submission/smtpd")
// logs a failed SASL login as
//
//	warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
//	warning: host.example[2001:db8::9]: SASL PLAIN authentication failed: authentication failure, sasl_username=bob
//
// The address is in the brackets after the client's host name, which
// precede anything the client chose.
//
// Dovecot's login processes ("imap-login", "pop3-login",
// "submission-login", "managesieve-login") log the end of a connection with
// its reason in parentheses and then key=value fields:
//
//	imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, TLS, session=<...>
//	imap-login: Login aborted: Connection closed (auth failed, 3 attempts in 15 secs) (auth_failed): user=<bob>, ...   (2.3.19+, 2.4)
//	pop3-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=203.0.113.9, ...
//
// The user name comes first and is chosen by the client, so rip is taken
// from the last ", rip=" field. Dovecot's auth process names the client
// inside a passdb prefix, "pam(USER,ADDR,<SESSION>): ...", where USER is
// again the client's choice and ADDR follows it, so USER is matched
// greedily up to the last address-shaped field before "): ".

import (
	"regexp"
	"strings"
	"time"
)

var postfixRules = rules(KindAuthFailure,
	`^warning: [^\[\s]*\[(?:IPv6:)?(?P<addr>[^\]\s]+)\]: SASL \S+ authentication failed:(?:.*, sasl_username=(?P<user>\S+))?`,
)

type postfixParser struct{}

func (postfixParser) Name() string { return "postfix" }

func (postfixParser) Parse(line []byte, now time.Time) (Entry, bool) {
	s, ok := prepare(line)
	if !ok {
		return Entry{}, false
	}
	h, ok := parseSyslog(s, now)
	if !ok || (h.program != "postfix" && !strings.HasPrefix(h.program, "postfix/")) {
		return Entry{}, false
	}
	msg := stripRepeated(h.msg)
	return match(postfixRules, msg, Entry{Time: h.time, Program: h.program, Message: msg})
}

var (
	dovecotLogin = regexp.MustCompile(`^(?:imap|pop3|submission|managesieve)-login: (?:Info: )?`)
	dovecotAuth  = regexp.MustCompile(`^auth(?:-worker\(\d+\))?: (?:Info: |Error: |Warning: )?[a-z][a-z0-9_-]*\((?P<user>.*),(?P<addr>[0-9A-Fa-f.:]+)(?:,<[^<>]*>)?\): (?P<text>.*)$`)
)

type dovecotParser struct{}

func (dovecotParser) Name() string { return "dovecot" }

func (dovecotParser) Parse(line []byte, now time.Time) (Entry, bool) {
	s, ok := prepare(line)
	if !ok {
		return Entry{}, false
	}
	h, ok := parseSyslog(s, now)
	if !ok {
		return Entry{}, false
	}
	msg := stripRepeated(h.msg)
	switch {
	case h.program == "dovecot":
	case strings.HasSuffix(h.program, "-login"):
		// Logged under its own name (log_path with a syslog_facility and
		// separate idents): put the process name back in front.
		msg = h.program + ": " + msg
	default:
		return Entry{}, false
	}
	e := Entry{Time: h.time, Program: h.program, Message: msg}
	if dovecotLogin.MatchString(msg) {
		return dovecotLoginEntry(msg, e)
	}
	m := dovecotAuth.FindStringSubmatch(msg)
	if m == nil {
		return Entry{}, false
	}
	text := m[dovecotAuth.SubexpIndex("text")]
	switch {
	case strings.Contains(text, "unknown user"), strings.Contains(text, "User not known"):
		e.Kind = KindInvalidUser
	case strings.Contains(text, "assword mismatch"), strings.Contains(text, "pam_authenticate() failed"):
		e.Kind = KindAuthFailure
	default:
		return Entry{}, false
	}
	a, ok := parseAddr(m[dovecotAuth.SubexpIndex("addr")])
	if !ok {
		return Entry{}, false
	}
	e.Source, e.User = a, m[dovecotAuth.SubexpIndex("user")]
	return e, true
}

func dovecotLoginEntry(msg string, e Entry) (Entry, bool) {
	i := strings.LastIndex(msg, ", rip=")
	if i < 0 {
		return Entry{}, false
	}
	head, rip := msg[:i], msg[i+len(", rip="):]
	if j := strings.IndexByte(rip, ','); j >= 0 {
		rip = rip[:j]
	}
	a, ok := parseAddr(rip)
	if !ok {
		return Entry{}, false
	}
	// The reason is in the first parentheses, before the fields that the
	// client influences.
	fields := strings.Index(head, ": user=<")
	if fields < 0 {
		fields = len(head)
	}
	reason := head[:fields]
	switch {
	case strings.Contains(reason, "(auth failed"):
		e.Kind = KindAuthFailure
	case strings.Contains(reason, "(no auth attempts"):
		e.Kind = KindProbe
	default:
		return Entry{}, false
	}
	if fields < len(head) {
		u := head[fields+len(": user=<"):]
		if j := strings.LastIndexByte(u, '>'); j >= 0 {
			e.User = u[:j]
		}
	}
	e.Source = a
	return e, true
}
