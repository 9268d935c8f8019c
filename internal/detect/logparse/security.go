package logparse

// Security events of the authentication log, for host intrusion detection
// (internal/integrity): who logged in and how, who used sudo or su and
// whether it failed, which users and groups were added, removed or
// changed. The lines are auth.log's (rsyslog) or the journal's text
// (journalctl -o short, short-iso, short-precise): the same syslog header
// as the detection parsers read (syslog.go).
//
// As everywhere in this package, the text is partly chosen by whoever
// logs in (a user name can hold spaces), every pattern is RE2 and
// anchored, and a line longer than MaxLine is refused unread.

import (
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// The kinds of security events.
const (
	SecLogin           = "login"            // a successful login (sshd)
	SecLoginFailed     = "login_failed"     // a failed one, invalid users included
	SecSudo            = "sudo"             // a command run with sudo
	SecSudoFailed      = "sudo_failed"      // sudo refused (wrong password, not in sudoers)
	SecSu              = "su"               // a successful su
	SecSuFailed        = "su_failed"        // a failed su
	SecUserAdded       = "user_added"       // useradd, adduser
	SecUserDeleted     = "user_deleted"     // userdel
	SecUserChanged     = "user_changed"     // usermod, a user added to a group, chage
	SecGroupAdded      = "group_added"      // groupadd
	SecGroupDeleted    = "group_deleted"    // groupdel
	SecGroupChanged    = "group_changed"    // groupmod, gpasswd
	SecPasswordChanged = "password_changed" // passwd, chpasswd
)

// SecurityEntry is one security event of the authentication log.
type SecurityEntry struct {
	Time    time.Time
	Kind    string // one of the Sec constants
	Program string // sshd, sudo, su, useradd, ...
	// User is who logged in, ran sudo or su (the caller), or the account
	// added, deleted or changed.
	User string
	// Target is the account sudo or su ran as, or the group a user was
	// added to.
	Target string
	// Method is how a login authenticated: password, publickey,
	// keyboard-interactive, ...
	Method string
	// Source is the client address of a login, when the line has one.
	Source netip.Addr
	// UID of a user or GID of a group added, -1 when not given.
	ID int64
	// Command is what sudo ran.
	Command string
	// Message is the line's message.
	Message string
	// Ambiguous marks a sudo line holding " ; USER=" more than once: a
	// directory or command chosen by the user can imitate the fields
	// sudo writes, so Target and Command may not be what sudo did.
	Ambiguous bool
}

type secRule struct {
	re      *regexp.Regexp
	kind    string
	program func(string) bool
}

func isProgram(names ...string) func(string) bool {
	return func(p string) bool {
		for _, n := range names {
			if p == n {
				return true
			}
		}
		return false
	}
}

var sshdProgram = isProgram("sshd", "sshd-session", "sshd-auth")

func secRules(kind string, program func(string) bool, patterns ...string) []secRule {
	out := make([]secRule, len(patterns))
	for i, p := range patterns {
		out[i] = secRule{re: regexp.MustCompile(p), kind: kind, program: program}
	}
	return out
}

// sudoTail is what sudo writes after USER=: optional GROUP=, TSID= (I/O
// logging) and ENV=, then the command (absent in some refusals).
const sudoTail = `(?:GROUP=\S+ ; )?(?:TSID=\S+ ; )?(?:ENV=.* ; )?(?:COMMAND=(?P<command>.*))?$`

// The group names: user, target, method, addr, id, command.
var securityRules = concatSec(
	secRules(SecLogin, sshdProgram,
		`^Accepted (?P<method>\S+) for (?P<user>.*) from (?P<addr>\S+)`+sshdPort+`(?: ssh2)?(?:: .*)?$`),
	secRules(SecLoginFailed, sshdProgram,
		`^Failed (?P<method>\S+) for invalid user (?P<user>.*) from (?P<addr>\S+)`+sshdPort+`(?: ssh2)?(?:: .*)?$`,
		`^Failed (?P<method>\S+) for (?P<user>.*) from (?P<addr>\S+)`+sshdPort+`(?: ssh2)?(?:: .*)?$`,
		`^Invalid user (?P<user>.*) from (?P<addr>\S+)(?:`+sshdPort+`)?$`),
	// sudo: "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id"
	secRules(SecSudoFailed, isProgram("sudo"),
		`^\s*(?P<user>\S+) : (?:\d+ incorrect password attempts?|user NOT in sudoers|command not allowed|a password is required) ; (?:TTY=\S+ ; )?(?:CHROOT=\S+ ; )?PWD=.*? ; USER=(?P<target>\S+) ; `+sudoTail,
		`^pam_unix\(sudo:auth\): authentication failure; logname=\S* uid=\d+ euid=\d+ tty=\S* ruser=(?P<user>\S*) rhost=\S*\s*(?:user=(?P<target>\S*))?$`),
	secRules(SecSudo, isProgram("sudo"),
		`^\s*(?P<user>\S+) : (?:TTY=\S+ ; )?(?:CHROOT=\S+ ; )?PWD=.*? ; USER=(?P<target>\S+) ; `+sudoTail),
	// su: "(to root) alice on pts/0", "FAILED SU (to root) alice on pts/0"
	secRules(SecSuFailed, isProgram("su"),
		`^FAILED SU \(to (?P<target>\S+)\) (?P<user>\S+) on \S+$`,
		`^pam_unix\(su(?:-l)?:auth\): authentication failure; logname=\S* uid=\d+ euid=\d+ tty=\S* ruser=(?P<user>\S*) rhost=\S*\s*(?:user=(?P<target>\S*))?$`),
	secRules(SecSu, isProgram("su"),
		`^\(to (?P<target>\S+)\) (?P<user>\S+) on \S+$`),
	// shadow-utils (a UID changed to another first: it may make a root)
	secRules(SecUserAdded, isProgram("useradd", "adduser"),
		`^new user: name=(?P<user>[^,]+), UID=(?P<id>\d+), GID=\d+, home=.*$`),
	secRules(SecGroupAdded, isProgram("useradd", "groupadd", "adduser", "addgroup"),
		`^new group: name=(?P<user>[^,]+), GID=(?P<id>\d+)$`),
	secRules(SecUserDeleted, isProgram("userdel", "deluser"),
		`^delete user '(?P<user>[^']+)'$`),
	secRules(SecGroupDeleted, isProgram("userdel", "groupdel", "delgroup"),
		`^removed group '(?P<user>[^']+)' owned by '[^']*'$`,
		`^group '(?P<user>[^']+)' removed(?: from /etc/\S+)?$`),
	secRules(SecUserChanged, isProgram("usermod", "gpasswd", "useradd", "adduser"),
		`^add '(?P<user>[^']+)' to (?:shadow )?group '(?P<target>[^']+)'$`,
		`^(?:user (?P<user>\S+) added by \S+ to group (?P<target>\S+))$`,
		`^change user '(?P<user>[^']+)' UID from '\d+' to '(?P<id>\d+)'$`,
		`^change user '(?P<user>[^']+)' .*$`,
		`^lock user '(?P<user>[^']+)' password$`,
		`^unlock user '(?P<user>[^']+)' password$`),
	secRules(SecUserChanged, isProgram("chage"),
		`^changed password expiry for (?P<user>\S+)$`),
	secRules(SecGroupChanged, isProgram("groupmod", "gpasswd"),
		`^group changed in /etc/\S+ \(group (?P<user>[^,)]+).*\)$`,
		`^(?:members of group (?P<user>\S+) set by \S+ to .*)$`),
	secRules(SecPasswordChanged, isProgram("passwd", "chpasswd"),
		`^pam_unix\(\w+:chauthtok\): password changed for (?P<user>\S+)$`),
)

func concatSec(sets ...[]secRule) []secRule {
	var out []secRule
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

// ParseSecurity returns the security event a line of the authentication
// log describes, and false for any other line.
func ParseSecurity(line []byte, now time.Time) (SecurityEntry, bool) {
	s, ok := prepare(line)
	if !ok {
		return SecurityEntry{}, false
	}
	h, ok := parseSyslog(s, now)
	if !ok {
		return SecurityEntry{}, false
	}
	msg := stripRepeated(h.msg)
	for _, r := range securityRules {
		if !r.program(h.program) {
			continue
		}
		m := r.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		e := SecurityEntry{Time: h.time, Kind: r.kind, Program: h.program, ID: -1, Message: msg}
		for i, name := range r.re.SubexpNames() {
			if i == 0 || m[i] == "" {
				continue
			}
			switch name {
			case "user":
				e.User = m[i]
			case "target":
				e.Target = m[i]
			case "method":
				e.Method = m[i]
			case "command":
				e.Command = strings.TrimSpace(m[i])
			case "addr":
				if a, ok := parseAddr(m[i]); ok {
					e.Source = a
				}
			case "id":
				e.ID = parseID(m[i])
			}
		}
		if e.User == "" {
			return SecurityEntry{}, false
		}
		e.Ambiguous = h.program == "sudo" && strings.Count(msg, " ; USER=") > 1
		return e, true
	}
	return SecurityEntry{}, false
}

// parseID reads a decimal id, -1 when it does not fit.
func parseID(s string) int64 {
	var v int64
	for i := 0; i < len(s); i++ {
		if v > (1<<62)/10 {
			return -1
		}
		v = v*10 + int64(s[i]-'0')
	}
	return v
}
