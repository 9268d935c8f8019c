package main

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/audit"
)

// TestIntegrityCommands is the acceptance interface end to end: init with
// --path, a clean check (exit 0), a changed tree (exit 1, JSON naming
// added, removed and changed paths with their attributes), a tampered
// baseline (exit 2), and an audited accept of one subtree.
func TestIntegrityCommands(t *testing.T) {
	dir := t.TempDir()
	data, tree := filepath.Join(dir, "data"), filepath.Join(dir, "tree")
	for p, c := range map[string]string{"etc/passwd": "root:x:0:0\n", "etc/hosts": "127.0.0.1 localhost\n", "bin/tool": "tool v1"} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(tree, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(tree, p), []byte(c), 0o644))
	}
	base := filepath.Join(dir, "tree.baseline")
	c := newCLI(t)
	d := []string{"--data", data, "--baseline", base}

	var init struct {
		Entries int    `json:"entries"`
		KeyID   string `json:"key_id"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, c, append([]string{"integrity", "init", "--path", tree, "--json"}, d...)...)), &init); err != nil || init.Entries != 6 || init.KeyID == "" {
		t.Fatalf("init: %+v, %v", init, err)
	}
	if st, err := os.Stat(filepath.Join(data, "integrity.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("integrity.key: %v", err)
	}
	if code, out, stderr := c.run("", append([]string{"integrity", "check"}, d...)...); code != 0 {
		t.Fatalf("clean check: exit %d\n%s%s", code, out, stderr)
	}

	must(t, os.WriteFile(filepath.Join(tree, "etc/passwd"), []byte("root:x:0:0\nevil:x:0:0\n"), 0o644))
	must(t, syscall.Chmod(filepath.Join(tree, "bin/tool"), 0o4755))
	must(t, os.Remove(filepath.Join(tree, "etc/hosts")))
	must(t, os.WriteFile(filepath.Join(tree, "bin/dropper"), []byte("x"), 0o755))
	code, out, stderr := c.run("", append([]string{"integrity", "check", "--json"}, d...)...)
	if code != 1 {
		t.Fatalf("check after changes: exit %d, want 1\n%s", code, stderr)
	}
	var rep struct {
		Added, Removed []struct{ Path string }
		Changed        []struct {
			Path       string
			Attributes []string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	if len(rep.Added) != 1 || rep.Added[0].Path != tree+"/bin/dropper" || len(rep.Removed) != 1 || rep.Removed[0].Path != tree+"/etc/hosts" {
		t.Errorf("added %v, removed %v", rep.Added, rep.Removed)
	}
	changed := map[string][]string{}
	for _, ch := range rep.Changed {
		changed[ch.Path] = ch.Attributes
	}
	if a := changed[tree+"/etc/passwd"]; !slices.Contains(a, "hash") || !slices.Contains(a, "size") {
		t.Errorf("etc/passwd changed attributes %v", a)
	}
	if a := changed[tree+"/bin/tool"]; !slices.Contains(a, "mode") {
		t.Errorf("bin/tool changed attributes %v", a)
	}
	code, out, _ = c.run("", append([]string{"integrity", "check"}, d...)...)
	if code != 1 || !strings.Contains(out, "mode: 0644 -> 4755") {
		t.Errorf("text report (exit %d) lacks the mode change:\n%s", code, out)
	}

	// A tampered baseline is refused, and the original is untouched.
	orig, err := os.ReadFile(base)
	must(t, err)
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 1
	tampered := filepath.Join(dir, "tampered.baseline")
	must(t, os.WriteFile(tampered, bad, 0o600))
	if code, _, stderr := c.run("", "integrity", "check", "--data", data, "--baseline", tampered); code != 2 || !strings.Contains(stderr, "signature does not verify") {
		t.Errorf("tampered baseline: exit %d, %s", code, stderr)
	}

	// Accept /etc's changes only: /bin's remain.
	mustRun(t, c, append([]string{"integrity", "accept", "--comment", "passwd reviewed", tree + "/etc"}, d...)...)
	code, out, _ = c.run("", append([]string{"integrity", "check", "--json"}, d...)...)
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("check after accept: exit %d, %v", code, err)
	}
	for _, f := range append(rep.Removed, rep.Added...) {
		if strings.HasPrefix(f.Path, tree+"/etc") {
			t.Errorf("%s still reported after accepting %s/etc", f.Path, tree)
		}
	}
	for _, f := range rep.Changed {
		if strings.HasPrefix(f.Path, tree+"/etc/") {
			t.Errorf("%s still changed after accepting %s/etc", f.Path, tree)
		}
	}
	if len(rep.Added) != 1 {
		t.Errorf("bin/dropper no longer reported: %+v", rep)
	}

	n := 0
	for _, line := range strings.Split(strings.TrimSpace(mustRun(t, c, "audit", "export", "--data", data)), "\n") {
		var e audit.Entry
		must(t, json.Unmarshal([]byte(line), &e))
		if e.Action == "integrity.accept" && strings.HasPrefix(e.Actor, "cli") && e.Details["comment"] == "passwd reviewed" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d audited accepts, want 1", n)
	}

	// AIDE's attribute letters, and the built-in exclusions dropped.
	must(t, os.WriteFile(filepath.Join(tree, "bin/x.swp"), []byte("swap"), 0o644))
	aide := filepath.Join(dir, "aide-style.baseline")
	if err := json.Unmarshal([]byte(mustRun(t, c, "integrity", "init", "--data", data, "--baseline", aide, "--path", tree,
		"--attrs", "p+u+g+s+m+c+i+n+sha256", "--no-default-excludes", "--json")), &init); err != nil || init.Entries != 7 {
		t.Errorf("init --attrs --no-default-excludes: %+v, %v (the .swp file counts)", init, err)
	}
	// accept in a data directory without integrity.key refuses, and makes
	// no key (which would then replace the real one's integrity.pub).
	other := filepath.Join(dir, "other-data")
	pubCopy := filepath.Join(dir, "integrity.pub")
	pub, err := os.ReadFile(filepath.Join(data, "integrity.pub"))
	must(t, err)
	must(t, os.WriteFile(pubCopy, pub, 0o644))
	if code, _, stderr := c.run("", "integrity", "accept", "--data", other, "--baseline", base, "--public-key", pubCopy); code == 0 || !strings.Contains(stderr, "integrity.key") {
		t.Errorf("accept without the key: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(other, "integrity.key")); err == nil {
		t.Error("accept created a signing key")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"integrity", "init", "--data", data, "--baseline", aide, "--path", tree, "--attrs", "colour"}, `unknown attribute "colour"`},
		{[]string{"integrity", "init", "--data", data, "--baseline", aide, "--attrs", "mode"}, "--attrs applies to --path rules"},
		{[]string{"integrity", "check", "--data", data}, filepath.Join(data, "integrity.baseline") + ": no such file"}, // the default
		{[]string{"integrity", "init", "--data", data, "--baseline", base, "--hash", "md5", "--path", tree}, `hash "md5"`},
		{[]string{"integrity", "check", "--data", data, "--baseline", filepath.Join(dir, "missing")}, "no such file"},
	} {
		if code, _, stderr := c.run("", tc.args...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("bulwark %s: exit %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestIntegrityWatchCommand runs `integrity watch --json` as a process:
// its first scan, a change reported as one JSON line with its attributes
// and delay, exit 0 on SIGINT; and a tampered baseline refused (exit 2).
func TestIntegrityWatchCommand(t *testing.T) {
	dir := t.TempDir()
	data, tree := filepath.Join(dir, "data"), filepath.Join(dir, "tree")
	must(t, os.MkdirAll(filepath.Join(tree, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "etc", "passwd"), []byte("root:x:0:0\n"), 0o644))
	base := filepath.Join(dir, "tree.baseline")
	c := newCLI(t)
	d := []string{"--data", data, "--baseline", base}
	mustRun(t, c, append([]string{"integrity", "init", "--path", tree}, d...)...)

	if code, _, stderr := runCLI(t, append([]string{"integrity", "watch", "--rescan", "-1s"}, d...)...); code != 2 || !strings.Contains(stderr, "--rescan") {
		t.Errorf("--rescan -1s: exit %d, %s", code, stderr)
	}

	cmd := exec.Command(binary, append([]string{"integrity", "watch", "--json", "--rescan", "0"}, d...)...)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	lines := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"unparsed": sc.Text()}
			}
			lines <- m
		}
		close(lines)
	}()
	next := func(what string, ok func(map[string]any) bool) map[string]any {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case m, open := <-lines:
				if !open {
					t.Fatalf("watch ended before %s: %s", what, stderr.String())
				}
				if m["unparsed"] != nil {
					t.Fatalf("not a JSON line: %v", m["unparsed"])
				}
				if ok(m) {
					return m
				}
			case <-timeout:
				cmd.Process.Kill()
				t.Fatalf("no %s within 20 s: %s", what, stderr.String())
			}
		}
	}
	first := next("first scan", func(m map[string]any) bool { return m["kind"] == "scan" })
	if s, _ := first["scan"].(map[string]any); s["reason"] != "start" || s["differences"] != 0.0 || s["entries"] != 3.0 {
		t.Fatalf("first scan: %v", first)
	}
	passwd := filepath.Join(tree, "etc", "passwd")
	must(t, os.Chmod(passwd, 0o666))
	ev := next("the chmod", func(m map[string]any) bool { return m["kind"] == "changed" && m["path"] == passwd })
	attrs, _ := ev["attributes"].([]any)
	if !slices.Contains(attrs, any("mode")) || ev["source"] != "inotify" || ev["type"] != "file" {
		t.Errorf("changed event: %v", ev)
	}
	if delay, ok := ev["delay_ms"].(float64); !ok || delay < 0 || delay > 20000 {
		t.Errorf("delay_ms: %v", ev["delay_ms"])
	}
	must(t, cmd.Process.Signal(os.Interrupt))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after SIGINT: %v\n%s", err, stderr.String())
	}

	// A baseline edited to hide a change is refused before watching.
	b, err := os.ReadFile(base)
	must(t, err)
	b[len(b)-5] ^= 1
	must(t, os.WriteFile(base, b, 0o644))
	if code, _, stderr := runCLI(t, append([]string{"integrity", "watch", "--json"}, d...)...); code != 2 {
		t.Errorf("tampered baseline: exit %d, want 2\n%s", code, stderr)
	}
}

// TestUpWatchesIntegrity: with integrity.enabled, `bulwark up` records the
// baseline on its first start and a change to a watched file becomes an
// event that the events API lists, graded high.
func TestUpWatchesIntegrity(t *testing.T) {
	data, tree := t.TempDir(), t.TempDir()
	must(t, os.MkdirAll(filepath.Join(tree, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "etc", "sudoers"), []byte("root ALL=(ALL) ALL\n"), 0o440))
	cfg := fmt.Sprintf("integrity:\n  enabled: true\n  root: %s\n  rules:\n    - path: %s\n", tree, tree)
	must(t, os.WriteFile(filepath.Join(data, "bulwark.yaml"), []byte(cfg), 0o600))
	s := startServer(t, data, "BULWARK_ADMIN_PASSWORD=acceptance-admin-password")
	code, out := s.post(t, "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "acceptance-admin-password"})
	tok, _ := out["token"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("login: %d %v", code, out)
	}
	list := func(typ string) []any {
		code, out := s.get(t, "/api/v1/events?type="+typ, tok)
		if code != 200 {
			t.Fatalf("events: %d %v", code, out)
		}
		items, _ := out["items"].([]any)
		return items
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(list("integrity.scan_completed")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no integrity scan within 30 s\n%s", s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(list("integrity.baseline_created")) != 1 {
		t.Fatal("no integrity.baseline_created event")
	}
	must(t, os.WriteFile(filepath.Join(tree, "etc", "sudoers"), []byte("root ALL=(ALL) ALL\nevil ALL=(ALL) NOPASSWD: ALL\n"), 0o440))
	var ev map[string]any
	for ev == nil {
		for _, it := range list("integrity.changed") {
			if m := it.(map[string]any); m["resource"] == "file"+filepath.Join(tree, "etc", "sudoers") {
				ev = m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no integrity.changed event for sudoers\n%s", s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ev["severity"] != "error" || ev["module"] != "integrity" {
		t.Errorf("sudoers event: %v", ev)
	}
	s.stop(t, syscall.SIGTERM)
}

// TestIntegrityPackagesCommand: exit 0 when every package file is as
// installed, 1 with the JSON naming what is not, 2 without a dpkg database.
func TestIntegrityPackagesCommand(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "var/lib/dpkg/info"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("tool"), 0o755))
	sum := md5.Sum([]byte("tool"))
	must(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/info/tool.md5sums"), []byte(hex.EncodeToString(sum[:])+"  usr/bin/tool\n"), 0o644))
	c := newCLI(t)
	if code, out, stderr := c.run("", "integrity", "packages", "--root", root); code != 0 || out != "" {
		t.Fatalf("clean: exit %d %q %s", code, out, stderr)
	}
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("trojan"), 0o755))
	code, out, _ := c.run("", "integrity", "packages", "--root", root, "--json")
	var rep struct {
		Files    int
		Problems []struct{ Path, Package, Problem string }
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 1 || err != nil || rep.Files != 1 || len(rep.Problems) != 1 ||
		rep.Problems[0].Path != "/usr/bin/tool" || rep.Problems[0].Problem != "checksum" || rep.Problems[0].Package != "tool" {
		t.Fatalf("changed: exit %d %v %s", code, err, out)
	}
	if code, _, stderr := c.run("", "integrity", "packages", "--root", t.TempDir()); code != 2 || !strings.Contains(stderr, "no dpkg database") {
		t.Errorf("no dpkg: exit %d %s", code, stderr)
	}
}
