package continuity

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
)

func TestRestoreTest(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web",
		Sources: []config.Source{
			{Name: "files"},
			{Name: "export", Command: []string{"seq", "1", "5000"}, Output: "numbers.txt"},
		},
		RestoreTest: config.RestoreTest{Command: []string{"sh", "-c", `test -d "$BULWARK_RESTORE_DIR" && test -n "$BULWARK_SNAPSHOT"`}},
	})
	f.svc.Config.Policies[0].Sources[0].Paths = []string{f.data}
	must(t, os.Symlink("a.txt", filepath.Join(f.data, "link")))
	must(t, os.Chtimes(filepath.Join(f.data, "a.txt"), time.Unix(1e9, 0), time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)))
	for range 3 {
		if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
			t.Fatal(err)
		}
	}
	scratch := t.TempDir()
	f.svc.Config.Policies[0].RestoreTest.Scratch = scratch
	ev, err := f.svc.RestoreTest(ctx, "web")
	if err != nil {
		t.Fatalf("restore test: %v", err)
	}
	if ev.Result != "passed" || len(ev.Tests) != 4 {
		t.Fatalf("evidence: %+v", ev)
	}
	for _, st := range ev.Tests {
		if st.Files == 0 || st.FilesVerified != st.Files || st.MetadataChecked == 0 || st.DataAge < 0 || st.Duration <= 0 || st.Error != "" {
			t.Errorf("test of %s (%s): %+v", st.Source, st.Which, st)
		}
	}
	if ev.Tests[0].Which != "newest" || ev.Tests[1].Which != "older" || ev.Tests[0].Snapshot == ev.Tests[1].Snapshot {
		t.Errorf("picks: %+v", ev.Tests[:2])
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch not cleaned: %v", left)
	}
	last, _, _ := f.svc.History.Last(ctx, "web", KindRestoreTest, false)
	var stored RestoreTestEvidence
	must(t, json.Unmarshal(last.Evidence, &stored))
	if last.Status != StatusOK || stored.Result != "passed" || len(stored.Tests) != 4 {
		t.Errorf("history: %+v", last)
	}

	// The verification command fails: the test fails and says why.
	f.svc.Config.Policies[0].RestoreTest.Command = []string{"sh", "-c", "echo 'app did not start'; exit 1"}
	if _, err := f.svc.RestoreTest(ctx, "web"); err == nil || !strings.Contains(err.Error(), "app did not start") {
		t.Errorf("failing command: %v", err)
	}
	f.svc.Config.Policies[0].RestoreTest.Command = nil

	// Damage: a pack is corrupted; the restore test detects it.
	packs, _ := filepath.Glob(filepath.Join(f.dirs["primary"], "data", "*", "*"))
	for _, p := range packs {
		b, err := os.ReadFile(p)
		must(t, err)
		b[len(b)/3] ^= 0x40
		must(t, os.Chmod(p, 0o600))
		must(t, os.WriteFile(p, b, 0o600))
	}
	if _, err := f.svc.RestoreTest(ctx, "web"); err == nil {
		t.Fatal("restore test of a corrupted repository passed")
	}
	evs, _ := f.eventTypes(t), 0
	if s := strings.Join(evs, ","); !strings.Contains(s, "restore_test.failed") || !strings.Contains(s, "restore_test.passed") {
		t.Errorf("events: %s", s)
	}
}

func psql(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := exec.Command("psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "postgres://root@127.0.0.1:5432/"+db+"?sslmode=disable", "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %s: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// A PostgreSQL source is restored into a scratch database on the server
// the restore test names, which is dropped afterwards.
func TestRestoreTestPostgres(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump not installed (make test installs postgresql-client)")
	}
	db := fmt.Sprintf("bulwark_rt_src_%d", time.Now().UnixNano())
	psql(t, "test", "CREATE DATABASE "+db)
	t.Cleanup(func() {
		exec.Command("psql", "-X", "-q", "postgres://root@127.0.0.1:5432/test?sslmode=disable", "-c", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)").Run()
	})
	psql(t, db, "CREATE TABLE t(id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g")
	f := newFixture(t, config.Policy{Name: "db",
		Sources:     []config.Source{{Name: "app", Postgres: config.EnvSecret("SRC_DSN")}},
		RestoreTest: config.RestoreTest{Postgres: config.EnvSecret("SCRATCH_DSN")},
	})
	f.env["SRC_DSN"] = "postgres://root@127.0.0.1:5432/" + db + "?sslmode=disable"
	f.env["SCRATCH_DSN"] = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	if _, err := f.svc.RunBackup(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	ev, err := f.svc.RestoreTest(ctx, "db")
	if err != nil {
		t.Fatalf("restore test: %v", err)
	}
	if len(ev.Tests) != 1 || len(ev.Tests[0].Databases) != 1 || !strings.HasSuffix(ev.Tests[0].Databases[0], db+".dump") {
		t.Fatalf("evidence: %+v", ev)
	}
	if left := psql(t, "test", "SELECT count(*) FROM pg_database WHERE datname LIKE 'bulwark_restore_test_%'"); left != "0" {
		t.Errorf("%s scratch databases left", left)
	}
}
