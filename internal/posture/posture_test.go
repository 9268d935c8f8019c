package posture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree writes files below a fresh root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		f := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func finding(t *testing.T, r *Report, id string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %s", id)
	return Finding{}
}

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func audit(t *testing.T, files map[string]string) *Report {
	t.Helper()
	return Auditor{Root: tree(t, files), Now: func() time.Time { return now }}.Audit()
}

func expect(t *testing.T, r *Report, id string, st Status, evidence string) {
	t.Helper()
	f := finding(t, r, id)
	if f.Status != st || !strings.Contains(strings.Join(f.Evidence, " | "), evidence) {
		t.Errorf("%s: %s %q, want %s with %q", id, f.Status, f.Evidence, st, evidence)
	}
}

func TestSSHD(t *testing.T) {
	tests := []struct {
		name   string
		config string
		extra  map[string]string
		check  map[string][2]string // id -> status, evidence
	}{
		{"debian default", "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\nKbdInteractiveAuthentication no\nUsePAM yes\n", nil,
			map[string][2]string{"ssh.root_login": {"pass", "not set: sshd's default, prohibit-password"}, "ssh.password_auth": {"fail", "not set: sshd's default, yes"}, "ssh.port": {"fail", "default, 22"}}},
		{"hardened", "Port 2222\nPermitRootLogin no\nPasswordAuthentication no\n", nil,
			map[string][2]string{"ssh.root_login": {"pass", "permitrootlogin no (/etc/ssh/sshd_config:2)"}, "ssh.password_auth": {"pass", "passwordauthentication no"}, "ssh.port": {"pass", "port 2222"}}},
		{"root login with a password", "PermitRootLogin yes\nPasswordAuthentication yes\n", nil,
			map[string][2]string{"ssh.root_login": {"fail", "permitrootlogin yes (/etc/ssh/sshd_config:1)"}, "ssh.password_auth": {"fail", "passwordauthentication yes"}}},
		{"first value wins, include first", "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n", map[string]string{"etc/ssh/sshd_config.d/50-cloud.conf": "PermitRootLogin yes\nPasswordAuthentication=no\n"},
			map[string][2]string{"ssh.root_login": {"fail", "permitrootlogin yes (/etc/ssh/sshd_config.d/50-cloud.conf:1)"}, "ssh.password_auth": {"pass", "passwordauthentication no"}}},
		{"match blocks are not the default", "PasswordAuthentication no\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n", nil,
			map[string][2]string{"ssh.root_login": {"pass", "default, prohibit-password"}}},
		{"an include cannot leave the root", "Include /../../../etc/ssh/other.conf\nBanner /etc/a=b\n", map[string]string{"etc/ssh/other.conf": "PermitRootLogin no\n"},
			map[string][2]string{"ssh.root_login": {"pass", "permitrootlogin no (/etc/ssh/other.conf:1)"}}},
		{"relative include, case and quotes", "include sshd_config.d/x.conf\n", map[string]string{"etc/ssh/sshd_config.d/x.conf": "PERMITROOTLOGIN \"Without-Password\"\n"},
			map[string][2]string{"ssh.root_login": {"pass", "permitrootlogin without-password"}}},
		{"dsa host key", "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_dsa_key\n", map[string]string{"etc/ssh/ssh_host_dsa_key": "x", "etc/ssh/ssh_host_ed25519_key.pub": "x"},
			map[string][2]string{"ssh.host_keys": {"fail", "HostKey /etc/ssh/ssh_host_dsa_key (/etc/ssh/sshd_config:2)"}}},
		{"ed25519 and ecdsa keys", "HostKey /etc/ssh/ssh_host_ecdsa_key\n", map[string]string{"etc/ssh/ssh_host_ed25519_key.pub": "x", "etc/ssh/ssh_host_ecdsa_key.pub": "x"},
			map[string][2]string{"ssh.host_keys": {"pass", "ssh_host_ed25519_key.pub"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"etc/ssh/sshd_config": tt.config}
			for k, v := range tt.extra {
				files[k] = v
			}
			r := audit(t, files)
			for id, w := range tt.check {
				expect(t, r, id, Status(w[0]), w[1])
			}
		})
	}
	r := audit(t, map[string]string{})
	expect(t, r, "ssh.root_login", Skipped, "OpenSSH's server is not installed")
}

func TestPublicListeners(t *testing.T) {
	// 127.0.0.1:5432 and [::1]:6379 loopback; 0.0.0.0:22 and [::]:443
	// expected; 0.0.0.0:3306 and 192.0.2.7:8080 not; a connection
	// (state 01) is not a listener.
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 7187 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9620 1 0 100 0 0 10 0
   2: 00000000:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 9621 1 0 100 0 0 10 0
   3: 070200C0:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 9622 1 0 100 0 0 10 0
   4: 070200C0:0016 0B0200C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 9623 1 0 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 1 1 0 100 0 0 10 0
   1: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 2 1 0 100 0 0 10 0
`
	r := audit(t, map[string]string{"proc/net/tcp": tcp, "proc/net/tcp6": tcp6})
	f := finding(t, r, "net.public_listeners")
	want := []string{"0.0.0.0:3306 (every address), uid 107", "192.0.2.7:8080, uid 1000"}
	if f.Status != Fail || strings.Join(f.Evidence, "|") != strings.Join(want, "|") {
		t.Errorf("listeners %s %q, want %q", f.Status, f.Evidence, want)
	}
	r = audit(t, map[string]string{"proc/net/tcp": strings.Join(strings.Split(tcp, "\n")[:3], "\n")})
	expect(t, r, "net.public_listeners", Pass, "expected: 0.0.0.0:22 (every address)")
	r = audit(t, map[string]string{"proc/net/tcp": "header\n   0: zz:0016 00000000:0000 0A 0 0 0 0 0 0\n"})
	expect(t, r, "net.public_listeners", Unknown, "bad address")
	r = audit(t, map[string]string{})
	expect(t, r, "net.public_listeners", Unknown, "no ")
}

func TestTmpMounts(t *testing.T) {
	good := "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0\ntmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec 0 0\n"
	expect(t, audit(t, map[string]string{"proc/self/mounts": good}), "fs.tmp_noexec", Pass, "/tmp rw,nosuid,nodev,noexec,relatime")
	bad := "/dev/vda1 / ext4 rw,relatime 0 0\ntmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0\n"
	r := audit(t, map[string]string{"proc/self/mounts": bad})
	expect(t, r, "fs.tmp_noexec", Fail, "/tmp is not a separate filesystem")
	expect(t, r, "fs.tmp_noexec", Fail, "/dev/shm is mounted rw,nosuid,nodev, without noexec")
	// A later mount over the same point wins.
	over := good + "tmpfs /tmp tmpfs rw 0 0\n"
	expect(t, audit(t, map[string]string{"proc/self/mounts": over}), "fs.tmp_noexec", Fail, "/tmp is mounted rw, without noexec,nosuid,nodev")
}

func TestEndOfLife(t *testing.T) {
	for _, tt := range []struct {
		osr  string
		st   Status
		want string
	}{
		{"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n", Pass, "security support ends 2028-06-30"},
		{"PRETTY_NAME=\"Debian GNU/Linux 10 (buster)\"\nID=debian\nVERSION_ID=\"10\"\n", Fail, "ends 2024-06-30 (past)"},
		{"PRETTY_NAME=\"Ubuntu 25.04\"\nID=ubuntu\nVERSION_ID=\"25.04\"\n", Fail, "(past)"},
		{"PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nID=ubuntu\nVERSION_ID=\"24.04\"\n", Pass, "2029-05-31"},
		{"PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nID=debian\n", Unknown, "no end-of-life date"},
		{"PRETTY_NAME=\"Arch Linux\"\nID=arch\n", Unknown, "not in the shipped end-of-life table"},
	} {
		r := audit(t, map[string]string{"etc/os-release": tt.osr})
		expect(t, r, "os.end_of_life", tt.st, tt.want)
	}
	// Within 90 days of the end: a failure already.
	r := Auditor{Root: tree(t, map[string]string{"etc/os-release": "PRETTY_NAME=\"Debian 11\"\nID=debian\nVERSION_ID=11\n"}),
		Now: func() time.Time { return time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC) }}.Audit()
	expect(t, r, "os.end_of_life", Fail, "(in 62 days)")
	expect(t, audit(t, map[string]string{}), "os.end_of_life", Unknown, "missing")
}

func TestAccounts(t *testing.T) {
	r := audit(t, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
		"etc/shadow": "root:$y$j9T$abc:19000:0:99999:7:::\ntoor::19000::::::\nalice:!:19000::::::\n",
	})
	expect(t, r, "accounts.uid0", Fail, "toor has UID 0 (/etc/passwd:2)")
	expect(t, r, "accounts.empty_password", Fail, "toor has an empty password (/etc/shadow:2)")
	if !r.HighFailed() || r.Failed[High] < 2 {
		t.Errorf("high failures %v", r.Failed)
	}
	if r.Findings[0].Status != Fail || r.Findings[0].Severity != High {
		t.Errorf("failures come first, highest first: %+v", r.Findings[0])
	}
	r = audit(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/bash\n", "etc/shadow": "root:*:1::::::\n"})
	expect(t, r, "accounts.uid0", Pass, "only root")
	expect(t, r, "accounts.empty_password", Pass, "locked")
	// An unreadable shadow is unknown, never a pass.
	expect(t, audit(t, map[string]string{}), "accounts.empty_password", Unknown, "needs root")
}

func TestTimeSync(t *testing.T) {
	root := tree(t, map[string]string{})
	for _, tt := range []struct {
		fn   func() (bool, error)
		st   Status
		want string
	}{
		{nil, Skipped, "another root"},
		{func() (bool, error) { return true, nil }, Pass, "synchronised"},
		{func() (bool, error) { return false, nil }, Fail, "TIME_ERROR"},
		{func() (bool, error) { return false, errors.New("EPERM") }, Unknown, "EPERM"},
	} {
		r := Auditor{Root: root, ClockSynced: tt.fn}.Audit()
		expect(t, r, "time.sync", tt.st, tt.want)
	}
}

// TestThisHost runs every check on the real host: each gives a status and
// evidence, and nothing panics.
func TestThisHost(t *testing.T) {
	r := Auditor{ClockSynced: ClockSynced}.Audit()
	if len(r.Findings) != len(Checks()) {
		t.Fatalf("%d findings for %d checks", len(r.Findings), len(Checks()))
	}
	for _, f := range r.Findings {
		if f.Status == "" || len(f.Evidence) == 0 || f.Remediation == "" {
			t.Errorf("%s: status %q, evidence %q", f.ID, f.Status, f.Evidence)
		}
	}
	expect(t, r, "os.end_of_life", Pass, "Debian")
	// This host's running firewall and apt are read, not skipped as for
	// an audit of another root.
	for _, id := range []string{"net.firewall_policy", "updates.security", "updates.automatic"} {
		if f := finding(t, r, id); f.Status == Skipped {
			t.Errorf("%s skipped on this host: %q", id, f.Evidence)
		}
	}
}

// FuzzProcNetTCP: /proc/net/tcp of an audited image is untrusted text.
func FuzzProcNetTCP(f *testing.F) {
	f.Add([]byte("hdr\n   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 7187\n"), false)
	f.Add([]byte("hdr\n   0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		ls, err := parseProcNetTCP(b, v6)
		if err == nil {
			for _, l := range ls {
				if !l.addr.IsValid() {
					t.Fatalf("invalid address from %q", b)
				}
			}
		}
	})
}

func TestSetIDAndWorldWritable(t *testing.T) {
	root := tree(t, map[string]string{
		"usr/bin/passwd": "x", "usr/local/bin/rootme": "x", "usr/bin/ls": "x",
		"etc/cron.d/evil": "* * * * * root sh /tmp/x\n", "etc/hosts": "127.0.0.1 localhost\n",
		"usr/share/drop/x": "x", "var/lib/shared/x": "x",
	})
	chmod := func(p string, m os.FileMode) {
		t.Helper()
		if err := os.Chmod(filepath.Join(root, p), m); err != nil {
			t.Fatal(err)
		}
	}
	chmod("usr/bin/passwd", 0o755|os.ModeSetuid)
	chmod("usr/local/bin/rootme", 0o755|os.ModeSetuid)
	chmod("etc/cron.d/evil", 0o666)
	chmod("usr/share/drop", 0o777)
	chmod("var/lib/shared", 0o777|os.ModeSticky)
	r := Auditor{Root: root}.Audit()
	expect(t, r, "fs.setid", Fail, "/usr/local/bin/rootme (set-user-ID")
	if f := finding(t, r, "fs.setid"); len(f.Evidence) != 1 {
		t.Errorf("the expected /usr/bin/passwd was reported: %q", f.Evidence)
	}
	expect(t, r, "fs.world_writable", Fail, "/etc/cron.d/evil (file")
	expect(t, r, "fs.world_writable", Fail, "/usr/share/drop (directory without the sticky bit")
	if f := finding(t, r, "fs.world_writable"); len(f.Evidence) != 2 {
		t.Errorf("a sticky directory was reported: %q", f.Evidence)
	}
	chmod("usr/local/bin/rootme", 0o755)
	chmod("etc/cron.d/evil", 0o644)
	chmod("usr/share/drop", 0o755)
	r = Auditor{Root: root}.Audit()
	expect(t, r, "fs.setid", Pass, "1 set-ID programs, all expected")
	expect(t, r, "fs.world_writable", Pass, "no world-writable file")
	// Many findings: the evidence is capped and says how many more.
	for i := range 25 {
		p := filepath.Join(root, "etc", fmt.Sprintf("w%02d", i))
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		chmod(filepath.Join("etc", fmt.Sprintf("w%02d", i)), 0o666)
	}
	f := finding(t, Auditor{Root: root}.Audit(), "fs.world_writable")
	if len(f.Evidence) != maxEvidence+1 || f.Evidence[maxEvidence] != "... and 5 more" {
		t.Errorf("evidence %d lines, last %q", len(f.Evidence), f.Evidence[len(f.Evidence)-1])
	}
}
