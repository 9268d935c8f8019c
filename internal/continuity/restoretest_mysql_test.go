package continuity

// Restore tests of MariaDB/MySQL sources against the real server of the
// test machine (127.0.0.1:3306, root without password): the dump of each
// tested snapshot goes into a scratch database bulwark_restore_test_* on
// the server restore_test.mysql names, the verification command checks
// that database while it exists (BULWARK_SCRATCH_DATABASES), and the
// database is dropped afterwards whatever happened.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/dump"
	"github.com/bulwarkhq/bulwark/internal/continuity/dump/dumptest"
	"github.com/bulwarkhq/bulwark/internal/repo"
)

// myServer is the test machine's MariaDB server as a DSN without database.
const myServer = "mysql://root@127.0.0.1:3306/"

var scratchRE = regexp.MustCompile(`bulwark_restore_test_[0-9a-f]{12}`)

func needMariaDB(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mariadb", "mariadb-dump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make test installs mariadb-client)", tool)
		}
	}
}

// myUser creates a user with a password and the grants (each "PRIVS ON
// WHAT"), dropped at the end.
func myUser(t *testing.T, grants ...string) (user, password string) {
	t.Helper()
	user = fmt.Sprintf("bwrt%d", time.Now().UnixNano()%1e12)
	password = "Pw-" + user + "-s3cret"
	sql := fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s';", user, password)
	for _, g := range grants {
		sql += fmt.Sprintf(" GRANT %s TO '%s'@'%%';", g, user)
	}
	dumptest.MariaDB(t, "", sql)
	t.Cleanup(func() { dumptest.MariaDBExec(t, "DROP USER IF EXISTS '"+user+"'@'%'") })
	return user, password
}

// myExisting returns which of the databases exist.
func myExisting(t *testing.T, names []string) []string {
	t.Helper()
	if len(names) == 0 {
		return nil
	}
	out := dumptest.MariaDB(t, "", "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('"+strings.Join(names, "','")+"') ORDER BY 1")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// rtStateSQL prints, for the current database, each table's row count and
// the md5 of its rows in id order, the view's rows, and the schema
// objects. The test runs it on the source; the verification command on
// the scratch database.
const rtStateSQL = `SET SESSION group_concat_max_len = 1073741824;
SELECT 'customers', COUNT(*), MD5(IFNULL(GROUP_CONCAT(CONCAT_WS('|', id, name, IFNULL(note, '<null>'), IFNULL(HEX(avatar), '<null>'), created) ORDER BY id SEPARATOR '\n'), '')) FROM customers;
SELECT 'orders', COUNT(*), MD5(IFNULL(GROUP_CONCAT(CONCAT_WS('|', id, customer_id, amount, HEX(payload), IFNULL(comment, '<null>')) ORDER BY id SEPARATOR '\n'), '')) FROM orders;
SELECT 'audit', COUNT(*), MD5(IFNULL(GROUP_CONCAT(CONCAT_WS('|', id, order_id, what) ORDER BY id SEPARATOR '\n'), '')) FROM audit;
SELECT 'big_orders', COUNT(*), MD5(IFNULL(GROUP_CONCAT(CONCAT_WS('|', id, name, amount) ORDER BY id SEPARATOR '\n'), '')) FROM big_orders;
SELECT 'routines', GROUP_CONCAT(CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME) ORDER BY ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE();
SELECT 'triggers', GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE();
SELECT 'events', GROUP_CONCAT(EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE();
SELECT 'vat', vat(100);
`

func rtState(t *testing.T, db string) string {
	t.Helper()
	return dumptest.MariaDB(t, db, rtStateSQL)
}

// writeScript writes an executable shell script and returns its path.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, []byte("#!/bin/sh\nset -eu\n"+body), 0o755))
	return p
}

// A MariaDB source's newest and older snapshot are each restored into a
// scratch database whose tables, rows and schema objects equal the source
// as it was when the snapshot was taken (checked by the verification
// command while the scratch database exists); the evidence says so, the
// scratch databases are dropped and the source is untouched.
func TestRestoreTestMySQL(t *testing.T) {
	needMariaDB(t)
	src := dumptest.MariaDBDatabase(t, "bulwark_rt_my_src")
	dumptest.MariaDB(t, src, dumptest.MariaDBFill(1500))

	out := t.TempDir()
	must(t, os.WriteFile(filepath.Join(out, "state.sql"), []byte(rtStateSQL), 0o644))
	// The verification command: record the scratch database names and
	// the state of each scratch database, per snapshot.
	check := writeScript(t, out, "check.sh", fmt.Sprintf(`o=%[1]s/$BULWARK_SNAPSHOT
echo "$BULWARK_SCRATCH_DATABASES" > "$o.db"
for db in $BULWARK_SCRATCH_DATABASES; do
  mariadb %[2]s --batch --skip-column-names --default-character-set=utf8mb4 --database="$db" < %[1]s/state.sql
done > "$o.state"
`, out, strings.Join(dumptest.MariaDBArgs, " ")))

	scratchDir := t.TempDir()
	f := newFixture(t, config.Policy{Name: "shop",
		Sources:     []config.Source{{Name: "shop", MySQL: config.EnvSecret("SRC_DSN")}},
		RestoreTest: config.RestoreTest{MySQL: config.EnvSecret("SCRATCH_DSN"), Command: []string{check}, Scratch: scratchDir},
	})
	f.env["SRC_DSN"] = myServer + src
	f.env["SCRATCH_DSN"] = myServer

	// Two backups, the source changing in between: each snapshot has its
	// own expected state.
	want := map[string]string{} // snapshot id -> source state at backup
	bytes := map[string]int64{} // snapshot id -> size of the dump
	var order []string          // snapshot ids, oldest first
	for i := range 2 {
		if i == 1 {
			dumptest.MariaDB(t, src, "INSERT INTO orders (customer_id, amount, payload, comment) SELECT customer_id, amount + 1, payload, 'second' FROM orders WHERE id <= 700; UPDATE customers SET note = 'changed' WHERE id % 100 = 0; DELETE FROM customers WHERE id = 1499 AND id NOT IN (SELECT customer_id FROM orders)")
		}
		rep, err := f.svc.RunBackup(ctx, "shop")
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		id := rep.Sources[0].Snapshot
		want[id], bytes[id] = rtState(t, src), rep.Sources[0].Summary.TotalBytes
		order = append(order, id)
	}
	if want[order[0]] == want[order[1]] || !strings.Contains(want[order[0]], "orders\t6000\t") || !strings.Contains(want[order[1]], "orders\t6700\t") ||
		!strings.Contains(want[order[0]], "triggers\torders_log") || !strings.Contains(want[order[0]], "events\tnightly") {
		t.Fatalf("test data not as planned:\n%s\n--\n%s", want[order[0]], want[order[1]])
	}
	snapTime := map[string]time.Time{}
	for _, sn := range f.snapshots(t, "primary") {
		snapTime[repo.Hex(sn.ID)] = sn.Time
	}
	before := rtState(t, src)

	started := time.Now()
	ev, err := f.svc.RestoreTest(ctx, "shop")
	if err != nil {
		t.Fatalf("restore test: %v", err)
	}
	t.Logf("restore test of 2 MariaDB snapshots (%d and %d bytes of SQL): %v", bytes[order[1]], bytes[order[0]], time.Since(started).Round(time.Millisecond))
	if ev.Result != "passed" || len(ev.Tests) != 2 || ev.Duration <= 0 {
		t.Fatalf("evidence: %+v", ev)
	}
	newest, older := ev.Tests[0], ev.Tests[1]
	if newest.Which != "newest" || newest.Snapshot != order[1] || older.Which != "older" || older.Snapshot != order[0] {
		t.Errorf("picks: newest %s %s, older %s %s; want %s then %s", newest.Which, newest.Snapshot, older.Which, older.Snapshot, order[1], order[0])
	}
	var scratchDBs []string
	for _, st := range ev.Tests {
		if st.Source != "shop" || st.Files != 1 || st.FilesVerified != 1 || st.Bytes != bytes[st.Snapshot] || st.Bytes < 1e6 ||
			st.MetadataChecked != 2 || st.Duration <= 0 || st.Error != "" || !st.SnapshotTime.Equal(snapTime[st.Snapshot]) ||
			!slices.Equal(st.Databases, []string{"/" + dump.MyDumpFileName(src)}) {
			t.Errorf("test of %s: %+v", st.Which, st)
		}
		if age := time.Since(st.SnapshotTime).Seconds(); st.DataAge <= 0 || st.DataAge > age {
			t.Errorf("%s: data age %.3fs, the snapshot is %.3fs old", st.Which, st.DataAge, age)
		}
		// What the verification command saw in the scratch database.
		names, err := os.ReadFile(filepath.Join(out, st.Snapshot+".db"))
		must(t, err)
		name := strings.TrimSpace(string(names))
		if !scratchRE.MatchString(name) || len(name) != len("bulwark_restore_test_")+12 {
			t.Errorf("%s: BULWARK_SCRATCH_DATABASES=%q, want one bulwark_restore_test_ name", st.Which, name)
		}
		scratchDBs = append(scratchDBs, name)
		got, err := os.ReadFile(filepath.Join(out, st.Snapshot+".state"))
		must(t, err)
		if g := strings.TrimSpace(string(got)); g != want[st.Snapshot] {
			t.Errorf("%s: the scratch database holds\n%s\nthe source held\n%s", st.Which, g, want[st.Snapshot])
		}
	}
	if older.DataAge <= newest.DataAge {
		t.Errorf("data age: older %.3f, newest %.3f", older.DataAge, newest.DataAge)
	}
	if scratchDBs[0] == scratchDBs[1] {
		t.Errorf("both snapshots used scratch database %s", scratchDBs[0])
	}
	if left := myExisting(t, scratchDBs); len(left) != 0 {
		t.Errorf("scratch databases left: %v", left)
	}
	if after := rtState(t, src); after != before {
		t.Errorf("the source changed:\n%s\nwas\n%s", after, before)
	}
	if left, _ := os.ReadDir(scratchDir); len(left) != 0 {
		t.Errorf("scratch directory not cleaned: %v", left)
	}

	// The recorded evidence, as JSON.
	last, _, err := f.svc.History.Last(ctx, "shop", KindRestoreTest, false)
	must(t, err)
	var js struct {
		Result   string  `json:"result"`
		Duration float64 `json:"duration_seconds"`
		Tests    []map[string]any
	}
	must(t, json.Unmarshal(last.Evidence, &js))
	if last.Status != StatusOK || js.Result != "passed" || js.Duration <= 0 || len(js.Tests) != 2 {
		t.Fatalf("history: %+v %s", last, last.Evidence)
	}
	for i, tst := range js.Tests {
		if tst["snapshot"] != order[1-i] || tst["bytes"] != float64(bytes[order[1-i]]) || tst["files_verified"] != float64(1) ||
			tst["recovery_seconds"].(float64) <= 0 || tst["data_age_seconds"].(float64) <= 0 ||
			fmt.Sprint(tst["databases_restored"]) != "[/"+dump.MyDumpFileName(src)+"]" {
			t.Errorf("recorded test %d: %v", i, tst)
		}
	}
	if types := strings.Join(f.eventTypes(t), ","); !strings.Contains(types, "restore_test.passed") || strings.Contains(types, "failed") {
		t.Errorf("events: %s", types)
	}
}

// Restore tests that must fail: each says why, is recorded as failed,
// raises restore_test.failed, drops every scratch database it created,
// never shows the scratch server's password and leaves the source alone.
func TestRestoreTestMySQLFailures(t *testing.T) {
	needMariaDB(t)
	app := dumptest.MariaDBDatabase(t, "bulwark_rt_my_app")
	dumptest.MariaDB(t, app, dumptest.MariaDBFill(1500))
	plain := dumptest.MariaDBDatabase(t, "bulwark_rt_my_plain") // tables only: no DEFINER anywhere
	dumptest.MariaDB(t, plain, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_3000;")
	f := newFixture(t, config.Policy{Name: "app", Sources: []config.Source{
		{Name: "app", MySQL: config.EnvSecret("APP_DSN")},
		{Name: "plain", MySQL: config.EnvSecret("PLAIN_DSN")},
	}})
	f.env["APP_DSN"], f.env["PLAIN_DSN"] = myServer+app, myServer+plain
	if _, err := f.svc.RunBackup(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	appState, plainCount := rtState(t, app), dumptest.MariaDB(t, plain, "SELECT COUNT(*) FROM t")

	// A scratch server account that may create and drop only scratch
	// databases, with a password: it can restore plain tables, but not
	// the app's trigger, routines and event, whose DEFINER is root.
	user, password := myUser(t, "ALL ON `bulwark\\_restore\\_test\\_%`.*")
	out := t.TempDir()
	failing := writeScript(t, out, "fail.sh", fmt.Sprintf(`echo "$BULWARK_SCRATCH_DATABASES" > %[1]s/"$BULWARK_SOURCE".db
for db in $BULWARK_SCRATCH_DATABASES; do mariadb %[2]s --database="$db" -e 'SELECT 1' >/dev/null; done
echo "orders: 0 rows in $BULWARK_SCRATCH_DATABASES, want 6000"
exit 1
`, out, strings.Join(dumptest.MariaDBArgs, " ")))

	tests := []struct {
		name    string
		rt      config.RestoreTest
		scratch string // SCRATCH_DSN
		// wantErr per source: app, plain ("" : that source passes).
		wantErr [2][]string
		// fromCommand: the scratch names come from the command's record.
		fromCommand bool
	}{
		{name: "verification command fails", rt: config.RestoreTest{Command: []string{failing}}, scratch: myServer, fromCommand: true,
			wantErr: [2][]string{{"verification command", "orders: 0 rows in bulwark_restore_test_"}, {"verification command", "orders: 0 rows"}}},
		{name: "scratch server refuses connections", scratch: "mysql://root@127.0.0.1:1/",
			wantErr: [2][]string{{"scratch database", "Can't connect"}, {"scratch database", "Can't connect"}}},
		{name: "scratch server refuses the login", scratch: "mysql://bulwark_nobody:S3cretPassw0rd@127.0.0.1:3306/",
			wantErr: [2][]string{{"scratch database", "Access denied for user 'bulwark_nobody'"}, {"Access denied"}}},
		{name: "restore fails half-way", scratch: "mysql://" + user + ":" + password + "@127.0.0.1:3306/",
			wantErr: [2][]string{{"restoring /mysql/" + app + ".sql into a scratch database", "bulwark_restore_test_", "Access denied; you need (at least one of) the SUPER"}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.svc.Config.Policies[0].RestoreTest = tt.rt
			f.svc.Config.Policies[0].RestoreTest.MySQL = config.EnvSecret("SCRATCH_DSN")
			f.env["SCRATCH_DSN"] = tt.scratch
			failedBefore := strings.Count(strings.Join(f.eventTypes(t), ","), "restore_test.failed")
			ev, err := f.svc.RestoreTest(ctx, "app")
			if err == nil || ev == nil || ev.Result != "failed" || len(ev.Tests) != 2 {
				t.Fatalf("restore test: %v, evidence %+v", err, ev)
			}
			var scratchDBs []string
			for i, st := range ev.Tests {
				if st.Files != 1 || st.FilesVerified != 1 {
					t.Errorf("%s: the dump was not restored and verified as a file: %+v", st.Source, st)
				}
				for _, w := range tt.wantErr[i] {
					if !strings.Contains(st.Error, w) || !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q (run: %v) lacks %q", st.Source, st.Error, err, w)
					}
				}
				if tt.wantErr[i] == nil && (st.Error != "" || len(st.Databases) != 1) {
					t.Errorf("%s: %+v, want a passed restore into a scratch database", st.Source, st)
				}
				if tt.fromCommand {
					b, err := os.ReadFile(filepath.Join(out, st.Source+".db"))
					must(t, err)
					scratchDBs = append(scratchDBs, strings.TrimSpace(string(b)))
				} else {
					scratchDBs = append(scratchDBs, scratchRE.FindAllString(st.Error, -1)...)
				}
			}
			if tt.fromCommand && len(scratchDBs) != 2 {
				t.Errorf("the command saw scratch databases %q", scratchDBs)
			}
			if left := myExisting(t, scratchDBs); len(left) != 0 {
				t.Errorf("scratch databases left: %v", left)
			}
			last, _, herr := f.svc.History.Last(ctx, "app", KindRestoreTest, false)
			must(t, herr)
			if last.Status != StatusFailed || !strings.Contains(string(last.Evidence), `"result":"failed"`) {
				t.Errorf("history: %+v", last)
			}
			if n := strings.Count(strings.Join(f.eventTypes(t), ","), "restore_test.failed"); n != failedBefore+1 {
				t.Errorf("%d new restore_test.failed events, want 1", n-failedBefore)
			}
			if strings.Contains(err.Error()+string(last.Evidence), "S3cretPassw0rd") || strings.Contains(err.Error()+string(last.Evidence), password) {
				t.Errorf("a scratch server password shows: %v %s", err, last.Evidence)
			}
		})
	}
	if got := rtState(t, app); got != appState {
		t.Errorf("source %s changed:\n%s\nwas\n%s", app, got, appState)
	}
	if got := dumptest.MariaDB(t, plain, "SELECT COUNT(*) FROM t"); got != plainCount {
		t.Errorf("source %s: %s rows, was %s", plain, got, plainCount)
	}
}

// An --all-databases dump (/mysql/@all.sql) recreates every database under
// its own name: replayed on the scratch server it would overwrite the
// originals there (the source itself when the scratch server is the
// production one). The restore test refuses it, with a clear error,
// instead of running it.
func TestRestoreTestMySQLAllDatabases(t *testing.T) {
	needMariaDB(t)
	src := dumptest.MariaDBDatabase(t, "bulwark_rt_my_all")
	dumptest.MariaDB(t, src, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_2000;")
	// A user who sees only src: its --all-databases dump holds only src
	// (no mysql system database, no other test's database).
	user, password := myUser(t, "ALL ON `"+src+"`.*")
	f := newFixture(t, config.Policy{Name: "all",
		Sources:     []config.Source{{Name: "server", MySQL: config.EnvSecret("SRC_DSN")}},
		RestoreTest: config.RestoreTest{MySQL: config.EnvSecret("SCRATCH_DSN")},
	})
	f.env["SRC_DSN"] = "mysql://" + user + ":" + password + "@127.0.0.1:3306/"
	f.env["SCRATCH_DSN"] = myServer
	if _, err := f.svc.RunBackup(ctx, "all"); err != nil {
		t.Fatal(err)
	}
	// A change after the backup, which a replay of the dump would undo.
	dumptest.MariaDB(t, src, "DELETE FROM t WHERE id > 1000; INSERT INTO t VALUES (5000, 'after the backup')")
	want := dumptest.MariaDB(t, src, "SELECT CONCAT(COUNT(*), ' ', MAX(id)) FROM t")

	ev, err := f.svc.RestoreTest(ctx, "all")
	if err == nil || ev.Result != "failed" || len(ev.Tests) != 1 {
		t.Fatalf("restore test of an --all-databases dump: %v %+v", err, ev)
	}
	st := ev.Tests[0]
	if !strings.Contains(st.Error, "/"+dump.MyAllFile) || !strings.Contains(st.Error, "cannot be restored into a scratch database") ||
		st.Files != 1 || st.FilesVerified != 1 || len(st.Databases) != 0 {
		t.Errorf("test: %+v", st)
	}
	if scratchRE.MatchString(st.Error) {
		t.Errorf("a scratch database was created for a dump that cannot go into one: %s", st.Error)
	}
	if got := dumptest.MariaDB(t, src, "SELECT CONCAT(COUNT(*), ' ', MAX(id)) FROM t"); got != want {
		t.Errorf("source after the restore test: %s, want %s (the dump was replayed over it)", got, want)
	}
	if types := strings.Join(f.eventTypes(t), ","); !strings.Contains(types, "restore_test.failed") {
		t.Errorf("events: %s", types)
	}
}

// A repository whose packs were tampered with fails the restore test
// before any SQL reaches the scratch server.
func TestRestoreTestMySQLTampered(t *testing.T) {
	needMariaDB(t)
	src := dumptest.MariaDBDatabase(t, "bulwark_rt_my_tamper")
	dumptest.MariaDB(t, src, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_2000;")
	f := newFixture(t, config.Policy{Name: "db",
		Sources:     []config.Source{{Name: "db", MySQL: config.EnvSecret("SRC_DSN")}},
		RestoreTest: config.RestoreTest{MySQL: config.EnvSecret("SCRATCH_DSN")},
	})
	f.env["SRC_DSN"], f.env["SCRATCH_DSN"] = myServer+src, myServer
	if _, err := f.svc.RunBackup(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(f.dirs["primary"], "data", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	for _, p := range packs {
		b, err := os.ReadFile(p)
		must(t, err)
		b[len(b)/2] ^= 0x01
		must(t, os.Chmod(p, 0o600))
		must(t, os.WriteFile(p, b, 0o600))
	}
	ev, err := f.svc.RestoreTest(ctx, "db")
	if err == nil || ev.Result != "failed" || len(ev.Tests) != 1 || ev.Tests[0].Error == "" || len(ev.Tests[0].Databases) != 0 {
		t.Fatalf("restore test of a tampered repository: %v %+v", err, ev)
	}
	if !strings.Contains(ev.Tests[0].Error, "restore") || scratchRE.MatchString(ev.Tests[0].Error) {
		t.Errorf("error: %s", ev.Tests[0].Error)
	}
	if got := dumptest.MariaDB(t, src, "SELECT COUNT(*) FROM t"); got != "2000" {
		t.Errorf("source: %s rows", got)
	}
	if types := strings.Join(f.eventTypes(t), ","); !strings.Contains(types, "restore_test.failed") {
		t.Errorf("events: %s", types)
	}
}

// The verification command sees PostgreSQL scratch databases too, while
// they exist; they are dropped after it.
func TestRestoreTestPostgresScratchCommand(t *testing.T) {
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump not installed (make test installs postgresql-client)")
	}
	db := fmt.Sprintf("bulwark_rt_pgcmd_%d", time.Now().UnixNano())
	psql(t, "test", "CREATE DATABASE "+db)
	t.Cleanup(func() {
		exec.Command("psql", "-X", "-q", "postgres://root@127.0.0.1:5432/test?sslmode=disable", "-c", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)").Run()
	})
	const state = "SELECT count(*) || ' ' || md5(string_agg(v, ',' ORDER BY id)) FROM t"
	psql(t, db, "CREATE TABLE t(id int primary key, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g")
	out := t.TempDir()
	check := writeScript(t, out, "check.sh", fmt.Sprintf(`echo "$BULWARK_SCRATCH_DATABASES" > %[1]s/db
psql -X -tA -v ON_ERROR_STOP=1 "postgres://root@127.0.0.1:5432/$BULWARK_SCRATCH_DATABASES?sslmode=disable" -c "%[2]s" > %[1]s/state
`, out, state))
	f := newFixture(t, config.Policy{Name: "db",
		Sources:     []config.Source{{Name: "app", Postgres: config.EnvSecret("SRC_DSN")}},
		RestoreTest: config.RestoreTest{Postgres: config.EnvSecret("SCRATCH_DSN"), Command: []string{check}},
	})
	f.env["SRC_DSN"] = "postgres://root@127.0.0.1:5432/" + db + "?sslmode=disable"
	f.env["SCRATCH_DSN"] = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	if _, err := f.svc.RunBackup(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	ev, err := f.svc.RestoreTest(ctx, "db")
	if err != nil || len(ev.Tests) != 1 || len(ev.Tests[0].Databases) != 1 {
		t.Fatalf("restore test: %v %+v", err, ev)
	}
	name, err := os.ReadFile(filepath.Join(out, "db"))
	must(t, err)
	got, err := os.ReadFile(filepath.Join(out, "state"))
	must(t, err)
	if n := strings.TrimSpace(string(name)); !scratchRE.MatchString(n) {
		t.Errorf("BULWARK_SCRATCH_DATABASES=%q", n)
	} else if left := psql(t, "test", "SELECT count(*) FROM pg_database WHERE datname = '"+n+"'"); left != "0" {
		t.Errorf("scratch database %s left", n)
	}
	if want := psql(t, db, state); strings.TrimSpace(string(got)) != want || !strings.HasPrefix(want, "3000 ") {
		t.Errorf("the command saw %q in the scratch database, the source holds %q", got, want)
	}
}
