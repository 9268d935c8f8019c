package logparse

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseSecurity(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		line string
		want SecurityEntry // zero Kind: not a security event
	}{
		{"2026-11-22T10:00:00.123456+00:00 web1 sshd[812]: Accepted password for root from 203.0.113.9 port 51234 ssh2",
			SecurityEntry{Kind: SecLogin, Program: "sshd", User: "root", Method: "password", Source: netip.MustParseAddr("203.0.113.9")}},
		{"Nov 22 10:00:01 web1 sshd-session[90]: Accepted publickey for alice from 2001:db8::7 port 40000 ssh2: ED25519 SHA256:abc",
			SecurityEntry{Kind: SecLogin, Program: "sshd-session", User: "alice", Method: "publickey", Source: netip.MustParseAddr("2001:db8::7")}},
		{"Nov 22 10:00:02 web1 sshd[812]: Failed password for invalid user admin from 198.51.100.4 port 22 ssh2",
			SecurityEntry{Kind: SecLoginFailed, Program: "sshd", User: "admin", Method: "password", Source: netip.MustParseAddr("198.51.100.4")}},
		{"Nov 22 10:00:03 web1 sshd[812]: Failed password for root from 198.51.100.4 port 22 ssh2",
			SecurityEntry{Kind: SecLoginFailed, Program: "sshd", User: "root", Method: "password", Source: netip.MustParseAddr("198.51.100.4")}},
		{"Nov 22 10:00:04 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt upgrade",
			SecurityEntry{Kind: SecSudo, Program: "sudo", User: "alice", Target: "root", Command: "/usr/bin/apt upgrade"}},
		{"Nov 22 10:00:05 web1 sudo:      bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash",
			SecurityEntry{Kind: SecSudoFailed, Program: "sudo", User: "bob", Target: "root", Command: "/bin/bash"}},
		{"Nov 22 10:00:06 web1 sudo:      eve : user NOT in sudoers ; TTY=pts/2 ; PWD=/home/eve ; USER=root ; COMMAND=/bin/id",
			SecurityEntry{Kind: SecSudoFailed, Program: "sudo", User: "eve", Target: "root", Command: "/bin/id"}},
		{"Nov 22 10:00:07 web1 su[4000]: (to root) alice on pts/0",
			SecurityEntry{Kind: SecSu, Program: "su", User: "alice", Target: "root"}},
		{"Nov 22 10:00:08 web1 su[4001]: FAILED SU (to root) eve on pts/2",
			SecurityEntry{Kind: SecSuFailed, Program: "su", User: "eve", Target: "root"}},
		{"Nov 22 10:00:09 web1 useradd[5000]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0",
			SecurityEntry{Kind: SecUserAdded, Program: "useradd", User: "backdoor", ID: 0}},
		{"Nov 22 10:00:10 web1 groupadd[5001]: new group: name=deploy, GID=1002",
			SecurityEntry{Kind: SecGroupAdded, Program: "groupadd", User: "deploy", ID: 1002}},
		{"Nov 22 10:00:11 web1 usermod[5002]: add 'eve' to group 'sudo'",
			SecurityEntry{Kind: SecUserChanged, Program: "usermod", User: "eve", Target: "sudo", ID: -1}},
		{"Nov 22 10:00:12 web1 userdel[5003]: delete user 'bob'",
			SecurityEntry{Kind: SecUserDeleted, Program: "userdel", User: "bob"}},
		{"Nov 22 10:00:13 web1 userdel[5003]: removed group 'bob' owned by 'bob'",
			SecurityEntry{Kind: SecGroupDeleted, Program: "userdel", User: "bob"}},
		{"Nov 22 10:00:14 web1 passwd[5004]: pam_unix(passwd:chauthtok): password changed for alice",
			SecurityEntry{Kind: SecPasswordChanged, Program: "passwd", User: "alice"}},
		{"Nov 22 10:00:15 web1 sshd[812]: Connection closed by 198.51.100.4 port 22 [preauth]", SecurityEntry{}},
		{"Nov 22 10:00:19 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; GROUP=adm ; TSID=000001 ; COMMAND=/usr/bin/less /var/log/syslog",
			SecurityEntry{Kind: SecSudo, Program: "sudo", User: "alice", Target: "root", Command: "/usr/bin/less /var/log/syslog"}},
		{"Nov 22 10:00:20 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/sh -c x ; USER=nobody ; COMMAND=/bin/true",
			SecurityEntry{Kind: SecSudo, Program: "sudo", User: "alice", Target: "root", Command: "/bin/sh -c x ; USER=nobody ; COMMAND=/bin/true", Ambiguous: true}},
		{"Nov 22 10:00:21 web1 usermod[5005]: change user 'bob' UID from '1001' to '0'",
			SecurityEntry{Kind: SecUserChanged, Program: "usermod", User: "bob", ID: 0}},
		{"Nov 22 10:00:16 web1 CRON[9]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", SecurityEntry{}},
		// A user name chosen by a client that imitates another program's message.
		{"Nov 22 10:00:17 web1 sshd[812]: Invalid user (to root) x on pts/0 from 192.0.2.1 port 22",
			SecurityEntry{Kind: SecLoginFailed, Program: "sshd", User: "(to root) x on pts/0", Source: netip.MustParseAddr("192.0.2.1")}},
		{"Nov 22 10:00:18 web1 kernel: sudo:    alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/x", SecurityEntry{}},
		{strings.Repeat("x", MaxLine+1), SecurityEntry{}},
	} {
		got, ok := ParseSecurity([]byte(c.line), now)
		if c.want.Kind == "" {
			if ok {
				t.Errorf("%q: parsed as %+v", c.line, got)
			}
			continue
		}
		if c.want.ID == 0 && c.want.Kind != SecUserAdded && c.want.Kind != SecUserChanged {
			c.want.ID = -1
		}
		got.Time, got.Message = time.Time{}, ""
		if !ok || got != c.want {
			t.Errorf("%q:\n got %+v (%v)\nwant %+v", c.line, got, ok, c.want)
		}
	}
}

func FuzzParseSecurity(f *testing.F) {
	f.Add("Nov 22 10:00:04 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id")
	f.Add("2026-11-22T10:00:00+00:00 web1 sshd[1]: Accepted password for root from 203.0.113.9 port 1 ssh2")
	f.Add("Nov 22 10:00:09 web1 useradd[5000]: new user: name=x, UID=99999999999999999999999, GID=0, home=/")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := ParseSecurity([]byte(line), now)
		if ok && (e.User == "" || e.Kind == "" || !strings.Contains(line, e.User)) {
			t.Fatalf("%q: %+v", line, e)
		}
	})
}
