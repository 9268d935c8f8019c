package integrity

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSeverity builds a chroot-like system in a temp directory, changes it
// as an intruder and as an administrator would, and checks how a check
// grades each finding (Policy.Root is the temp directory).
func TestSeverity(t *testing.T) {
	root := t.TempDir()
	for p, c := range map[string]string{
		"/etc/passwd": "root:x:0:0\n", "/etc/hostname": "web1\n", "/etc/cron.d/backup": "0 3 * * * root backup\n",
		"/usr/bin/ls": "ls v1", "/usr/bin/sudo": "sudo", "/usr/lib/lib.so": "lib", "/home/u/.ssh/authorized_keys": "ssh-ed25519 AAAA u\n",
		"/srv/www/index.html": "hello", "/etc/sudoers.d/ops": "ops ALL=(ALL) ALL\n",
		"/usr/bin/python3": "py", "/usr/bin/passwd": "passwd", "/usr/lib/x86_64-linux-gnu/security/pam_unix.so": "pam",
		"/usr/lib/openssh/ssh-keysign": "keysign", "/usr/local/bin/tool": "tool",
	} {
		writeFile(t, root+p, c)
	}
	must(t, syscall.Chmod(root+"/usr/bin/sudo", 0o4755)) // os.Chmod drops 0o4000
	must(t, syscall.Chmod(root+"/usr/lib/openssh/ssh-keysign", 0o4755))
	p := Policy{Hash: SHA256, Root: root, Rules: []Rule{{Path: root, Attrs: AllAttrs}}}
	base := scan(t, p).Entries

	writeFile(t, root+"/etc/passwd", "root:x:0:0\nevil:x:0:0\n")                                     // high: auth file
	writeFile(t, root+"/etc/hostname", "web2\n")                                                     // medium
	writeFile(t, root+"/etc/cron.d/miner", "* * * * * root /tmp/x\n")                                // high: new cron job
	writeFile(t, root+"/usr/bin/ls", "ls trojan")                                                    // high: binary
	writeFile(t, root+"/usr/lib/systemd/system/evil.service", "[Service]\n")                         // high: new unit
	writeFile(t, root+"/home/u/.ssh/authorized_keys", "ssh-ed25519 AAAA u\nssh-ed25519 BBBB evil\n") // high
	writeFile(t, root+"/usr/local/lib/suid", "x")                                                    // high: setuid
	must(t, syscall.Chmod(root+"/usr/local/lib/suid", 0o4755))
	must(t, os.Chmod(root+"/usr/lib/lib.so", 0o666))                                    // high: world-writable
	must(t, os.Chmod(root+"/usr/bin/sudo", 0o755))                                      // medium: setuid dropped
	writeFile(t, root+"/srv/www/index.html", "defaced")                                 // medium
	must(t, os.Remove(root+"/etc/sudoers.d/ops"))                                       // high: auth drop-in removed
	writeFile(t, root+"/etc/ld.so.preload", "/tmp/evil.so\n")                           // high: loader
	writeFile(t, root+"/usr/lib/x86_64-linux-gnu/security/pam_unix.so", "pam backdoor") // high: PAM module
	writeFile(t, root+"/usr/lib/openssh/ssh-keysign", "keysign trojan")                 // high: setuid program changed
	must(t, os.Symlink("/dev/shm/x", root+"/usr/local/bin/sudo"))                       // high: PATH hijack
	if os.Geteuid() == 0 {
		must(t, os.Lchown(root+"/usr/bin/passwd", 1000, 1000)) // high: owner to a user
	}
	if err := unix.Lsetxattr(root+"/usr/bin/python3", "security.capability", capBytes(), 0); err != nil {
		t.Logf("no file capabilities here: %v", err)
	}
	rep := Diff(base, scan(t, p).Entries, Grading{Root: p.Root})

	got := map[string]Finding{}
	for _, fs := range [][]Finding{rep.Added, rep.Removed, rep.Changed} {
		for _, f := range fs {
			got[f.Path[len(root):]] = f
		}
	}
	for _, c := range []struct {
		path, severity, reason string
	}{
		{"/etc/passwd", SeverityHigh, "authentication or privilege configuration changed"},
		{"/etc/hostname", SeverityMedium, ""},
		{"/etc/cron.d/miner", SeverityHigh, "scheduled job or service unit added"},
		{"/usr/bin/ls", SeverityHigh, "system binary changed"},
		{"/usr/lib/systemd/system/evil.service", SeverityHigh, "scheduled job or service unit added"},
		{"/home/u/.ssh/authorized_keys", SeverityHigh, "SSH authorized keys changed"},
		{"/usr/local/lib/suid", SeverityHigh, "new set-user-ID or set-group-ID file"},
		{"/usr/lib/lib.so", SeverityHigh, "world-writable file in a system directory"},
		{"/usr/bin/sudo", SeverityMedium, ""},
		{"/srv/www/index.html", SeverityMedium, ""},
		{"/etc/sudoers.d/ops", SeverityHigh, "authentication or privilege configuration removed"},
		{"/etc/cron.d", SeverityLow, ""}, // a directory whose entries changed
		{"/etc/ld.so.preload", SeverityHigh, "dynamic loader configuration added"},
		{"/usr/lib/x86_64-linux-gnu/security/pam_unix.so", SeverityHigh, "PAM or kernel module changed"},
		{"/usr/lib/openssh/ssh-keysign", SeverityHigh, "set-user-ID or set-group-ID program changed"},
		{"/usr/local/bin/sudo", SeverityHigh, "symlink added in a program directory"},
	} {
		f, ok := got[c.path]
		if !ok {
			t.Errorf("%s: no finding", c.path)
			continue
		}
		if f.Severity != c.severity || (c.reason != "" && !slices.Contains(f.Reasons, c.reason)) || (c.reason == "" && len(f.Reasons) > 0) {
			t.Errorf("%s: %s %q, want %s %q", c.path, f.Severity, f.Reasons, c.severity, c.reason)
		}
	}
	if n := rep.Counts(); n[SeverityHigh] < 13 || n[SeverityLow] == 0 {
		t.Errorf("counts %v", n)
	}
	if f, ok := got["/usr/bin/passwd"]; os.Geteuid() == 0 && (!ok || !slices.Contains(f.Reasons, "owner or group changed to a non-root account in a system directory")) {
		t.Errorf("chown of a system binary: %+v", f)
	}
	if f, ok := got["/usr/bin/python3"]; ok && !slices.Contains(f.Reasons, "file capabilities set") {
		t.Errorf("capabilities on python3: %+v", f)
	}

	// Without content hashes, a rewrite of the same size is not "times
	// only".
	np := Policy{Hash: SHA256, Root: root, Rules: []Rule{{Path: root + "/srv", Attrs: AllAttrs &^ AttrHash}}}
	nbase := scan(t, np).Entries
	writeFile(t, root+"/srv/www/index.html", "DEFACED")
	for _, f := range Diff(nbase, scan(t, np).Entries, Grading{Root: root}).Changed {
		if strings.HasSuffix(f.Path, "index.html") && f.Severity != SeverityMedium {
			t.Errorf("same-size rewrite without hashes: %s", f.Severity)
		}
	}

	// Outside the root nothing is a system path: the same tree checked
	// with root "/" grades by the temp paths, and only what is high
	// wherever it lies (set-user-ID files, authorized_keys) stays high.
	rep = Diff(base, scan(t, p).Entries, Grading{Root: "/"})
	for _, fs := range [][]Finding{rep.Added, rep.Removed, rep.Changed} {
		for _, f := range fs {
			if f.Severity == SeverityHigh && !slices.ContainsFunc(f.Reasons, func(r string) bool {
				return slices.Contains([]string{"new set-user-ID or set-group-ID file", "SSH authorized keys changed",
					"file capabilities set", "set-user-ID or set-group-ID program changed"}, r)
			}) {
				t.Errorf("%s graded high outside its root: %q", f.Path, f.Reasons)
			}
		}
	}
}
