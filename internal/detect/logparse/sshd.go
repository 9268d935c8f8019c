package logparse

// sshd messages, from auth.log or the journal, under the program names
// "sshd", "sshd-session" (OpenSSH 9.8+) and "sshd-auth" (OpenSSH 10).
//
// Each message is matched against a table of anchored regular expressions.
// A user name in these messages is chosen by the client and may contain
// spaces or text like "from 192.0.2.1 port 22", so the patterns capture it
// greedily and anchor the address to the fixed text after it (" port N",
// "[preauth]", end of line): the address is always the last one sshd wrote.

import (
	"regexp"
	"time"
)

// rule maps a message pattern, with named groups "addr" and optionally
// "user", to a kind.
type rule struct {
	re   *regexp.Regexp
	kind string
	addr int // index of the addr group
	user int // index of the user group, -1 if none
}

func rules(kind string, patterns ...string) []rule {
	out := make([]rule, len(patterns))
	for i, p := range patterns {
		re := regexp.MustCompile(p)
		out[i] = rule{re: re, kind: kind, addr: re.SubexpIndex("addr"), user: re.SubexpIndex("user")}
		if out[i].addr < 0 {
			panic("logparse: rule without an addr group: " + p)
		}
	}
	return out
}

// match returns the entry of the first rule matching msg.
func match(rs []rule, msg string, e Entry) (Entry, bool) {
	for _, r := range rs {
		m := r.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		a, ok := parseAddr(m[r.addr])
		if !ok {
			return Entry{}, false // e.g. a host name logged with UseDNS
		}
		e.Source, e.Kind = a, r.kind
		if r.user >= 0 {
			e.User = m[r.user]
		}
		return e, true
	}
	return Entry{}, false
}

const sshdPort = ` port \d+`

var sshdRules = concat(
	rules(KindInvalidUser,
		`^Failed \S+ for invalid user (?P<user>.*) from (?P<addr>\S+)`+sshdPort+`(?: ssh2)?(?:: .*)?$`,
		`^Invalid user (?P<user>.*) from (?P<addr>\S+)(?:`+sshdPort+`)?$`,
		`^User (?P<user>\S+) from (?P<addr>\S+) not allowed because `,
		`^Connection closed by invalid user (?P<user>.*) (?P<addr>\S+)`+sshdPort+` \[preauth\]$`,
		`^Disconnected from invalid user (?P<user>.*) (?P<addr>\S+)`+sshdPort+` \[preauth\]$`,
	),
	rules(KindAuthFailure,
		`^Failed \S+ for (?P<user>.*) from (?P<addr>\S+)`+sshdPort+`(?: ssh2)?(?:: .*)?$`,
		`^pam_unix\(sshd:auth\): authentication failure; logname=\S* uid=\d+ euid=\d+ tty=\S* ruser=\S* rhost=(?P<addr>\S+)(?:\s+user=(?P<user>\S*))?$`,
	),
	rules(KindProbe,
		`^Connection closed by authenticating user (?P<user>.*) (?P<addr>\S+)`+sshdPort+` \[preauth\]$`,
		`^Connection closed by (?P<addr>\S+)`+sshdPort+` \[preauth\]$`,
		`^Disconnected from authenticating user (?P<user>.*) (?P<addr>\S+)`+sshdPort+` \[preauth\]$`,
		`^Disconnected from (?P<addr>\S+)`+sshdPort+` \[preauth\]$`,
		`^Did not receive identification string from (?P<addr>\S+)(?:`+sshdPort+`)?$`,
		`^Bad protocol version identification .* from (?P<addr>\S+)(?:`+sshdPort+`)?$`,
		`^banner exchange: Connection from (?P<addr>\S+)`+sshdPort+`: `,
		`^Unable to negotiate with (?P<addr>\S+)`+sshdPort+`: `,
		`^(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?(?P<user>.*) from (?P<addr>\S+)`+sshdPort+`(?: ssh2)? \[preauth\]$`,
		`^Disconnecting (?:invalid|authenticating) user (?P<user>.*) (?P<addr>\S+)`+sshdPort+`: Too many authentication failures(?: \[preauth\])?$`,
		`^Received disconnect from (?P<addr>\S+)`+sshdPort+`:\d+: .*\[preauth\]$`,
		`^Timeout before authentication for (?:connection from )?(?P<addr>\S+)`+sshdPort+`$`,
	),
	rules(KindAuthSuccess,
		`^Accepted \S+ for (?P<user>.*) from (?P<addr>\S+)`+sshdPort+`(?: ssh2)?(?:: .*)?$`,
	),
)

func concat(sets ...[]rule) []rule {
	var out []rule
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

type sshdParser struct{}

func (sshdParser) Name() string { return "sshd" }

func (sshdParser) Parse(line []byte, now time.Time) (Entry, bool) {
	s, ok := prepare(line)
	if !ok {
		return Entry{}, false
	}
	h, ok := parseSyslog(s, now)
	if !ok || (h.program != "sshd" && h.program != "sshd-session" && h.program != "sshd-auth") {
		return Entry{}, false
	}
	msg := stripRepeated(h.msg)
	return match(sshdRules, msg, Entry{Time: h.time, Program: h.program, Message: msg})
}

// isDigits reports whether s is non-empty and all ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
