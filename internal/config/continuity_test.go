package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const contRepos = `continuity:
  repositories:
    - name: local
      location: /srv/backup
      password: {env: PW}
    - name: vault
      location: https://127.0.0.1:8443/web
      password: {env: PW2}
      vault_token: {env: TOK}
  policies:
`

func TestContinuityValid(t *testing.T) {
	in := contRepos + `    - name: web
      sources:
        - paths: [/var/www]
          exclude: ["*.tmp"]
        - postgres: {env: DSN}
        - command: [pg_dumpall, --globals-only]
          output: globals.sql
      schedule: every 2h
      repository: local
      offsite: [vault]
      retention: {keep_daily: 7, prune: true}
      rpo: 3h
`
	cfg, err := Parse("bulwark.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.Continuity.PolicyByName("web")
	if !ok || len(p.Sources) != 3 || p.Sources[2].Output != "globals.sql" || p.RPO.D().Hours() != 3 || p.Offsite[0] != "vault" {
		t.Fatalf("policy: %+v", p)
	}
	if r, ok := cfg.Continuity.RepositoryByName("vault"); !ok || r.VaultToken.Env() != "TOK" {
		t.Fatalf("repository: %+v", r)
	}
}

func TestContinuityErrors(t *testing.T) {
	saved := ScheduleCheck
	ScheduleCheck = func(s string) error {
		if s == "sometimes" {
			return errors.New(`"sometimes": not an interval, @shortcut or cron line`)
		}
		return nil
	}
	defer func() { ScheduleCheck = saved }()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown repository", contRepos + "    - name: web\n      sources: [{paths: [/a]}]\n      repository: nas\n      offsite: [tape]\n", []string{
			`bulwark.yaml:13: continuity.policies[0].repository: "nas" is not a repository name (known: local, vault)`,
			`bulwark.yaml:14: continuity.policies[0].offsite[0]: "tape" is not a repository name (known: local, vault)`,
		}},
		{"source kinds", contRepos + "    - name: web\n      sources:\n        - paths: [/a]\n          postgres: {env: D}\n        - exclude: [x]\n      repository: local\n", []string{
			`bulwark.yaml:13: continuity.policies[0].sources[0]: give exactly one of paths, postgres, mysql or command (got 2)`,
			`bulwark.yaml:15: continuity.policies[0].sources[1]: give exactly one of paths, postgres, mysql or command (got 0)`,
			`bulwark.yaml:15: continuity.policies[0].sources[1].exclude: only applies to paths`,
		}},
		{"bad schedule and names", contRepos + "    - name: Web\n      sources: [{paths: [relative]}]\n      repository: local\n      schedule: sometimes\n    - name: Web\n      sources: [{command: [x]}]\n      repository: local\n", []string{
			`bulwark.yaml:11: continuity.policies[0].name: "Web": use a lower-case letter, then up to 62 of a-z, 0-9, _ and -`,
			`bulwark.yaml:12: continuity.policies[0].sources[0].paths[0]: "relative" is not an absolute path; give the full path starting with /`,
			`bulwark.yaml:14: continuity.policies[0].schedule: "sometimes": not an interval, @shortcut or cron line`,
			`bulwark.yaml:15: continuity.policies[1].name: "Web" is also policies[0]`,
			`bulwark.yaml:15: continuity.policies[1].name: "Web": use a lower-case letter, then up to 62 of a-z, 0-9, _ and -`,
		}},
		{"repository rules", "continuity:\n  repositories:\n    - name: a\n      location: http://h/x\n    - name: a\n      location: rel/dir\n      password: {env: P}\n      s3_access_key: {env: K}\n", []string{
			`bulwark.yaml:3: continuity.repositories[0].password: required; give {env: NAME} or {file: /path}`,
			`bulwark.yaml:4: continuity.repositories[0].location: plain http is not allowed for a repository; use https:// (insecure: true allows http on a loopback address)`,
			`bulwark.yaml:5: continuity.repositories[1].s3_secret_key: give both s3_access_key and s3_secret_key, or neither`,
			`bulwark.yaml:5: continuity.repositories[1].name: "a" is also repositories[0]`,
			`bulwark.yaml:6: continuity.repositories[1].location: "rel/dir" is not an absolute path`,
		}},
		{"tags and credentials in locations", "continuity:\n  repositories:\n    - name: v\n      location: https://user:pw@vault.example:8443/web\n      password: {env: P}\n  policies:\n    - name: web\n      sources: [{paths: [/a]}]\n      repository: v\n      tags: [nightly, env=prod, env=dev, team=Data Eng, policy=db]\n", []string{
			`bulwark.yaml:4: continuity.repositories[0].location: credentials in the location are not allowed (they would show in reports and logs): use vault_token, or s3_access_key and s3_secret_key`,
			`bulwark.yaml:10: continuity.policies[0].tags[2]: "env=dev": key "env" is already tagged`,
			`bulwark.yaml:10: continuity.policies[0].tags[3]: "team=Data Eng": a key=value tag is also an access-control tag: use letters, digits, '.', '_', '/' and '-' on both sides`,
			`bulwark.yaml:10: continuity.policies[0].tags[4]: "policy=db": the policy=NAME tag is set by Bulwark`,
		}},
		{"retention", contRepos + "    - name: web\n      sources: [{paths: [/a]}]\n      repository: local\n      retention: {prune: true, keep_last: -1}\n      offsite: [local]\n", []string{
			`bulwark.yaml:14: continuity.policies[0].retention.keep_last: must not be negative, got -1`,
			`bulwark.yaml:15: continuity.policies[0].offsite[0]: "local" is already a target of this policy`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantParseErrors(t, tt.in, tt.want) })
	}
}

// wantParseErrors parses in as bulwark.yaml and compares its errors, in
// order, with want.
func wantParseErrors(t *testing.T, in string, want []string) {
	t.Helper()
	_, err := Parse("bulwark.yaml", []byte(in))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse: %v, want Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("errors (-want +got):\n%s\n%s", d, strings.Join(got, "\n"))
	}
}

// The real schedule check: bad syntax and schedules that never fire are
// refused with the line.
func TestContinuitySchedules(t *testing.T) {
	in := contRepos + "    - name: web\n      sources: [{paths: [/a]}]\n      repository: local\n      schedule: \"0 25 * * *\"\n" +
		"    - name: web2\n      sources: [{paths: [/a]}]\n      repository: local\n      schedule: \"0 0 30 2 *\"\n" +
		"    - name: web3\n      sources: [{paths: [/a]}]\n      repository: local\n      schedule: every 2h\n"
	_, err := Parse("bulwark.yaml", []byte(in))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("Parse: %v", err)
	}
	if got := errs[0].Error(); !strings.Contains(got, "bulwark.yaml:14: continuity.policies[0].schedule:") || !strings.Contains(got, "25 is outside 0-23") {
		t.Errorf("first error: %s", got)
	}
	if got := errs[1].Error(); !strings.Contains(got, "policies[1].schedule") || !strings.Contains(got, "never fires") {
		t.Errorf("second error: %s", got)
	}
}
