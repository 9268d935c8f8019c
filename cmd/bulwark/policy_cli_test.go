package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCommands: a policy in a configuration file is run, listed,
// inspected and restore-tested from the command line; the evidence is
// what the acceptance interface names.
func TestPolicyCommands(t *testing.T) {
	base := t.TempDir()
	primary, offsite := filepath.Join(base, "primary"), filepath.Join(base, "offsite")
	src := filepath.Join(base, "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(src, "d", fmt.Sprintf("f%d", i)), []byte(strings.Repeat("z", 100*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(base, "bulwark.yaml")
	yaml := fmt.Sprintf(`continuity:
  repositories:
    - name: primary
      location: %s
      password: {env: REPO_PW}
    - name: offsite
      location: %s
      password: {env: REPO_PW}
  policies:
    - name: web
      sources:
        - paths: [%s]
        - command: [seq, "1", "300"]
          output: numbers.txt
      schedule: every 1h
      repository: primary
      offsite: [offsite]
      retention: {keep_last: 3}
      rpo: 1h
`, primary, offsite, src)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t).with("REPO_PW", "policy test password").with("BULWARK_PASSWORD", "policy test password").
		with("BULWARK_FROM_PASSWORD", "policy test password").with("BULWARK_CACHE_DIR", t.TempDir())
	mustRun(t, c, "repo", "init", "--repo", primary)
	mustRun(t, c, "repo", "init", "--repo", offsite, "--copy-params-from", primary)
	flags := []string{"--config", cfg, "--data", filepath.Join(base, "data")}

	var rep struct {
		OK      bool `json:"ok"`
		Sources []struct {
			Source, Snapshot string
		} `json:"sources"`
		Copies []struct {
			Repository string `json:"repository"`
			Copied     int    `json:"snapshots_copied"`
		} `json:"copies"`
	}
	out := mustRun(t, c, append([]string{"policy", "run", "web", "--json"}, flags...)...)
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK || len(rep.Sources) != 2 || rep.Copies[0].Copied != 2 {
		t.Fatalf("policy run: %v %+v\n%s", err, rep, out)
	}
	if out := mustRun(t, c, append([]string{"policy", "list"}, flags...)...); !strings.Contains(out, "web") || !strings.Contains(out, "ok") {
		t.Errorf("policy list:\n%s", out)
	}
	out = mustRun(t, c, append([]string{"policy", "status", "web", "--json"}, flags...)...)
	if !strings.Contains(out, `"breached": false`) || !strings.Contains(out, `"status": "ok"`) {
		t.Errorf("policy status:\n%s", out)
	}

	var ev struct {
		Policy   string  `json:"policy"`
		Result   string  `json:"result"`
		Duration float64 `json:"duration_seconds"`
		Tests    []struct {
			Snapshot      string  `json:"snapshot"`
			FilesVerified int64   `json:"files_verified"`
			Bytes         int64   `json:"bytes"`
			Recovery      float64 `json:"recovery_seconds"`
			DataAge       float64 `json:"data_age_seconds"`
		} `json:"tests"`
	}
	out = mustRun(t, c, append([]string{"restore-test", "web", "--json"}, flags...)...)
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Result != "passed" || len(ev.Tests) != 2 || ev.Tests[0].FilesVerified != 20 || ev.Tests[0].Snapshot == "" {
		t.Fatalf("restore-test --json: %v %+v\n%s", err, ev, out)
	}
	if out := mustRun(t, c, append([]string{"policy", "scrub", "web"}, flags...)...); !strings.Contains(out, "0 problems") {
		t.Errorf("scrub: %s", out)
	}

	standby := filepath.Join(base, "standby")
	if out := mustRun(t, c, append([]string{"drp", "activate", "web", "--target", standby}, flags...)...); !strings.Contains(out, "complete") {
		t.Errorf("drp activate: %s", out)
	}
	if b, err := os.ReadFile(filepath.Join(standby, src, "d", "f19")); err != nil || len(b) != 1900 {
		t.Errorf("standby file: %d bytes, %v", len(b), err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "run", "nope"}, "no such policy"},
		{[]string{"policy", "run"}, "give one policy name"},
		{[]string{"restore-test"}, "give one policy name"},
	} {
		code, _, errOut := c.run("", append(tc.args, flags...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errOut)
		}
	}
	empty := filepath.Join(base, "empty.yaml")
	os.WriteFile(empty, []byte("log: {level: warn}\n"), 0o600)
	if code, _, errOut := c.run("", "policy", "list", "--config", empty, "--data", filepath.Join(base, "data2")); code != 2 || !strings.Contains(errOut, "no backup policy") {
		t.Errorf("no policies: exit %d, %q", code, errOut)
	}
}
