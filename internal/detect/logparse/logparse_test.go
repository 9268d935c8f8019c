package logparse

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// now is the parse time of the tests; most lines are from 10:00:00 the same
// day (t0).
var (
	now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	t0  = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
)

type parseCase struct {
	name   string
	parser string
	line   string
	want   *Entry // nil: not recognised; Time defaults to t0
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

var parseCases = []parseCase{
	// sshd, every header format.
	{"sshd traditional", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd rfc3339 rsyslog", "sshd", "2026-11-21T10:00:00.123456+00:00 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd", Time: t0.Add(123456 * time.Microsecond)}},
	{"sshd short-iso", "sshd", "2026-11-21T11:00:00+0100 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd short-iso Z", "sshd", "2026-11-21T10:00:00Z host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd short-precise", "sshd", "Nov 21 10:00:00.250000 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd", Time: t0.Add(250 * time.Millisecond)}},
	{"sshd single-digit day", "sshd", "Nov  1 10:00:00 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd", Time: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}},
	{"sshd last year", "sshd", "Dec 31 23:59:59 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd", Time: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)}},
	{"sshd-session", "sshd", "Nov 21 10:00:00 host sshd-session[4567]: Failed password for root from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd-session"}},
	{"sshd crlf", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2\r\n",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd ipv6", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed password for root from 2001:db8::5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("2001:db8::5"), User: "root", Program: "sshd"}},
	{"sshd v4-mapped", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed password for root from ::ffff:203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd failed publickey", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed publickey for alice from 203.0.113.5 port 52144 ssh2: RSA SHA256:AbCdEf0123456789",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "alice", Program: "sshd"}},
	{"sshd failed password invalid user", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed password for invalid user admin from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "admin", Program: "sshd"}},
	{"sshd failed none invalid user", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed none for invalid user oracle from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "oracle", Program: "sshd"}},
	{"sshd invalid user", "sshd", "Nov 21 10:00:00 host sshd[123]: Invalid user admin from 203.0.113.5 port 52144",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "admin", Program: "sshd"}},
	{"sshd invalid empty user", "sshd", "Nov 21 10:00:00 host sshd[123]: Invalid user  from 203.0.113.5 port 52144",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "", Program: "sshd"}},
	{"sshd invalid user without port", "sshd", "Nov 21 10:00:00 host sshd[123]: Invalid user test from 203.0.113.5",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "test", Program: "sshd"}},
	{"sshd forged address in user name", "sshd", "Nov 21 10:00:00 host sshd[123]: Invalid user x from 192.0.2.1 port 22 from 203.0.113.5 port 52144",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "x from 192.0.2.1 port 22", Program: "sshd"}},
	{"sshd forged failed", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed password for invalid user a from 192.0.2.1 port 1 ssh2 from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "a from 192.0.2.1 port 1 ssh2", Program: "sshd"}},
	{"sshd not allowed", "sshd", "Nov 21 10:00:00 host sshd[123]: User bob from 203.0.113.5 not allowed because not listed in AllowUsers",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "bob", Program: "sshd"}},
	{"sshd pam_unix", "sshd", "Nov 21 10:00:00 host sshd[123]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd pam_unix no user", "sshd", "Nov 21 10:00:00 host sshd[123]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=2001:db8::7",
		&Entry{Kind: KindAuthFailure, Source: ip("2001:db8::7"), Program: "sshd"}},
	{"sshd closed authenticating", "sshd", "Nov 21 10:00:00 host sshd[123]: Connection closed by authenticating user root 203.0.113.5 port 52144 [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd closed invalid", "sshd", "Nov 21 10:00:00 host sshd[123]: Connection closed by invalid user admin 203.0.113.5 port 52144 [preauth]",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "admin", Program: "sshd"}},
	{"sshd closed preauth", "sshd", "Nov 21 10:00:00 host sshd[123]: Connection closed by 203.0.113.5 port 52144 [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd disconnected invalid", "sshd", "Nov 21 10:00:00 host sshd[123]: Disconnected from invalid user test 203.0.113.5 port 52144 [preauth]",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.5"), User: "test", Program: "sshd"}},
	{"sshd disconnected authenticating", "sshd", "Nov 21 10:00:00 host sshd[123]: Disconnected from authenticating user root 2001:db8::5 port 52144 [preauth]",
		&Entry{Kind: KindProbe, Source: ip("2001:db8::5"), User: "root", Program: "sshd"}},
	{"sshd disconnected preauth", "sshd", "Nov 21 10:00:00 host sshd[123]: Disconnected from 203.0.113.5 port 52144 [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd no identification", "sshd", "Nov 21 10:00:00 host sshd[123]: Did not receive identification string from 203.0.113.5 port 52144",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd bad protocol", "sshd", "Nov 21 10:00:00 host sshd[123]: Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.5 port 52144",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd banner exchange", "sshd", "Nov 21 10:00:00 host sshd[123]: banner exchange: Connection from 203.0.113.5 port 52144: invalid format",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd unable to negotiate", "sshd", "Nov 21 10:00:00 host sshd[123]: Unable to negotiate with 203.0.113.5 port 52144: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd max attempts", "sshd", "Nov 21 10:00:00 host sshd[123]: error: maximum authentication attempts exceeded for root from 203.0.113.5 port 52144 ssh2 [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd max attempts invalid", "sshd", "Nov 21 10:00:00 host sshd[123]: error: maximum authentication attempts exceeded for invalid user ubnt from 203.0.113.5 port 52144 ssh2 [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), User: "ubnt", Program: "sshd"}},
	{"sshd too many failures", "sshd", "Nov 21 10:00:00 host sshd[123]: Disconnecting authenticating user root 203.0.113.5 port 52144: Too many authentication failures [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd received disconnect preauth", "sshd", "Nov 21 10:00:00 host sshd[123]: Received disconnect from 203.0.113.5 port 52144:11: Bye Bye [preauth]",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd timeout", "sshd", "Nov 21 10:00:00 host sshd[123]: Timeout before authentication for 203.0.113.5 port 52144",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.5"), Program: "sshd"}},
	{"sshd accepted password", "sshd", "Nov 21 10:00:00 host sshd[123]: Accepted password for alice from 203.0.113.5 port 52144 ssh2",
		&Entry{Kind: KindAuthSuccess, Source: ip("203.0.113.5"), User: "alice", Program: "sshd"}},
	{"sshd accepted publickey", "sshd", "Nov 21 10:00:00 host sshd-session[9]: Accepted publickey for alice from 2001:db8::5 port 52144 ssh2: ED25519 SHA256:xyz",
		&Entry{Kind: KindAuthSuccess, Source: ip("2001:db8::5"), User: "alice", Program: "sshd-session"}},
	{"sshd message repeated", "sshd", "Nov 21 10:00:00 host sshd[123]: message repeated 2 times: [ Failed password for root from 203.0.113.5 port 52144 ssh2]",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.5"), User: "root", Program: "sshd"}},
	{"sshd received disconnect after login", "sshd", "Nov 21 10:00:00 host sshd[123]: Received disconnect from 203.0.113.5 port 52144:11: disconnected by user", nil},
	{"sshd disconnected user", "sshd", "Nov 21 10:00:00 host sshd[123]: Disconnected from user alice 203.0.113.5 port 52144", nil},
	{"sshd host name (UseDNS)", "sshd", "Nov 21 10:00:00 host sshd[123]: Failed password for root from attacker.example port 52144 ssh2", nil},
	{"sshd server listening", "sshd", "Nov 21 10:00:00 host sshd[123]: Server listening on 0.0.0.0 port 22.", nil},
	{"sshd other program", "sshd", "Nov 21 10:00:00 host sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1000 euid=0 tty=/dev/pts/0 ruser=bob rhost=  user=bob", nil},
	{"sshd no tag", "sshd", "Nov 21 10:00:00 host Failed password for root from 203.0.113.5 port 52144 ssh2", nil},
	{"sshd bad month", "sshd", "Foo 21 10:00:00 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2", nil},
	{"empty", "sshd", "", nil},

	// Postfix.
	{"postfix sasl login", "postfix", "Nov 21 10:00:00 mail postfix/smtpd[1]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.9"), Program: "postfix/smtpd"}},
	{"postfix sasl plain user", "postfix", "2026-11-21T10:00:00.000000+00:00 mail postfix/submission/smtpd[77]: warning: host.example[203.0.113.9]: SASL PLAIN authentication failed: authentication failure, sasl_username=bob@example.org",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.9"), User: "bob@example.org", Program: "postfix/submission/smtpd"}},
	{"postfix ipv6", "postfix", "Nov 21 10:00:00 mail postfix/smtpd[1]: warning: unknown[2001:db8::9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
		&Entry{Kind: KindAuthFailure, Source: ip("2001:db8::9"), Program: "postfix/smtpd"}},
	{"postfix ipv6 prefix", "postfix", "Nov 21 10:00:00 mail postfix/smtpd[1]: warning: unknown[IPv6:2001:db8::9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
		&Entry{Kind: KindAuthFailure, Source: ip("2001:db8::9"), Program: "postfix/smtpd"}},
	{"postfix connect", "postfix", "Nov 21 10:00:00 mail postfix/smtpd[1]: connect from unknown[203.0.113.9]", nil},
	{"postfix other program", "postfix", "Nov 21 10:00:00 mail sshd[1]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: x", nil},

	// Dovecot.
	{"dovecot imap auth failed", "dovecot", "Nov 21 10:00:00 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, TLS, session=<AbCd>",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.9"), User: "bob", Program: "dovecot"}},
	{"dovecot pop3 aborted", "dovecot", "Nov 21 10:00:00 mail dovecot[12]: pop3-login: Aborted login (auth failed, 3 attempts in 15 secs): user=<alice>, method=LOGIN, rip=2001:db8::9, lip=2001:db8::1, session=<x>",
		&Entry{Kind: KindAuthFailure, Source: ip("2001:db8::9"), User: "alice", Program: "dovecot"}},
	{"dovecot 2.3.19 format", "dovecot", "Nov 21 10:00:00 mail dovecot: submission-login: Login aborted: Connection closed (auth failed, 3 attempts in 12 secs) (auth_failed): user=<carol>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, TLS, session=<y>",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.9"), User: "carol", Program: "dovecot"}},
	{"dovecot forged rip in user", "dovecot", "Nov 21 10:00:00 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, rip=192.0.2.66>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, session=<z>",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.9"), User: "x>, rip=192.0.2.66", Program: "dovecot"}},
	{"dovecot no auth attempts", "dovecot", "Nov 21 10:00:00 mail dovecot: imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=203.0.113.9, lip=192.0.2.1, session=<q>",
		&Entry{Kind: KindProbe, Source: ip("203.0.113.9"), Program: "dovecot"}},
	{"dovecot pam failure", "dovecot", "Nov 21 10:00:00 mail dovecot: auth: pam(bob,203.0.113.9,<AbCd>): pam_authenticate() failed: Authentication failure (password mismatch?)",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.9"), User: "bob", Program: "dovecot"}},
	{"dovecot worker pam unknown", "dovecot", "Nov 21 10:00:00 mail dovecot: auth-worker(991): pam(nobody,2001:db8::9,<AbCd>): pam_authenticate() failed: User not known to the underlying authentication module",
		&Entry{Kind: KindInvalidUser, Source: ip("2001:db8::9"), User: "nobody", Program: "dovecot"}},
	{"dovecot passwd-file unknown", "dovecot", "Nov 21 10:00:00 mail dovecot: auth: passwd-file(eve,203.0.113.9): unknown user",
		&Entry{Kind: KindInvalidUser, Source: ip("203.0.113.9"), User: "eve", Program: "dovecot"}},
	{"dovecot sql mismatch user with comma", "dovecot", "Nov 21 10:00:00 mail dovecot: auth-worker(5): Info: sql(a,b,203.0.113.9,<s>): Password mismatch",
		&Entry{Kind: KindAuthFailure, Source: ip("203.0.113.9"), User: "a,b", Program: "dovecot"}},
	{"dovecot login ok", "dovecot", "Nov 21 10:00:00 mail dovecot: imap-login: Login: user=<bob>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, mpid=4, TLS, session=<s>", nil},
	{"dovecot imap logout", "dovecot", "Nov 21 10:00:00 mail dovecot: imap(bob)<4><s>: Disconnected: Logged out in=1 out=2", nil},

	// nginx.
	{"nginx access", "nginx-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET /wp-login.php HTTP/1.1" 404 153 "-" "Mozilla/5.0"`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), Program: "nginx", Status: 404, Method: "GET", Path: "/wp-login.php"}},
	{"nginx access user", "nginx-access", `2001:db8::9 - bob [21/Nov/2026:11:00:00 +0100] "POST /login?x=1 HTTP/2.0" 401 0 "https://example.org/" "curl/8.5.0"`,
		&Entry{Kind: KindHTTP, Source: ip("2001:db8::9"), User: "bob", Program: "nginx", Status: 401, Method: "POST", Path: "/login?x=1"}},
	{"nginx access escaped quote", "nginx-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET /a\x22b HTTP/1.1" 400 0 "-" "-"`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), Program: "nginx", Status: 400, Method: "GET", Path: `/a\x22b`}},
	{"nginx access binary request", "nginx-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "\x16\x03\x01\x02\x00\x01\x00" 400 157 "-" "-"`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), Program: "nginx", Status: 400}},
	{"nginx access empty request", "nginx-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "" 400 0 "-" "-"`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), Program: "nginx", Status: 400}},
	{"nginx access vhost rejected", "nginx-access", `example.org:443 203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-"`, nil},
	{"nginx access bad status", "nginx-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 2000 5`, nil},
	{"nginx access hostname", "nginx-access", `client.example - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5`, nil},
	{"nginx error forbidden", "nginx-error", `2026/11/21 10:00:00 [error] 1234#1234: *5 access forbidden by rule, client: 203.0.113.9, server: example.org, request: "GET /.env HTTP/1.1", host: "example.org"`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), Program: "nginx"}},
	{"nginx error limiting", "nginx-error", `2026/11/21 10:00:00 [error] 1234#1234: *7 limiting requests, excess: 20.360 by zone "one", client: 2001:db8::9, server: example.org, request: "GET / HTTP/1.1", host: "example.org"`,
		&Entry{Kind: KindHTTPError, Source: ip("2001:db8::9"), Program: "nginx"}},
	{"nginx error limiting conn", "nginx-error", `2026/11/21 10:00:00 [warn] 1234#1234: *7 limiting connections by zone "addr", client: 203.0.113.9, server: example.org, request: "GET / HTTP/1.1", host: "example.org"`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), Program: "nginx"}},
	{"nginx error user not found", "nginx-error", `2026/11/21 10:00:00 [error] 1234#1234: *9 user "admin" was not found in "/etc/nginx/.htpasswd", client: 203.0.113.9, server: example.org, request: "GET /private HTTP/1.1", host: "example.org"`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), User: "admin", Program: "nginx"}},
	{"nginx error password mismatch", "nginx-error", `2026/11/21 10:00:00 [error] 1234#1234: *9 user "bob": password mismatch, client: 203.0.113.9, server: example.org, request: "GET /private HTTP/1.1", host: "example.org"`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), User: "bob", Program: "nginx"}},
	{"nginx error forged user", "nginx-error", `2026/11/21 10:00:00 [error] 1234#1234: *9 user "x", client: 192.0.2.66, server: a": password mismatch, client: 203.0.113.9, server: example.org`, nil},
	// A Basic-auth user name is raw in nginx's error log, newlines included
	// (nginx 1.22 here: `user "evil<LF>2026/11/21 10" was not found ...`),
	// but it ends at the first ':' (user:password), so the lines it makes
	// can hold neither the "HH:MM:SS" of a line's start nor ", client: ".
	{"nginx error user with newline, first part", "nginx-error", `2026/11/21 23:41:49 [error] 20883#20883: *1 user "evil`, nil},
	{"nginx error user with newline, rest", "nginx-error", `2026/11/21 10" was not found in "/tmp/ngx/htpasswd", client: 127.0.0.1, server: , request: "GET / HTTP/1.1", host: "127.0.0.1:48123"`, nil},
	{"nginx error forged line without colons", "nginx-error", `2026/11/21 10 00 00 [error] 1#1 *1 access forbidden by rule, client 6.6.6.6, server x`, nil},
	{"nginx error upstream", "nginx-error", `2026/11/21 10:00:00 [error] 1234#1234: *9 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.9, server: example.org`, nil},
	{"nginx error no client", "nginx-error", `2026/11/21 10:00:00 [notice] 1#1: signal process started`, nil},

	// Apache.
	{"apache common", "apache-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET /index.html HTTP/1.0" 200 2326`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), Program: "apache", Status: 200, Method: "GET", Path: "/index.html"}},
	{"apache combined", "apache-access", `203.0.113.9 - frank [21/Nov/2026:10:00:00 +0000] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), User: "frank", Program: "apache", Status: 200, Method: "GET", Path: "/apache_pb.gif"}},
	{"apache vhost combined", "apache-access", `www.example.com:443 2001:db8::9 - - [21/Nov/2026:10:00:00 +0000] "GET /cgi-bin/.%2e/.%2e/bin/sh HTTP/1.1" 400 226 "-" "-"`,
		&Entry{Kind: KindHTTP, Source: ip("2001:db8::9"), Program: "apache", Status: 400, Method: "GET", Path: "/cgi-bin/.%2e/.%2e/bin/sh"}},
	{"apache escaped quote", "apache-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET /\"x HTTP/1.1" 404 1 "-" "-"`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), Program: "apache", Status: 404, Method: "GET", Path: `/\"x`}},
	{"apache timeout request", "apache-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "-" 408 -`,
		&Entry{Kind: KindHTTP, Source: ip("203.0.113.9"), Program: "apache", Status: 408}},
	{"apache unterminated request", "apache-access", `203.0.113.9 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1 200 1`, nil},
	{"apache bad time", "apache-access", `203.0.113.9 - - [21/Nov/2026 10:00:00] "GET / HTTP/1.1" 200 1`, nil},
	{"apache error AH01617", "apache-error", `[Sat Nov 21 10:00:00.123456 2026] [auth_basic:error] [pid 1234:tid 140000] [client 203.0.113.9:51234] AH01617: user bob: authentication failure for "/private": Password Mismatch`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), User: "bob", Program: "apache", Time: t0.Add(123456 * time.Microsecond)}},
	{"apache error AH01618 ipv6", "apache-error", `[Sat Nov 21 10:00:00.000000 2026] [auth_basic:error] [pid 1234] [client 2001:db8::9:51234] AH01618: user admin not found: /private`,
		&Entry{Kind: KindHTTPError, Source: ip("2001:db8::9"), User: "admin", Program: "apache"}},
	{"apache error AH01630", "apache-error", `[Sat Nov 21 10:00:00.000000 2026] [authz_core:error] [pid 1234:tid 1] [client 203.0.113.9:51234] AH01630: client denied by server configuration: /var/www/html/.git`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), Program: "apache"}},
	{"apache error AH01797", "apache-error", `[Sat Nov 21 10:00:00.000000 2026] [access_compat:error] [pid 1234:tid 1] [client 203.0.113.9:51234] AH01797: client denied by server configuration: /var/www/private, referer: http://x/`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), Program: "apache"}},
	{"apache 2.2", "apache-error", `[Sat Nov 21 10:00:00 2026] [error] [client 203.0.113.9] user bob: authentication failure for "/private": Password Mismatch`,
		&Entry{Kind: KindHTTPError, Source: ip("203.0.113.9"), User: "bob", Program: "apache"}},
	{"apache 2.2 ipv6 keeps last group", "apache-error", `[Sat Nov 21 10:00:00 2026] [error] [client 2001:db8::5:1] client denied by server configuration: /var/www/x`,
		&Entry{Kind: KindHTTPError, Source: ip("2001:db8::5:1"), Program: "apache"}},
	{"apache error other code", "apache-error", `[Sat Nov 21 10:00:00.000000 2026] [proxy:error] [pid 1234:tid 1] [client 203.0.113.9:51234] AH00898: Error reading from remote server returned by /app`, nil},
	{"apache error no client", "apache-error", `[Sat Nov 21 10:00:00.000000 2026] [mpm_event:notice] [pid 1234:tid 1] AH00489: Apache/2.4.62 (Debian) configured -- resuming normal operations`, nil},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Builtin(tc.parser)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := p.Parse([]byte(tc.line), now)
			if tc.want == nil {
				if ok {
					t.Fatalf("Parse(%q) = %+v, want not recognised", tc.line, got)
				}
				return
			}
			if !ok {
				t.Fatalf("Parse(%q) not recognised, want %+v", tc.line, *tc.want)
			}
			want := *tc.want
			if want.Time.IsZero() {
				want.Time = t0
			}
			if diff := cmp.Diff(want, got, addrCmp, cmpopts.IgnoreFields(Entry{}, "Message")); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.line, diff)
			}
			if got.Message == "" && got.Kind != KindHTTP {
				t.Errorf("Parse(%q): empty Message", tc.line)
			}
		})
	}
}

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// TestParseKindsCovered makes sure every parser and kind has a positive case.
func TestParseKindsCovered(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range parseCases {
		if tc.want != nil {
			seen[tc.parser] = true
			seen[tc.want.Kind] = true
		}
	}
	for _, n := range append(BuiltinNames(), Kinds()...) {
		if !seen[n] {
			t.Errorf("no positive test case for %s", n)
		}
	}
}

func TestMessage(t *testing.T) {
	p, _ := Builtin("sshd")
	e, ok := p.Parse([]byte("Nov 21 10:00:00 host sshd[1]: Invalid user a from 203.0.113.5 port 1\n"), now)
	if !ok || e.Message != "Invalid user a from 203.0.113.5 port 1" {
		t.Errorf("Message = %q (ok %v), want the syslog message", e.Message, ok)
	}
}

func TestLongLineRejected(t *testing.T) {
	line := "Nov 21 10:00:00 host sshd[123]: Invalid user " + strings.Repeat("a", MaxLine) + " from 203.0.113.5 port 1"
	for _, name := range BuiltinNames() {
		p, _ := Builtin(name)
		if e, ok := p.Parse([]byte(line), now); ok {
			t.Errorf("%s: accepted a %d-byte line: %+v", name, len(line), e)
		}
	}
	p, _ := Builtin("sshd")
	ok := strings.Repeat("a", MaxLine-200)
	if _, got := p.Parse([]byte("Nov 21 10:00:00 host sshd[123]: Invalid user "+ok+" from 203.0.113.5 port 1"), now); !got {
		t.Errorf("rejected a line under MaxLine")
	}
}

func TestBuiltin(t *testing.T) {
	for _, n := range BuiltinNames() {
		p, err := Builtin(n)
		if err != nil || p.Name() != n {
			t.Errorf("Builtin(%q) = %v, %v; want a parser named %q", n, p, err, n)
		}
	}
	_, err := Builtin("exim")
	if err == nil || !strings.Contains(err.Error(), `"exim"`) || !strings.Contains(err.Error(), "sshd") {
		t.Errorf("Builtin(exim) error = %v, want it to name the parser and the known ones", err)
	}
}

func TestWithYear(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	tests := []struct {
		stamp string
		now   time.Time
		want  time.Time
	}{
		{"Nov 21 10:00:00", time.Date(2026, 11, 21, 12, 0, 0, 0, loc), time.Date(2026, 11, 21, 10, 0, 0, 0, loc)},
		{"Nov 22 11:00:00", time.Date(2026, 11, 21, 12, 0, 0, 0, loc), time.Date(2026, 11, 22, 11, 0, 0, 0, loc)}, // a fast clock
		{"Nov 22 13:00:00", time.Date(2026, 11, 21, 12, 0, 0, 0, loc), time.Date(2025, 11, 22, 13, 0, 0, 0, loc)},
		{"Dec 31 23:59:59", time.Date(2027, 1, 1, 0, 0, 5, 0, loc), time.Date(2026, 12, 31, 23, 59, 59, 0, loc)},
		{"Jan  1 00:00:01", time.Date(2026, 12, 31, 23, 59, 0, 0, loc), time.Date(2027, 1, 1, 0, 0, 1, 0, loc)},
		{"Feb 29 10:00:00", time.Date(2026, 3, 1, 0, 0, 0, 0, loc), time.Date(2024, 2, 29, 10, 0, 0, 0, loc)},
	}
	for _, tc := range tests {
		t.Run(tc.stamp, func(t *testing.T) {
			got, ok := parseStamp(tc.stamp, tc.now)
			if !ok || !got.Equal(tc.want) || got.Location() != loc {
				t.Errorf("parseStamp(%q, %v) = %v, %v; want %v", tc.stamp, tc.now, got, ok, tc.want)
			}
		})
	}
}

func TestNewRegex(t *testing.T) {
	tests := []struct {
		name, pattern, kind string
		line                string
		want                *Entry // nil: not recognised
	}{
		{"app", `^(?P<time>\S+) login failed for (?P<user>\S+) from (?P<source>\S+)$`, KindAuthFailure,
			"2026-11-21T10:00:00Z login failed for bob from 2001:db8::1",
			&Entry{Time: t0, Source: ip("2001:db8::1"), User: "bob", Kind: KindAuthFailure, Program: "app"}},
		{"app-syslog-time", `^(?P<time>\w{3} [ \d]\d \d\d:\d\d:\d\d) .*from (?P<source>\S+)`, KindProbe,
			"Nov 21 10:00:00 bad thing from [::ffff:192.0.2.1]",
			&Entry{Time: t0, Source: ip("192.0.2.1"), Kind: KindProbe, Program: "app-syslog-time"}},
		{"web", `^(?P<source>\S+) \[(?P<time>[^\]]+)\] (?P<method>\S+) (?P<path>\S+) (?P<status>\d+)$`, KindHTTP,
			"203.0.113.9 [21/Nov/2026:10:00:00 +0000] GET /x 403",
			&Entry{Time: t0, Source: ip("203.0.113.9"), Kind: KindHTTP, Program: "web", Method: "GET", Path: "/x", Status: 403}},
		{"unix-time", `^(?P<time>[\d.]+) (?P<source>\S+)$`, KindProbe,
			"1795255200.5 203.0.113.9",
			&Entry{Time: time.Unix(1795255200, 5e8), Source: ip("203.0.113.9"), Kind: KindProbe, Program: "unix-time"}},
		{"no-time", `from (?P<source>\S+)`, KindProbe, "x from 203.0.113.9",
			&Entry{Time: now, Source: ip("203.0.113.9"), Kind: KindProbe, Program: "no-time"}},
		{"bad-time", `^(?P<time>\S+) from (?P<source>\S+)`, KindProbe, "yesterday from 203.0.113.9",
			&Entry{Time: now, Source: ip("203.0.113.9"), Kind: KindProbe, Program: "bad-time"}},
		{"bad-source", `from (?P<source>\S+)`, KindProbe, "x from host.example", nil},
		{"optional-source", `from (?P<source>\S+)?`, KindProbe, "x from ", nil},
		{"no-match", `^never (?P<source>\S+)`, KindProbe, "x from 203.0.113.9", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewRegex(tc.name, tc.pattern, tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tc.name {
				t.Errorf("Name() = %q, want %q", p.Name(), tc.name)
			}
			got, ok := p.Parse([]byte(tc.line), now)
			if tc.want == nil {
				if ok {
					t.Fatalf("Parse(%q) = %+v, want not recognised", tc.line, got)
				}
				return
			}
			if !ok {
				t.Fatalf("Parse(%q) not recognised", tc.line)
			}
			if diff := cmp.Diff(*tc.want, got, addrCmp, cmpopts.IgnoreFields(Entry{}, "Message")); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRegexErrors(t *testing.T) {
	tests := []struct {
		name, pattern, kind string
		wantIn              []string
	}{
		{"x", `from (\S+)`, KindProbe, []string{`"x"`, "source"}},
		{"x", `from (?P<source>\S+`, KindProbe, []string{`"x"`, "bad pattern"}},
		{"x", `from (?P<src>\S+)`, KindProbe, []string{`"x"`, `"src"`, "source"}},
		{"x", `from (?P<source>\S+)`, "bruteforce", []string{`"x"`, `"bruteforce"`, KindAuthFailure}},
		{"", `from (?P<source>\S+)`, KindProbe, []string{"name"}},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"/"+tc.kind, func(t *testing.T) {
			_, err := NewRegex(tc.name, tc.pattern, tc.kind)
			if err == nil {
				t.Fatal("NewRegex succeeded, want an error")
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, name := range BuiltinNames() {
		var line []byte
		for _, tc := range parseCases {
			if tc.parser == name && tc.want != nil {
				line = []byte(tc.line)
				break
			}
		}
		p, _ := Builtin(name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, ok := p.Parse(line, now); !ok {
					b.Fatal("not recognised")
				}
			}
		})
	}
	b.Run("sshd-nonmatching", func(b *testing.B) {
		p, _ := Builtin("sshd")
		line := []byte("Nov 21 10:00:00 host sshd[123]: pam_unix(sshd:session): session opened for user alice(uid=1000) by alice(uid=0)")
		for b.Loop() {
			p.Parse(line, now)
		}
	})
}
