package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// policyEnv is an API server over two backup policies ("web", tagged
// env=prod, whose one source takes a moment; and "db") that back up into
// a real local repository, with the scheduler running when run is true.
func policyEnv(t *testing.T, db *store.DB, run bool) (*env, *continuity.Service) {
	t.Helper()
	_, dir := repotest.New(t, repotest.Options{})
	cfg := config.Continuity{
		Repositories: []config.Repository{{Name: "primary", Location: dir, Password: config.EnvSecret("REPO_PW")}},
		Policies: []config.Policy{
			{Name: "web", Repository: "primary", Tags: []string{"env=prod", "nightly"}, RPO: config.Duration(time.Hour),
				Sources: []config.Source{{Name: "site", Command: []string{"sh", "-c", "sleep 0.4; echo site"}, Output: "site.txt"},
					{Name: "users", Postgres: config.LiteralSecret("postgres://backup:s3cret@127.0.0.1:1/users")}}},
			{Name: "db", Repository: "primary", Schedule: "every 2h", Sources: []config.Source{{Command: []string{"echo", "db"}}}},
		},
	}
	var svc *continuity.Service
	e := newEnvWith(t, db, func(e *env, d *api.Deps) {
		svc = &continuity.Service{Config: cfg, History: continuity.NewHistory(db), Bus: e.events, Now: time.Now, Logger: slog.New(slog.DiscardHandler),
			Getenv: func(k string) string { return map[string]string{"REPO_PW": repotest.Password}[k] },
			Open:   continuity.RepositoryOpener(func(k string) string { return map[string]string{"REPO_PW": repotest.Password}[k] }, os.ReadFile, t.TempDir())}
		sc := &continuity.Scheduler{Service: svc, Tick: time.Hour}
		if run {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); sc.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
		}
		d.Continuity, d.Scheduler = svc, sc
	})
	return e, svc
}

// waitRun polls a run until it is no longer running (bounded).
func (e *env) waitRun(token, policy string, id int64) continuity.Run {
	e.t.Helper()
	var run continuity.Run
	for range 400 {
		e.want(e.do("GET", fmt.Sprintf("/api/v1/policies/%s/runs/%d", policy, id), token, nil), 200).json(e.t, &run)
		if run.Status != continuity.StatusRunning {
			return run
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("run %d of %s still running after 10 s", id, policy)
	return run
}

// The policy API end to end: list without secrets, run now (202, then
// the recorded evidence), no overlap (409), runs and their evidence, the
// RPO, unknown names, and events naming who started the run.
func TestPolicyAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, _ := policyEnv(t, db, true)
		admin := e.login("admin", adminPassword)

		var list api.List[continuity.PolicySummary]
		r := e.want(e.do("GET", "/api/v1/policies", admin, nil), 200)
		r.json(t, &list)
		if len(list.Items) != 2 || list.Items[0].Name != "web" || list.Items[1].NextBackup.IsZero() || list.Items[0].LastBackup != nil {
			t.Fatalf("policies: %s", r.Body)
		}
		if src := list.Items[0].Sources; len(src) != 2 || src[1].Kind != "postgres" || src[0].Name != "site" {
			t.Errorf("sources: %+v", src)
		}
		if strings.Contains(string(r.Body), "s3cret") || strings.Contains(string(r.Body), "REPO_PW") {
			t.Errorf("the policy list shows a secret: %s", r.Body)
		}

		// Run now: 202 with the run and its address; a second start while
		// it runs is refused; the run ends with its evidence.
		r = e.want(e.do("POST", "/api/v1/policies/db/run", admin, nil), 202)
		var run continuity.Run
		r.json(t, &run)
		if run.ID == 0 || run.Status != continuity.StatusRunning || r.Header.Get("Location") != fmt.Sprintf("/api/v1/policies/db/runs/%d", run.ID) {
			t.Fatalf("run now: %s %v", r.Body, r.Header)
		}
		got := e.waitRun(admin, "db", run.ID)
		var rep continuity.BackupReport
		if err := json.Unmarshal(got.Evidence, &rep); err != nil || got.Status != continuity.StatusOK || !rep.OK || len(rep.Sources) != 1 || rep.Sources[0].Snapshot == "" {
			t.Fatalf("finished run: %+v %v", got, err)
		}

		r = e.want(e.do("POST", "/api/v1/policies/web/run", admin, nil), 202)
		r.json(t, &run)
		if r2 := e.do("POST", "/api/v1/policies/web/run", admin, nil); r2.Status != 409 || r2.errCode() != "running" {
			t.Errorf("second start while running: %d %s", r2.Status, r2.Body)
		}
		var sum continuity.PolicySummary
		e.want(e.do("GET", "/api/v1/policies/web", admin, nil), 200).json(t, &sum)
		if len(sum.Running) != 1 || sum.Running[0] != continuity.KindBackup {
			t.Errorf("running jobs while the backup runs: %+v", sum.Running)
		}
		// The web policy's postgres source points at a database that does
		// not exist: the run fails, says which source, and is recorded.
		got = e.waitRun(admin, "web", run.ID)
		if got.Status != continuity.StatusFailed || !strings.Contains(got.Error, "users") {
			t.Errorf("web run: %+v", got)
		}

		// A restore test through the API, then the run list with kinds.
		r = e.want(e.do("POST", "/api/v1/policies/db/restore-test", admin, nil), 202)
		r.json(t, &run)
		got = e.waitRun(admin, "db", run.ID)
		var ev continuity.RestoreTestEvidence
		if err := json.Unmarshal(got.Evidence, &ev); err != nil || got.Status != continuity.StatusOK || got.Kind != continuity.KindRestoreTest || ev.Result != "passed" || len(ev.Tests) != 1 || ev.Tests[0].FilesVerified != 1 {
			t.Errorf("restore test run: %+v %s", got, got.Evidence)
		}
		var runs api.List[continuity.Run]
		e.want(e.do("GET", "/api/v1/policies/db/runs", admin, nil), 200).json(t, &runs)
		if len(runs.Items) != 2 || runs.Items[0].Kind != continuity.KindRestoreTest || runs.Items[1].Kind != continuity.KindBackup {
			t.Errorf("runs: %+v", runs.Items)
		}
		e.want(e.do("GET", "/api/v1/policies/db/runs?kind=backup&limit=1", admin, nil), 200).json(t, &runs)
		if len(runs.Items) != 1 || runs.Items[0].Kind != continuity.KindBackup || runs.Next == "" {
			t.Errorf("backup runs, one per page: %+v next %q", runs.Items, runs.Next)
		}
		after := runs.Next
		runs = api.List[continuity.Run]{}
		e.want(e.do("GET", "/api/v1/policies/db/runs?kind=backup&after="+after, admin, nil), 200).json(t, &runs)
		if len(runs.Items) != 0 || runs.Next != "" {
			t.Errorf("second page: %+v next %q", runs.Items, runs.Next)
		}

		// The RPO: web's site source is fresh; its database source has no
		// snapshot, so it is breached.
		var rpo struct {
			RPOSeconds   float64                `json:"rpo_seconds"`
			Repositories []continuity.RPOStatus `json:"repositories"`
		}
		e.want(e.do("GET", "/api/v1/policies/web/rpo", admin, nil), 200).json(t, &rpo)
		if rpo.RPOSeconds != 3600 || len(rpo.Repositories) != 2 || rpo.Repositories[0].Breached || !rpo.Repositories[1].Breached || rpo.Repositories[1].Error != "no snapshot" {
			t.Errorf("rpo: %+v", rpo)
		}

		// Bad and unknown names.
		for _, c := range []struct {
			method, path string
			status       int
		}{
			{"GET", "/api/v1/policies/nope", 404},
			{"POST", "/api/v1/policies/nope/run", 404},
			{"GET", "/api/v1/policies/db/runs/abc", 400},
			{"GET", fmt.Sprintf("/api/v1/policies/web/runs/%d", run.ID), 404}, // a run of db
			{"GET", "/api/v1/policies/db/runs?kind=format", 400},
			{"GET", "/api/v1/policies/db/runs?after=-4", 400},
			{"GET", "/api/v1/policies/db/runs?limit=100000", 400},
		} {
			if r := e.do(c.method, c.path, admin, nil); r.Status != c.status {
				t.Errorf("%s %s: %d %s, want %d", c.method, c.path, r.Status, r.Body, c.status)
			}
		}

		// The backup's events name the user who started it and carry the
		// policy's tags; the start is audited.
		evs, err := e.events.Query(context.Background(), events.Filter{Types: []events.Type{"backup."}, Limit: 10})
		if err != nil || len(evs) != 3 {
			t.Fatalf("backup events: %+v %v", evs, err)
		}
		for _, ev := range evs {
			if ev.Actor != "user:admin" || "policy/"+ev.Tags["policy"] != ev.Resource || ev.Resource == "policy/web" && ev.Tags["env"] != "prod" {
				t.Errorf("backup event: %+v", ev)
			}
		}
		if n := e.auditCount("policy.run", "ok"); n != 2 {
			t.Errorf("audited policy.run ok: %d, want 2", n)
		}
		if n := e.auditCount("policy.run", "failed"); n != 2 {
			t.Errorf("audited refused starts (the overlapping run, the unknown policy): %d, want 2", n)
		}
	}, migrations()...)
}

// Grants decide who sees and runs which policy: a scoped operator sees
// and runs only its policy and no restore tests; a continuity operator
// tests restores but cannot start backups; an auditor reads and runs
// nothing; without the scheduler, starts are refused with 503.
func TestPolicyAPIAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e, svc := policyEnv(t, db, true)
		admin := e.login("admin", adminPassword)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "web-ops", "grants": []map[string]any{
			{"module": "backups", "level": "operate", "scope": "policy=web"}}}), 201)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "prod-tester", "grants": []map[string]any{
			{"module": "continuity", "level": "operate", "scope": "env=prod"}}}), 201)
		ops := e.mkuser(admin, "ops1", "web-ops")
		tester := e.mkuser(admin, "tester1", "prod-tester")
		aud := e.mkuser(admin, "aud1", "auditor")

		var list api.List[continuity.PolicySummary]
		e.want(e.do("GET", "/api/v1/policies", ops, nil), 200).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].Name != "web" {
			t.Errorf("scoped list: %+v", list.Items)
		}
		var run continuity.Run
		e.want(e.do("POST", "/api/v1/policies/db/restore-test", admin, nil), 202).json(t, &run)
		e.waitRun(admin, "db", run.ID)

		for _, c := range []struct {
			who, token, method, path string
			status                   int
		}{
			{"ops", ops, "GET", "/api/v1/policies/db", 404}, // out of scope: not found
			{"ops", ops, "POST", "/api/v1/policies/db/run", 404},
			{"ops", ops, "GET", fmt.Sprintf("/api/v1/policies/db/runs/%d", run.ID), 404},
			{"ops", ops, "GET", "/api/v1/policies/web", 200},
			{"ops", ops, "POST", "/api/v1/policies/web/restore-test", 403}, // needs continuity
			{"ops", ops, "GET", "/api/v1/policies/web/rpo", 403},
			{"ops", ops, "GET", "/api/v1/policies/web/runs?kind=restore_test", 403},
			{"tester", tester, "GET", "/api/v1/policies", 403}, // the list is for backups readers
			{"tester", tester, "GET", "/api/v1/policies/db/rpo", 404},
			{"tester", tester, "GET", "/api/v1/policies/web/rpo", 200},
			{"tester", tester, "POST", "/api/v1/policies/web/run", 403},
			{"auditor", aud, "GET", "/api/v1/policies", 200},
			{"auditor", aud, "GET", fmt.Sprintf("/api/v1/policies/db/runs/%d", run.ID), 200},
			{"auditor", aud, "POST", "/api/v1/policies/db/run", 403},
			{"auditor", aud, "POST", "/api/v1/policies/db/scrub", 403},
		} {
			if r := e.do(c.method, c.path, c.token, nil); r.Status != c.status {
				t.Errorf("%s %s %s: %d %s, want %d", c.who, c.method, c.path, r.Status, r.Body, c.status)
			}
		}
		// The scoped operator starts web's backup; its run list shows
		// backups only, never the restore tests it may not read.
		e.want(e.do("POST", "/api/v1/policies/web/run", ops, nil), 202).json(t, &run)
		e.waitRun(ops, "web", run.ID)
		var wrun continuity.Run
		e.want(e.do("POST", "/api/v1/policies/web/restore-test", tester, nil), 202).json(t, &wrun)
		e.waitRun(admin, "web", wrun.ID)
		var runs api.List[continuity.Run]
		e.want(e.do("GET", "/api/v1/policies/web/runs", ops, nil), 200).json(t, &runs)
		if len(runs.Items) != 1 || runs.Items[0].Kind != continuity.KindBackup {
			t.Errorf("operator's run list: %+v", runs.Items)
		}
		if e.auditCount("policy.run", "denied") == 0 || e.auditCount("policy.restore_test", "denied") == 0 {
			t.Errorf("refused starts are not audited")
		}

		// Without a running scheduler the API cannot start jobs.
		stopped := newEnvWith(t, db, func(_ *env, d *api.Deps) {
			d.Continuity, d.Scheduler = svc, &continuity.Scheduler{Service: svc}
		})
		tok := stopped.login("admin", adminPassword)
		if r := stopped.do("POST", "/api/v1/policies/db/run", tok, nil); r.Status != 503 || r.errCode() != "unavailable" || r.Header.Get("Retry-After") == "" {
			t.Errorf("start without a scheduler: %d %s", r.Status, r.Body)
		}
	}, migrations()...)
}

// snapshotEnv is an API server over two policies backing up into a real
// local repository: "db" (one paths source, copied offsite to a second
// real repository, "copy") and "web" (tagged env=prod, whose offsite
// repository "gone" does not exist).
func snapshotEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	_, primary := repotest.New(t, repotest.Options{})
	_, copyDir := repotest.New(t, repotest.Options{})
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data.txt"), []byte("rows\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pw := config.EnvSecret("REPO_PW")
	cfg := config.Continuity{
		Repositories: []config.Repository{{Name: "primary", Location: primary, Password: pw}, {Name: "copy", Location: copyDir, Password: pw},
			{Name: "gone", Location: filepath.Join(t.TempDir(), "nothing-here"), Password: pw}},
		Policies: []config.Policy{
			{Name: "db", Repository: "primary", Offsite: []string{"copy"}, Sources: []config.Source{{Name: "files", Paths: []string{src}}}},
			{Name: "web", Repository: "primary", Offsite: []string{"gone"}, Tags: []string{"env=prod"}, Sources: []config.Source{{Command: []string{"echo", "web"}}}},
		},
	}
	getenv := func(k string) string { return map[string]string{"REPO_PW": repotest.Password}[k] }
	return newEnvWith(t, db, func(e *env, d *api.Deps) {
		svc := &continuity.Service{Config: cfg, History: continuity.NewHistory(db), Bus: e.events, Now: time.Now, Logger: slog.New(slog.DiscardHandler),
			Getenv: getenv, Open: continuity.RepositoryOpener(getenv, os.ReadFile, t.TempDir())}
		sc := &continuity.Scheduler{Service: svc, Tick: time.Hour}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); sc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		d.Continuity, d.Scheduler = svc, sc
	})
}

// TestPolicySnapshotsAPI: a policy's snapshots from its real repository
// after real backup runs, newest first, only the policy's own, with their
// source, paths, tags and summary; pages; an offsite repository; an
// unknown repository (400 naming repo), one that cannot be opened (502),
// an unknown policy (404); and grants scoped by the policy's tags.
func TestPolicySnapshotsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := snapshotEnv(t, db)
		admin := e.login("admin", adminPassword)
		var runs []string
		for range 2 {
			var run continuity.Run
			e.want(e.do("POST", "/api/v1/policies/db/run", admin, nil), 202).json(t, &run)
			got := e.waitRun(admin, "db", run.ID)
			var rep continuity.BackupReport
			if err := json.Unmarshal(got.Evidence, &rep); err != nil || got.Status != continuity.StatusOK || len(rep.Sources) != 1 || len(rep.Copies) != 1 {
				t.Fatalf("backup run: %+v %v", got, err)
			}
			runs = append(runs, rep.Sources[0].Snapshot)
		}

		type snapshot struct {
			ID       string    `json:"id"`
			ShortID  string    `json:"short_id"`
			Time     time.Time `json:"time"`
			Hostname string    `json:"hostname"`
			Paths    []string  `json:"paths"`
			Tags     []string  `json:"tags"`
			Source   string    `json:"source"`
			Summary  *struct {
				TotalFiles int64 `json:"total_files"`
				TotalBytes int64 `json:"total_bytes"`
			} `json:"summary"`
		}
		var list struct {
			Items []snapshot `json:"items"`
			Next  string     `json:"next"`
		}
		r := e.want(e.do("GET", "/api/v1/policies/db/snapshots", admin, nil), 200)
		r.json(t, &list)
		if len(list.Items) != 2 || list.Next != "" || list.Items[0].ID != runs[1] || list.Items[1].ID != runs[0] || list.Items[0].Time.Before(list.Items[1].Time) {
			t.Fatalf("snapshots, newest first: %s (runs %v)", r.Body, runs)
		}
		sn := list.Items[0]
		if len(sn.ID) != 64 || sn.ShortID != sn.ID[:8] || sn.Hostname == "" || len(sn.Paths) != 1 || sn.Source != "files" ||
			!slices.Contains(sn.Tags, "policy=db") || !slices.Contains(sn.Tags, "source=files") || sn.Summary == nil || sn.Summary.TotalFiles != 1 || sn.Summary.TotalBytes != 5 {
			t.Errorf("snapshot: %+v", sn)
		}

		// Pages of one.
		var page struct {
			Items []snapshot `json:"items"`
			Next  string     `json:"next"`
		}
		e.want(e.do("GET", "/api/v1/policies/db/snapshots?limit=1", admin, nil), 200).json(t, &page)
		if len(page.Items) != 1 || page.Items[0].ID != runs[1] || page.Next != runs[1] {
			t.Fatalf("first page: %+v", page)
		}
		next := page.Next
		page.Items, page.Next = nil, ""
		e.want(e.do("GET", "/api/v1/policies/db/snapshots?limit=1&after="+next, admin, nil), 200).json(t, &page)
		if len(page.Items) != 1 || page.Items[0].ID != runs[0] || page.Next != "" {
			t.Fatalf("second page: %+v", page)
		}

		// The offsite copy holds both; the primary's snapshots of db are
		// not web's.
		var off struct{ Items []snapshot }
		e.want(e.do("GET", "/api/v1/policies/db/snapshots?repo=copy", admin, nil), 200).json(t, &off)
		if len(off.Items) != 2 || off.Items[0].Source != "files" || off.Items[0].Time.Before(off.Items[1].Time) {
			t.Errorf("offsite snapshots: %+v", off.Items)
		}
		r = e.want(e.do("GET", "/api/v1/policies/web/snapshots", admin, nil), 200)
		if !strings.Contains(string(r.Body), `"items": []`) {
			t.Errorf("web's snapshots: %s", r.Body)
		}

		for _, c := range []struct {
			path, field string
			status      int
		}{
			{"/api/v1/policies/db/snapshots?repo=gone", "repo", 400},     // another policy's repository
			{"/api/v1/policies/db/snapshots?repo=nope", "repo", 400},     // no such repository
			{"/api/v1/policies/db/snapshots?limit=100000", "limit", 400}, // over PageSizeMax
			{"/api/v1/policies/db/snapshots?limit=0", "limit", 400},
			{"/api/v1/policies/db/snapshots?after=" + strings.Repeat("0", 64), "after", 400},
			{"/api/v1/policies/nope/snapshots", "", 404},
		} {
			if r := e.do("GET", c.path, admin, nil); r.Status != c.status || r.errField() != c.field {
				t.Errorf("GET %s: %d %s, want %d naming %q", c.path, r.Status, r.Body, c.status, c.field)
			}
		}
		r = e.want(e.do("GET", "/api/v1/policies/web/snapshots?repo=gone", admin, nil), 502)
		if r.errCode() != "repository_unavailable" || !strings.Contains(string(r.Body), "gone") {
			t.Errorf("an unreachable repository: %s", r.Body)
		}

		// Grants: scoped to web, a backups reader sees web's only; a
		// continuity reader may see the policy but not list its
		// snapshots; an auditor reads both.
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "prod-backups", "grants": []map[string]any{
			{"module": "backups", "level": "read", "scope": "env=prod"}}}), 201)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "rpo-view", "grants": []map[string]any{
			{"module": "continuity", "level": "read"}}}), 201)
		prod := e.mkuser(admin, "prod1", "prod-backups")
		rpo := e.mkuser(admin, "rpo1", "rpo-view")
		aud := e.mkuser(admin, "aud1", "auditor")
		for _, c := range []struct {
			who, token, path string
			status           int
		}{
			{"prod", prod, "/api/v1/policies/db/snapshots", 404},
			{"prod", prod, "/api/v1/policies/web/snapshots", 200},
			{"rpo", rpo, "/api/v1/policies/db/snapshots", 403},
			{"auditor", aud, "/api/v1/policies/db/snapshots?repo=copy", 200},
		} {
			if r := e.do("GET", c.path, c.token, nil); r.Status != c.status {
				t.Errorf("%s GET %s: %d %s, want %d", c.who, c.path, r.Status, r.Body, c.status)
			}
		}
	}, migrations()...)
}
