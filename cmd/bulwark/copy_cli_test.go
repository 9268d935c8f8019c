package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyCommand: an offsite copy made with shared parameters receives
// the snapshots once, then only what changed; a write-only destination key
// works; bad input gets clear errors.
func TestCopyCommand(t *testing.T) {
	c, _ := repoCLI(t)
	dst := filepath.Join(t.TempDir(), "offsite")
	c = c.with("BULWARK_TO_PASSWORD", "offsite password")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(strings.Repeat(name, 1000*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, c, "repo", "init")
	mustRun(t, c, "backup", "--tag", "daily", src)
	mustRun(t, c, "backup", "--tag", "hourly", src)

	// The destination shares the source's parameters.
	dc := c.with("BULWARK_REPO", dst).with("BULWARK_PASSWORD", "offsite password").
		with("BULWARK_FROM_PASSWORD", "cli test password")
	mustRun(t, dc, "repo", "init", "--copy-params-from", c.vars["BULWARK_REPO"])

	type result struct {
		Copied  []struct{ Source, Copy string } `json:"copied"`
		Skipped []string                        `json:"skipped"`
		Blobs   int64                           `json:"blobs_copied"`
		SameIDs bool                            `json:"same_ids"`
		Checked int64                           `json:"blobs_verified"`
		OK      bool                            `json:"verified"`
	}
	copyJSON := func(args ...string) result {
		t.Helper()
		out := mustRun(t, c, append([]string{"copy", "--json", "--to", dst}, args...)...)
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("copy --json: %v\n%s", err, out)
		}
		return r
	}
	r := copyJSON("--tag", "daily")
	if len(r.Copied) != 1 || !r.SameIDs || !r.OK || r.Blobs == 0 || r.Checked == 0 {
		t.Fatalf("copy --tag daily: %+v", r)
	}
	r = copyJSON()
	// The hourly snapshot has the same files: at most the trees of the
	// directories above src (whose mtimes other tests move) are new.
	if len(r.Copied) != 1 || len(r.Skipped) != 1 || r.Blobs > 4 {
		t.Fatalf("copy of all after daily: %+v", r)
	}
	r = copyJSON()
	if len(r.Copied) != 0 || len(r.Skipped) != 2 {
		t.Fatalf("third copy: %+v", r)
	}
	var snaps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, dc, "snapshots", "--json")), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("destination snapshots: %v %+v", err, snaps)
	}
	mustRun(t, dc, "repo", "check", "--read-data")
	target := t.TempDir()
	mustRun(t, dc, "restore", "latest", "--target", target, "--verify")
	if b, err := os.ReadFile(filepath.Join(target, src, "c")); err != nil || len(b) != 3000 {
		t.Fatalf("restored copy: %d bytes, %v", len(b), err)
	}

	// A write-only key on the destination receives copies too.
	wo := dc.with("BULWARK_NEW_PASSWORD", "write only")
	mustRun(t, wo, "repo", "key", "add", "--write-only")
	if err := os.WriteFile(filepath.Join(src, "d"), []byte("new file"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "backup", src)
	out := mustRun(t, c.with("BULWARK_TO_PASSWORD", "write only"), "copy", "--to", dst, "latest")
	if !strings.Contains(out, "copied ") {
		t.Errorf("copy to a write-only key: %q", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"copy"}, "--to LOCATION is required"},
		{[]string{"copy", "--to", c.vars["BULWARK_REPO"]}, "is the source repository"},
		{[]string{"copy", "--to", dst, "ffffffff"}, "no snapshot"},
		{[]string{"copy", "--to", dst, "--tag", "none"}, "no snapshot to copy"},
		{[]string{"copy", "--to", filepath.Join(t.TempDir(), "missing")}, "missing"},
	} {
		code, _, errOut := c.run("", tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("bulwark %s: exit %d, stderr %q, want it to say %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
	code, _, errOut := c.with("BULWARK_TO_PASSWORD", "wrong").run("", "copy", "--to", dst)
	if code != 3 {
		t.Errorf("wrong destination password: exit %d, %s", code, errOut)
	}
}
