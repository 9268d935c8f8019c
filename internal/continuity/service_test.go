package continuity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fixture is a service over local repositories "primary" and "offsite"
// (the offsite shares the primary's parameters), a real event bus and
// run history on SQLite, and a directory to back up.
type fixture struct {
	svc      *Service
	data     string
	dirs     map[string]string
	bus      *events.Bus
	env      map[string]string
	cacheDir string
}

func newFixture(t *testing.T, p config.Policy) *fixture {
	t.Helper()
	f := &fixture{dirs: map[string]string{}, env: map[string]string{"PW": repotest.Password}, cacheDir: t.TempDir()}
	f.data = filepath.Join(t.TempDir(), "data")
	must(t, os.MkdirAll(filepath.Join(f.data, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(f.data, "a.txt"), []byte("alpha\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.data, "sub", "b.bin"), []byte(strings.Repeat("b", 300000)), 0o600))

	primary, pdir := repotest.New(t, repotest.Options{})
	f.dirs["primary"] = pdir
	odir := filepath.Join(t.TempDir(), "offsite")
	be, err := local.Create(odir)
	must(t, err)
	_, err = repo.Init(ctx, be, []byte(repotest.Password), repo.InitOptions{KDF: repotest.FastKDF, CopyFrom: primary, CacheDir: "-"})
	must(t, err)
	f.dirs["offsite"] = odir

	db := storetest.SQLite(t, events.Migrations, Migrations)
	f.bus = events.NewBus(db, events.Options{})
	t.Cleanup(func() { f.bus.Close(context.Background()) })
	if p.Repository == "" {
		p.Repository = "primary"
	}
	cfg := config.Continuity{
		Repositories: []config.Repository{
			{Name: "primary", Location: pdir, Password: config.EnvSecret("PW")},
			{Name: "offsite", Location: odir, Password: config.EnvSecret("PW")},
		},
		Policies: []config.Policy{p},
	}
	f.svc = &Service{Config: cfg, History: NewHistory(db), Bus: f.bus, Getenv: func(k string) string { return f.env[k] },
		Open: func(ctx context.Context, rc config.Repository) (*repo.Repository, error) {
			pw, err := rc.Password.Resolve(func(k string) string { return f.env[k] }, os.ReadFile)
			if err != nil {
				return nil, err
			}
			be, err := local.Open(rc.Location)
			if err != nil {
				return nil, err
			}
			r, err := repo.Open(ctx, be, []byte(pw), repo.OpenOptions{CacheDir: filepath.Join(f.cacheDir, rc.Name)})
			if err != nil {
				return nil, err
			}
			return r, r.LoadIndex(ctx)
		}}
	return f
}

func (f *fixture) snapshots(t *testing.T, name string) []*repo.Snapshot {
	t.Helper()
	r := repotest.Open(t, f.dirs[name], repotest.Password)
	s, _, err := r.Snapshots(ctx)
	must(t, err)
	return s
}

func (f *fixture) eventTypes(t *testing.T) []string {
	t.Helper()
	evs, err := f.bus.Query(ctx, events.Filter{Limit: 100})
	must(t, err)
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Type))
	}
	return out
}

func TestRunBackup(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web",
		Sources: []config.Source{
			{Name: "files", Paths: nil},
			{Name: "listing", Command: []string{"sh", "-c", "echo exported; seq 1 1000"}, Output: "export.txt"},
		},
		Offsite:   []string{"offsite"},
		Retention: config.Retention{KeepLast: 2, Prune: true},
		Tags:      []string{"prod"},
	})
	f.svc.Config.Policies[0].Sources[0].Paths = []string{f.data}

	for i := range 3 {
		must(t, os.WriteFile(filepath.Join(f.data, "a.txt"), []byte(strings.Repeat("x", i+1)), 0o644))
		rep, err := f.svc.RunBackup(ctx, "web")
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !rep.OK || len(rep.Sources) != 2 || rep.Sources[0].Snapshot == "" || rep.Sources[1].Snapshot == "" ||
			len(rep.Copies) != 1 || rep.Copies[0].Copied != 2 {
			t.Fatalf("run %d report: %+v", i, rep)
		}
		if i == 2 && (rep.Forgotten != 2 || rep.Pruned == nil) {
			t.Errorf("third run: forgot %d, prune %v; want 2 forgotten (keep_last 2 per source) and a prune", rep.Forgotten, rep.Pruned)
		}
	}
	prim := f.snapshots(t, "primary")
	if len(prim) != 4 {
		t.Fatalf("primary has %d snapshots, want 2 per source", len(prim))
	}
	for _, s := range prim {
		if !s.HasTag("policy=web") || !s.HasTag("prod") || !(s.HasTag("source=files") || s.HasTag("source=listing")) {
			t.Errorf("snapshot tags %v", s.Tags)
		}
	}
	if off := f.snapshots(t, "offsite"); len(off) != 6 {
		t.Errorf("offsite has %d snapshots, want all 6 copies (retention applies to the primary)", len(off))
	}
	runs, err := f.svc.History.List(ctx, "web", 10)
	must(t, err)
	if len(runs) != 3 || runs[0].Status != StatusOK {
		t.Fatalf("history: %+v", runs)
	}
	var ev BackupReport
	must(t, json.Unmarshal(runs[0].Evidence, &ev))
	if ev.Policy != "web" || len(ev.Sources) != 2 || ev.Copies[0].Repository != "offsite" {
		t.Errorf("evidence: %+v", ev)
	}
	types := strings.Join(f.eventTypes(t), ",")
	if strings.Count(types, "backup.completed") != 3 || strings.Count(types, "copy.completed") != 3 || strings.Contains(types, "failed") {
		t.Errorf("events: %s", types)
	}
}

// A failing source fails the run and raises an event, but the other
// sources are saved and copied.
func TestRunBackupSourceFails(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "db",
		Sources: []config.Source{
			{Name: "broken", Command: []string{"sh", "-c", "echo partial; echo 'pg_dump: connection refused' >&2; exit 3"}},
			{Name: "files", Paths: []string{"/nonexistent-for-sure"}},
			{Name: "ok", Command: []string{"echo", "fine"}},
		},
		Offsite:   []string{"offsite"},
		Retention: config.Retention{KeepLast: 5, Prune: true},
	})
	rep, err := f.svc.RunBackup(ctx, "db")
	if err == nil || !strings.Contains(err.Error(), "source broken") || !strings.Contains(err.Error(), "connection refused") ||
		!strings.Contains(err.Error(), "source files") {
		t.Fatalf("run with failing sources: %v", err)
	}
	if rep.OK || rep.Sources[2].Snapshot == "" || rep.Sources[0].Snapshot != "" || rep.Copies[0].Copied != 1 {
		t.Errorf("report: %+v", rep)
	}
	// Retention forgets but does not prune after a failed source: its
	// uploads stay for the next run to resume from.
	if rep.Pruned != nil || !strings.Contains(rep.PruneSkipped, "resume") {
		t.Errorf("prune after a failed source: %+v, skipped %q", rep.Pruned, rep.PruneSkipped)
	}
	if n := len(f.snapshots(t, "primary")); n != 1 {
		t.Errorf("%d snapshots in the primary, want only the good source's", n)
	}
	last, _, _ := f.svc.History.Last(ctx, "db", KindBackup, false)
	if last.Status != StatusFailed || !strings.Contains(last.Error, "source broken") {
		t.Errorf("history: %+v", last)
	}
	if types := strings.Join(f.eventTypes(t), ","); !strings.Contains(types, "backup.failed") {
		t.Errorf("events: %s", types)
	}
}

// Two runs of one policy never overlap; unknown policies are named.
func TestRunBackupGuards(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Command: []string{"echo", "x"}}}})
	done, err := f.svc.begin("web", KindBackup)
	must(t, err)
	if _, err := f.svc.RunBackup(ctx, "web"); !errors.Is(err, ErrRunning) {
		t.Errorf("second run: %v, want ErrRunning", err)
	}
	done()
	if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
		t.Errorf("run after the first ended: %v", err)
	}
	if _, err := f.svc.RunBackup(ctx, "nope"); !errors.Is(err, ErrNoPolicy) || !strings.Contains(err.Error(), "web") {
		t.Errorf("unknown policy: %v", err)
	}
	// Another process running the same job (as `bulwark policy run` beside
	// `bulwark up`) shows in the shared history: this one refuses to
	// start, names the run, and lists the job as running.
	other := &History{db: f.svc.History.db, owner: liveOwner(t)}
	id, err := other.Start(ctx, "web", KindBackup, time.Now())
	must(t, err)
	if _, err := f.svc.RunBackup(ctx, "web"); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), fmt.Sprintf("run %d", id)) {
		t.Errorf("run while another process runs it: %v", err)
	}
	if sum, err := f.svc.Summary(ctx, f.svc.Config.Policies[0]); err != nil || len(sum.Running) != 1 || sum.Running[0] != KindBackup {
		t.Errorf("summary while running elsewhere: %+v %v", sum, err)
	}
	must(t, f.svc.History.Finish(ctx, id, time.Now(), nil, nil))
	if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
		t.Errorf("run after the other process finished: %v", err)
	}
}

// Trigger starts a job now under the scheduler's context: refused before
// the scheduler runs, for an unknown policy or kind and while the job runs;
// the run it returns is the one the history records.
func TestSchedulerTrigger(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Command: []string{"sh", "-c", "sleep 0.3; echo x"}}}})
	sc := &Scheduler{Service: f.svc, Tick: time.Hour}
	if _, err := sc.Trigger("web", KindBackup, ""); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("trigger before Run: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- sc.Run(runCtx) }()
	var run Run
	var err error
	for range 200 { // Run sets its context first thing
		if run, err = sc.Trigger("web", KindBackup, ""); !errors.Is(err, ErrNotRunning) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil || run.ID == 0 || run.Status != StatusRunning || run.Policy != "web" {
		t.Fatalf("trigger: %+v %v", run, err)
	}
	if _, err := sc.Trigger("web", KindBackup, ""); !errors.Is(err, ErrRunning) {
		t.Errorf("second trigger while running: %v", err)
	}
	if _, err := sc.Trigger("nope", KindBackup, ""); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("unknown policy: %v", err)
	}
	if _, err := sc.Trigger("web", Kind("format"), ""); err == nil || !strings.Contains(err.Error(), "unknown job kind") {
		t.Errorf("unknown kind: %v", err)
	}
	sc.Wait()
	got, err := f.svc.History.Get(ctx, run.ID)
	if err != nil || got.Status != StatusOK || got.Kind != KindBackup || !strings.Contains(string(got.Evidence), `"ok": true`) && !strings.Contains(string(got.Evidence), `"ok":true`) {
		t.Errorf("triggered run afterwards: %+v %v", got, err)
	}
	// Stopping the scheduler cancels a triggered job and waits for it.
	run2, err := sc.Trigger("web", KindRestoreTest, "user:alice")
	must(t, err)
	stop()
	must(t, <-stopped)
	if got, _ := f.svc.History.Get(ctx, run2.ID); got.Status == StatusRunning {
		t.Errorf("Run returned with a triggered job still running: %+v", got)
	}
	// The restore test's event names who started it.
	evs, err := f.bus.Query(ctx, events.Filter{Limit: 100})
	must(t, err)
	var actors []string
	for _, e := range evs {
		if strings.HasPrefix(string(e.Type), "restore_test.") {
			actors = append(actors, e.Actor)
		}
	}
	if len(actors) != 1 || actors[0] != "user:alice" {
		t.Errorf("restore test events' actors: %v, want [user:alice]", actors)
	}
	if _, err := sc.Trigger("web", KindBackup, ""); !errors.Is(err, ErrNotRunning) {
		t.Errorf("trigger after Run ended: %v", err)
	}
}

// Disaster recovery restores every source from the freshest copy; with the
// primary gone, from the offsite one.
func TestActivate(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Name: "files"}}, Offsite: []string{"offsite"}})
	f.svc.Config.Policies[0].Sources[0].Paths = []string{f.data}
	if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	must(t, os.RemoveAll(f.dirs["primary"])) // the primary site is lost
	target := t.TempDir()
	rep, err := f.svc.Activate(ctx, "web", ActivateOptions{Target: target})
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	if !rep.OK || len(rep.Sources) != 1 || rep.Sources[0].Repository != "offsite" || rep.Sources[0].Files != 2 || rep.Duration <= 0 {
		t.Fatalf("report: %+v", rep)
	}
	b, err := os.ReadFile(filepath.Join(target, f.data, "sub", "b.bin"))
	if err != nil || len(b) != 300000 {
		t.Fatalf("restored file: %d bytes, %v", len(b), err)
	}
	if _, err := f.svc.Activate(ctx, "web", ActivateOptions{}); err == nil || !strings.Contains(err.Error(), "--target") {
		t.Errorf("without a target: %v", err)
	}
}
