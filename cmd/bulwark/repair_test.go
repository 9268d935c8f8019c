package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo/repair"
)

// TestRepoRepairCLI runs `repo repair` on a healthy repository, on one with
// a flipped bit in a pack (repaired from parity, --json) and on one with a
// pack deleted (dry run, then salvage, exit status 1).
func TestRepoRepairCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 3<<20)
	_, _ = rand.Read(big)
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644))
	must(os.WriteFile(filepath.Join(src, "sub", "small.txt"), []byte("small file\n"), 0o644))
	cli := newCLI(t).with("BULWARK_PASSWORD", "repair test").with("BULWARK_REPO", dir)
	runOK := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := cli.run("", append(args, "--no-cache")...)
		if code != wantCode {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, stdout, stderr)
		}
		return stdout, stderr
	}
	runOK(0, "repo", "init", "--parity", "128+2")
	runOK(0, "backup", src)

	if out, _ := runOK(0, "repo", "repair"); !strings.Contains(out, "nothing to repair") {
		t.Errorf("healthy repository: %s", out)
	}
	runOK(2, "repo", "repair", "extra-argument")

	// The largest pack holds big.bin's chunks.
	packsBySize := func() []string {
		var ps []string
		must(filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				ps = append(ps, p)
			}
			return err
		}))
		sort.Slice(ps, func(i, j int) bool {
			a, _ := os.Stat(ps[i])
			b, _ := os.Stat(ps[j])
			return a.Size() > b.Size()
		})
		return ps
	}
	largest := packsBySize()[0]
	orig, err := os.ReadFile(largest)
	must(err)
	damaged := append([]byte(nil), orig...)
	damaged[len(damaged)/3] ^= 0x10
	must(os.WriteFile(largest, damaged, 0o600))
	out, _ := runOK(0, "repo", "repair", "--json")
	var rep repair.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(rep.Packs.Repaired) != 1 || filepath.Base(largest) != rep.Packs.Repaired[0].ID || rep.DataLost() {
		t.Fatalf("--json report: %s", out)
	}
	if now, err := os.ReadFile(largest); err != nil || string(now) != string(orig) {
		t.Fatalf("the pack was not restored byte for byte (%v)", err)
	}

	must(os.Remove(largest))
	out, stderr := runOK(1, "repo", "repair", "--dry-run")
	for _, want := range []string{"dry run", "would salvage", "big.bin"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "would lose") {
		t.Errorf("dry run stderr: %s", stderr)
	}
	// Both files are in the one data pack (16 MiB packs): both are lost.
	out, stderr = runOK(1, "repo", "repair")
	for _, want := range []string{"salvaged", `"` + filepath.Join(src, "big.bin") + `"`, `"` + filepath.Join(src, "sub", "small.txt") + `"`, "1 damaged snapshots removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("repair output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "1 snapshots lost data (2 paths)") {
		t.Errorf("repair stderr: %s", stderr)
	}
	// Nothing is lost any more: the salvaged snapshot is intact.
	out, _ = runOK(0, "repo", "repair", "--json")
	rep = repair.Report{}
	must(json.Unmarshal([]byte(out), &rep))
	if rep.Changed() || rep.Snapshots.Intact != 1 {
		t.Errorf("after salvage: %s", out)
	}
	out, _ = runOK(0, "snapshots", "--json")
	if !strings.Contains(out, "big.bin") {
		t.Errorf("snapshots --json does not show what was lost:\n%s", out)
	}
}
