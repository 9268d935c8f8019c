package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoCLI is a CLI environment with a repository location and password.
func repoCLI(t *testing.T) (*cliEnv, string) {
	dir := filepath.Join(t.TempDir(), "repo")
	c := newCLI(t).with("BULWARK_REPO", dir).with("BULWARK_PASSWORD", "cli test password").
		with("BULWARK_CACHE_DIR", t.TempDir())
	return c, dir
}

func mustRun(t *testing.T, c *cliEnv, args ...string) string {
	t.Helper()
	code, out, errOut := c.run("", args...)
	if code != 0 {
		t.Fatalf("bulwark %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestRepoCommands(t *testing.T) {
	c, dir := repoCLI(t)
	src := filepath.Join(t.TempDir(), "src")
	files := map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n", "-dash": "dash\n", "sp ace": "space\n"}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, c, "repo", "init")
	if code, _, errOut := c.run("", "repo", "init"); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second init: %d %s", code, errOut)
	}

	var sum struct {
		SnapshotID      string  `json:"snapshot_id"`
		FilesNew        int     `json:"files_new"`
		FilesChanged    int     `json:"files_changed"`
		FilesUnmodified int     `json:"files_unmodified"`
		BytesAdded      int64   `json:"bytes_added"`
		Duration        float64 `json:"duration_seconds"`
	}
	out := mustRun(t, c, "backup", "--json", "--tag", "first", src)
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if sum.FilesNew != 4 || sum.SnapshotID == "" || sum.BytesAdded == 0 {
		t.Fatalf("first backup summary: %+v", sum)
	}
	first := sum.SnapshotID

	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, c, "backup", "--json", src)
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.FilesChanged != 1 || sum.FilesUnmodified != 3 || sum.FilesNew != 0 {
		t.Fatalf("second backup summary: %+v", sum)
	}
	second := sum.SnapshotID
	// Without --json the id alone goes to stdout.
	if out := strings.TrimSpace(mustRun(t, c, "backup", src)); len(out) != 64 {
		t.Fatalf("backup stdout: %q", out)
	}

	var snaps []struct {
		ID    string   `json:"id"`
		Tags  []string `json:"tags"`
		Paths []string `json:"paths"`
		Size  int64    `json:"size"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, c, "snapshots", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 || snaps[0].ID != first || snaps[0].Tags[0] != "first" || snaps[0].Paths[0] != src || snaps[0].Size != 22 {
		t.Fatalf("snapshots (first %s): %+v", first, snaps)
	}
	if txt := mustRun(t, c, "snapshots", "--tag", "first"); !strings.Contains(txt, first[:8]) || strings.Contains(txt, second[:8]) {
		t.Fatalf("snapshots --tag:\n%s", txt)
	}

	ls := mustRun(t, c, "ls", first[:8])
	for name := range files {
		if !strings.Contains(ls, filepath.Join(src, name)) {
			t.Errorf("ls lacks %s:\n%s", name, ls)
		}
	}
	if got := mustRun(t, c, "cat", "file", first, filepath.Join(src, "a.txt")); got != "alpha\n" {
		t.Fatalf("cat file: %q", got)
	}
	if d := mustRun(t, c, "diff", first, second); !strings.Contains(d, "M  "+filepath.Join(src, "a.txt")) {
		t.Fatalf("diff:\n%s", d)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, c, "cat", "config")), &cfg); err != nil || cfg["version"] != 1.0 {
		t.Fatalf("cat config: %v %v", cfg, err)
	}

	target := t.TempDir()
	mustRun(t, c, "restore", first, "--target", target, "--verify")
	if b, _ := os.ReadFile(filepath.Join(target, src, "a.txt")); string(b) != "alpha\n" {
		t.Fatalf("restored a.txt: %q", b)
	}
	target2 := t.TempDir()
	mustRun(t, c, "restore", "latest", "--target", target2, "--include", filepath.Join(src, "sub"))
	if _, err := os.Stat(filepath.Join(target2, src, "a.txt")); !os.IsNotExist(err) {
		t.Fatalf("--include restored a file outside it: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target2, src, "sub", "b.txt")); string(b) != "beta\n" {
		t.Fatalf("--include: %q", b)
	}

	// A write-only key backs up but cannot list or restore.
	pwFile := filepath.Join(t.TempDir(), "client.pw")
	if err := os.WriteFile(pwFile, []byte("client password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "repo", "key", "add", "--write-only", "--new-password-file", pwFile)
	client := c.with("BULWARK_PASSWORD", "client password")
	mustRun(t, client, "backup", src)
	if code, _, errOut := client.run("", "snapshots"); code == 0 || !strings.Contains(errOut, "write-only") {
		t.Fatalf("write-only snapshots: %d %s", code, errOut)
	}
	if code, _, errOut := client.run("", "repo", "key", "add", "--new-password-file", pwFile); code == 0 || !strings.Contains(errOut, "write-only") {
		t.Fatalf("write-only key add: %d %s", code, errOut)
	}
	var keys []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, c, "repo", "key", "list", "--json")), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("key list: %v %v", keys, err)
	}

	// Wrong password: exit 3, a clear message, nothing changed.
	before := treeHash(t, dir)
	if code, _, errOut := c.with("BULWARK_PASSWORD", "nope").run("", "snapshots"); code != 3 || !strings.Contains(errOut, "no key") {
		t.Fatalf("wrong password: %d %s", code, errOut)
	}
	if treeHash(t, dir) != before {
		t.Fatal("a failed open changed the repository")
	}
	// No password at all.
	noPW := newCLI(t).with("BULWARK_REPO", dir)
	if code, _, errOut := noPW.run("", "snapshots"); code != 2 || !strings.Contains(errOut, "BULWARK_PASSWORD") {
		t.Fatalf("no password: %d %s", code, errOut)
	}
	// No repository.
	if code, _, errOut := newCLI(t).with("BULWARK_PASSWORD", "x").run("", "snapshots"); code != 2 || !strings.Contains(errOut, "--repo") {
		t.Fatalf("no repo: %d %s", code, errOut)
	}
	// Not a repository.
	if code, _, errOut := c.with("BULWARK_REPO", t.TempDir()).run("", "snapshots"); code == 0 || !strings.Contains(errOut, "repository") {
		t.Fatalf("not a repo: %d %s", code, errOut)
	}
}

func TestBackupStdin(t *testing.T) {
	c, _ := repoCLI(t)
	mustRun(t, c, "repo", "init")
	dump := strings.Repeat("COPY users FROM stdin;\n", 50000)
	code, out, errOut := c.run(dump, "backup", "--stdin", "--stdin-name", "users.sql", "--tag", "db", "--json")
	if code != 0 {
		t.Fatalf("stdin backup: %d %s", code, errOut)
	}
	var sum struct {
		SnapshotID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, c, "cat", "file", sum.SnapshotID, "users.sql"); got != dump {
		t.Fatalf("dump restored with %d bytes, want %d", len(got), len(dump))
	}
	if code, _, errOut := c.run("", "backup", "--stdin", "/etc"); code != 2 || !strings.Contains(errOut, "--stdin takes no paths") {
		t.Fatalf("--stdin with paths: %d %s", code, errOut)
	}
}

// treeHash summarises every file's name, size and content.
func treeHash(t *testing.T, dir string) string {
	var sb strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		sb.WriteString(p)
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sb.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}
