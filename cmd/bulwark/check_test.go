package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/checker"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// checkTestRepo makes a repository with one backup of a small tree and a
// 2 MiB file, in packs of 1 MiB, and returns its directory and the name
// of one data pack.
func checkTestRepo(t *testing.T) (dir, pack string) {
	t.Helper()
	src := t.TempDir()
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), []byte(strings.Repeat("line of text\n", 100*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i*7 + i/4093)
	}
	if err := os.WriteFile(filepath.Join(src, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	r, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
	if _, err := archiver.Backup(context.Background(), r, []string{src}, archiver.Options{Host: "test"}); err != nil {
		t.Fatal(err)
	}
	var largest int64
	err := filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > largest {
			largest, pack = fi.Size(), fi.Name()
		}
		return err
	})
	if err != nil || pack == "" {
		t.Fatalf("no pack in %s: %v", dir, err)
	}
	return dir, pack
}

func TestRepoCheckCommand(t *testing.T) {
	dir, pack := checkTestRepo(t)
	cli := newCLI(t).with("BULWARK_PASSWORD", repotest.Password)
	flip := func() {
		p := filepath.Join(dir, "data", pack[:2], pack)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/3] ^= 0x10
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	parse := func(t *testing.T, stdout string) checker.Report {
		var rep checker.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("--json output does not parse: %v\n%s", err, stdout)
		}
		return rep
	}
	steps := []step{
		{name: "clean", args: args("repo", "check", "--repo", dir), wantStdout: []string{"checked 1 key, 1 index file,", "no errors were found\n"}},
		{name: "clean read-data", args: args("repo", "check", "--repo", dir, "--read-data"), wantStdout: []string{"read whole", "no errors were found\n"}},
		{name: "clean json", args: args("repo", "check", "--repo", dir, "--read-data-subset", "50%", "--json"), check: func(t *testing.T, stdout, _ string) {
			rep := parse(t, stdout)
			if !rep.OK || len(rep.Errors) != 0 || rep.Stats.PacksRead == 0 || rep.Stats.PacksRead >= rep.Stats.Packs {
				t.Errorf("report %+v; want OK and some but not all packs read", rep)
			}
		}},
		{name: "clean with a lock", args: args("repo", "check", "--repo", dir, "--lock"), wantStdout: []string{"no errors were found"}},
		{name: "flip a bit", args: func() []string { flip(); return []string{"repo", "check", "--repo", dir, "--read-data"} }, wantCode: 1,
			wantStdout: []string{"error: data/" + pack + ": content does not match its name", "errors found\n"}},
		{name: "json names the pack", args: args("repo", "check", "--repo", dir, "--read-data", "--json"), wantCode: 1, check: func(t *testing.T, stdout, _ string) {
			rep := parse(t, stdout)
			found := false
			for _, p := range rep.Errors {
				found = found || p.Object == "data/"+pack
			}
			if rep.OK || !found {
				t.Errorf("report %+v; want an error about data/%s", rep, pack)
			}
		}},
		{name: "subset 1/1", args: args("repo", "check", "--repo", dir, "--read-data-subset", "1/1"), wantCode: 1, wantStdout: []string{"data/" + pack}},
		{name: "wrong password", cli: func() *cliEnv { return cli.with("BULWARK_PASSWORD", "wrong") },
			args: args("repo", "check", "--repo", dir), wantCode: 3, wantStderr: []string{"no key in the repository opens with this password"}},
		{name: "bad subset", args: args("repo", "check", "--repo", dir, "--read-data-subset", "150%"), wantCode: 2, wantStderr: []string{"--read-data-subset"}},
		{name: "both read flags", args: args("repo", "check", "--repo", dir, "--read-data", "--read-data-subset", "1/2"), wantCode: 2},
		{name: "argument", args: args("repo", "check", "--repo", dir, "extra"), wantCode: 2},
		{name: "no repository", args: args("repo", "check", "--repo", filepath.Join(dir, "nothing")), wantCode: 2},
	}
	runSteps(t, cli, steps)
	if _, err := os.Stat(filepath.Join(dir, "locks")); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "locks")); len(ents) != 0 {
		t.Errorf("locks left behind: %v", ents)
	}
}
