package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPostureAudit: `bulwark posture audit --root DIR` on a prepared
// system: JSON first, exit 1 when a high-severity check fails, 0 when
// none does.
func TestPostureAudit(t *testing.T) {
	root := t.TempDir()
	write := func(p, c string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	write("etc/ssh/sshd_config", "PermitRootLogin yes\nPasswordAuthentication no\n")
	write("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")
	write("etc/passwd", "root:x:0:0::/root:/bin/bash\n")
	write("etc/shadow", "root:*:1::::::\n")
	write("proc/self/mounts", "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec 0 0\ntmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec 0 0\n")
	write("proc/net/tcp", "hdr\n   0: 00000000:0016 00000000:0000 0A 0 0 0 0 0 0\n")
	c := newCLI(t)
	code, out, stderr := c.run("", "posture", "audit", "--root", root, "--json")
	if code != 1 {
		t.Fatalf("PermitRootLogin yes: exit %d, want 1\n%s%s", code, out, stderr)
	}
	var r struct {
		Findings []struct{ ID, Status, Severity string }
		Failed   map[string]int
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Findings[0].ID != "ssh.root_login" || r.Findings[0].Status != "fail" || r.Failed["high"] != 1 {
		t.Errorf("report %+v", r)
	}
	write("etc/ssh/sshd_config", "PermitRootLogin no\nPasswordAuthentication no\n")
	code, out, stderr = c.run("", "posture", "audit", "--root", root)
	if code != 0 || !strings.Contains(out, "PASS     high    ssh.root_login") || !strings.Contains(stderr, "1 failed (0 high)") {
		t.Errorf("hardened: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := c.run("", "posture", "audit", "--allow-ports", "ssh"); code != 2 || !strings.Contains(stderr, `"ssh" is not a port number`) {
		t.Errorf("bad --allow-ports: %d %s", code, stderr)
	}
}
