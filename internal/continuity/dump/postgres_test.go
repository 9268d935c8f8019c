package dump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/continuity/dump/dumptest"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/google/go-cmp/cmp"
)

// The PostgreSQL server of the test machine (scripts/test-deps.sh).
const pgBase = "host=127.0.0.1 port=5432 user=postgres"

func pgDSN(db string) string { return pgBase + " dbname='" + db + "'" }

// psql runs SQL in db and returns the unaligned output.
func psql(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := exec.Command("psql", "--no-psqlrc", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--dbname="+pgDSN(db), "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %s: %v\n%s\nSQL: %s", db, err, out, sql)
	}
	return strings.TrimSpace(string(out))
}

// pgCreateDB creates an empty database, dropped when the test ends.
func pgCreateDB(t *testing.T, prefix string) string {
	t.Helper()
	db := dumptest.UniqueName(prefix)
	psql(t, "postgres", `CREATE DATABASE "`+db+`"`)
	t.Cleanup(func() {
		out, err := exec.Command("psql", "--no-psqlrc", "-X", "--dbname="+pgDSN("postgres"), "-c", `DROP DATABASE IF EXISTS "`+db+`" WITH (FORCE)`).CombinedOutput()
		if err != nil {
			t.Errorf("dropping %s: %v %s", db, err, out)
		}
	})
	return db
}

// pgFill creates the test schema: a foreign key, a view, a trigger
// function, bytea, unicode, NULLs and thousands of rows.
const pgFill = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, note text, avatar bytea, created timestamptz NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), amount numeric(12,2),
  payload bytea, comment text, updated timestamptz);
CREATE TABLE audit (id bigserial PRIMARY KEY, order_id int, what text);
CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit(order_id, what) VALUES (NEW.id, TG_OP); RETURN NEW; END $$;
CREATE TRIGGER orders_log AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION log_order();
CREATE VIEW big_orders AS SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > 500;
INSERT INTO customers (name, note, avatar, created)
  SELECT 'Zoë Ångström 日本語 ' || i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'note ''quoted'' \ ' || md5(i::text) END,
         CASE WHEN i % 5 = 0 THEN NULL ELSE decode(md5(i::text) || '00ff0a0d', 'hex') END,
         timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
  FROM generate_series(1, 3000) i;
INSERT INTO orders (customer_id, amount, payload, comment, updated)
  SELECT 1 + (i * 7919) % 3000, (i % 1000) + 0.25, decode(repeat(md5(i::text), 8), 'hex'),
         CASE WHEN i % 3 = 0 THEN NULL ELSE E'line1\nline2\t€ ' || i END,
         CASE WHEN i % 11 = 0 THEN NULL ELSE timestamptz '2024-06-01 00:00:00+00' + i * interval '1 second' END
  FROM generate_series(1, 20000) i;
`

var pgTables = []string{"audit", "customers", "orders"}

// pgState is what must survive a backup and restore: per table the row
// count and an md5 of the rows in id order, and the schema objects.
func pgState(t *testing.T, db string) map[string]string {
	t.Helper()
	st := map[string]string{}
	for _, tbl := range pgTables {
		st[tbl] = psql(t, db, fmt.Sprintf(`SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM %s t`, tbl))
	}
	st["view"] = psql(t, db, `SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM big_orders t`)
	st["triggers"] = psql(t, db, `SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal`)
	st["functions"] = psql(t, db, `SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace`)
	st["fkeys"] = psql(t, db, `SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE contype = 'f'`)
	return st
}

func TestPostgresBackupRestore(t *testing.T) {
	src := pgCreateDB(t, "bulwark_pg_src")
	psql(t, src, pgFill)
	want := pgState(t, src)
	if !strings.HasPrefix(want["orders"], "20000 ") || !strings.HasPrefix(want["customers"], "3000 ") || !strings.HasPrefix(want["audit"], "20000 ") {
		t.Fatalf("test data not as planned: %v", want)
	}
	r, dir := repotest.New(t, repotest.Options{})

	start := time.Now()
	res, err := BackupPostgres(bg, r, pgDSN(src), PGOptions{}, archiver.Options{Tags: []string{"pg"}})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("pg_dump+backup of %s: %d bytes of dumps in %v, %d bytes added to the repository", src, res.Summary.TotalBytes, elapsed.Round(time.Millisecond), res.Summary.BytesAdded)
	wantPaths := []string{"/" + PGDumpFileName(src), "/" + PGGlobalsFile}
	if diff := cmp.Diff(wantPaths, res.Snapshot.Paths); diff != "" {
		t.Errorf("snapshot paths (-want +got):\n%s", diff)
	}
	if !res.Snapshot.HasTag("pg") {
		t.Errorf("tags = %v", res.Snapshot.Tags)
	}
	globals := string(readFile(t, r, res.Snapshot, PGDir, "globals.sql"))
	if !strings.Contains(globals, "CREATE ROLE postgres;") {
		t.Errorf("globals.sql lacks the roles:\n%.500s", globals)
	}
	if dump := readFile(t, r, res.Snapshot, PGDir, filepathBase(PGDumpFileName(src))); !strings.HasPrefix(string(dump), "PGDMP") {
		t.Errorf("the dump is not a pg_dump custom archive: %q", dump[:min(16, len(dump))])
	}

	// A second dump of the unchanged database deduplicates (--compress=0):
	// only the chunk holding the archive's header (its creation time) and
	// the two trees are new.
	blobs := r.Stats().BlobsAdded.Load()
	res2, err := BackupPostgres(bg, r, pgDSN(src), PGOptions{}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	newBlobs := r.Stats().BlobsAdded.Load() - blobs
	t.Logf("second backup of the unchanged database: %d new blobs, %d bytes added", newBlobs, res2.Summary.BytesAdded)
	if newBlobs > 4 {
		t.Errorf("second backup of an unchanged database stored %d new blobs, want at most 4", newBlobs)
	}

	// Restore, through a fresh process's view of the repository, into
	// another fresh database.
	r2 := repotest.Open(t, dir, repotest.Password)
	snap, err := r2.FindSnapshot(bg, repo.Hex(res.Snapshot.ID), repo.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	dst := pgCreateDB(t, "bulwark_pg_dst")
	start = time.Now()
	done, err := RestorePostgres(bg, r2, snap, pgDSN(dst), RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore into %s: %v", dst, time.Since(start).Round(time.Millisecond))
	if len(done) != 1 || done[0].Database != dst || done[0].Bytes != int64(res.Summary.TotalBytes)-int64(len(globals)) {
		t.Errorf("restored %+v", done)
	}
	if diff := cmp.Diff(want, pgState(t, dst)); diff != "" {
		t.Errorf("restored database differs (-source +restored):\n%s", diff)
	}

	// Restoring again over the restored database (--clean) gives the same.
	psql(t, dst, `DELETE FROM audit WHERE id % 2 = 0; CREATE TABLE extra (x int)`)
	if _, err := RestorePostgres(bg, r2, snap, pgDSN(dst), RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, pgState(t, dst)); diff != "" {
		t.Errorf("second restore differs (-source +restored):\n%s", diff)
	}

	// A DSN without a database restores each dump into the database of its
	// own name (--create): the damaged source comes back.
	psql(t, src, `DELETE FROM orders WHERE id > 100; DROP VIEW big_orders`)
	done, err = RestorePostgres(bg, r2, snap, pgBase, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].Database != src {
		t.Errorf("restore --create: %+v", done)
	}
	if diff := cmp.Diff(want, pgState(t, src)); diff != "" {
		t.Errorf("database recreated from the snapshot differs (-before +after):\n%s", diff)
	}

	// Errors that must be clear.
	if _, err := RestorePostgres(bg, r2, snap, pgDSN("bulwark_no_such_db_x"), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), `database "bulwark_no_such_db_x" does not exist`) {
		t.Errorf("restore into a missing database: %v", err)
	}
	if _, err := RestorePostgres(bg, r2, snap, pgDSN(dst), RestoreOptions{Includes: []string{"/postgres/nope.dump"}}); err == nil || !strings.Contains(err.Error(), "matches no dump") {
		t.Errorf("--include of nothing: %v", err)
	}
}

func filepathBase(p string) string { return filepath.Base(p) }

// TestPostgresFailedDumpLeavesNoSnapshot: a database that does not exist,
// a server that does not answer, and a bad keyword each fail with the
// tool's own words, and the repository holds no snapshot afterwards.
func TestPostgresFailedDumpLeavesNoSnapshot(t *testing.T) {
	tests := []struct {
		name, dsn string
		o         PGOptions
		wantErr   []string
	}{
		{name: "no such database", dsn: pgDSN("bulwark_missing_db_zz"),
			wantErr: []string{`pg_dump of database "bulwark_missing_db_zz"`, "exit status 1", `database "bulwark_missing_db_zz" does not exist`, "no snapshot was saved"}},
		{name: "no such database, no globals", dsn: pgDSN("bulwark_missing_db_zz"), o: PGOptions{NoGlobals: true},
			wantErr: []string{"exit status 1", "does not exist"}},
		{name: "nothing listening", dsn: "host=127.0.0.1 port=1 user=postgres dbname=test",
			wantErr: []string{`pg_dump of database "test"`, "exit status 1", "127.0.0.1", "port 1"}},
		{name: "nothing listening, all databases", dsn: "host=127.0.0.1 port=1 user=postgres",
			wantErr: []string{"psql (listing databases)", "port 1"}},
		{name: "bad keyword", dsn: pgBase + " dbname=test bogus_option=1",
			wantErr: []string{"invalid connection option", "bogus_option"}},
		{name: "unparsable", dsn: "host='127.0.0.1", wantErr: []string{"unterminated quoted string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := repotest.New(t, repotest.Options{})
			_, err := BackupPostgres(bg, r, tt.dsn, tt.o, archiver.Options{})
			if err == nil {
				t.Fatal("backup succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := snapshotCount(t, r); n != 0 {
				t.Errorf("%d snapshots after a failed dump, want 0", n)
			}
		})
	}
}

func TestPostgresDatabasesLists(t *testing.T) {
	db := pgCreateDB(t, "bulwark_pg_list")
	dbs, err := PostgresDatabases(bg, pgBase, PGOptions{})
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, d := range dbs {
		has[d] = true
	}
	if !has[db] || !has["postgres"] || has["template0"] || has["template1"] {
		t.Errorf("databases = %v; want %s and postgres, no templates", dbs, db)
	}
	if dbs, err := PostgresDatabases(bg, pgDSN(db), PGOptions{}); err != nil || len(dbs) != 1 || dbs[0] != db {
		t.Errorf("DSN with dbname: %v %v", dbs, err)
	}
}

// TestPostgresPasswordNotOnCommandLine: the password of a DSN reaches
// pg_dump through PGPASSWORD, never its argv (which /proc shows to every
// local user). The server trusts loopback, so the dump still succeeds.
func TestPostgresPasswordNotOnCommandLine(t *testing.T) {
	const secret = "s3cret-'quoted' \\ pw"
	db := pgCreateDB(t, "bulwark_pg_pw")
	ci, err := ParsePGDSN(pgDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	ci.Set("password", secret)
	streams, err := PostgresStreams(bg, ci.String(), PGOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range streams {
		rc, err := st.Open(bg)
		if err != nil {
			t.Fatal(err)
		}
		pr := rc.(*procReader)
		if args := strings.Join(pr.cmd.Args, " "); strings.Contains(args, "s3cret") {
			t.Errorf("%s: argv holds the password: %s", st.Name, args)
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pr.cmd.Process.Pid))
		if err == nil && strings.Contains(string(cmdline), "s3cret") {
			t.Errorf("%s: /proc cmdline holds the password", st.Name)
		}
		found := false
		for _, e := range pr.cmd.Env {
			found = found || e == "PGPASSWORD="+secret
		}
		if !found {
			t.Errorf("%s: PGPASSWORD not set", st.Name)
		}
		if _, err := readAllClose(rc); err != nil {
			t.Errorf("%s: %v", st.Name, err)
		}
	}
}

func readAllClose(rc interface {
	Read([]byte) (int, error)
	Close() error
}) (int64, error) {
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := rc.Read(buf)
		n += int64(k)
		if err != nil {
			if cerr := rc.Close(); cerr != nil {
				return n, cerr
			}
			if errors.Is(err, context.Canceled) {
				return n, err
			}
			return n, nil
		}
	}
}

// TestPostgresRestoreFailureRollsBack: when the repository cannot deliver
// the whole dump (a pack is gone), pg_restore is stopped and its single
// transaction leaves the target database exactly as it was.
func TestPostgresRestoreFailureRollsBack(t *testing.T) {
	src := pgCreateDB(t, "bulwark_pg_rb_src")
	psql(t, src, pgFill+`CREATE TABLE noise (id serial PRIMARY KEY, b bytea);
INSERT INTO noise (b) SELECT (SELECT decode(string_agg(md5(random()::text || i || j), ''), 'hex') FROM generate_series(1, 64) j)
  FROM generate_series(1, 4000) i;`)
	r, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
	res, err := BackupPostgres(bg, r, pgDSN(src), PGOptions{NoGlobals: true}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := ListFiles(bg, r, res.Snapshot, PGDir)
	if err != nil || len(files) != 1 {
		t.Fatalf("files %v %v", files, err)
	}
	content := files[0].Node.Content
	if len(content) < 3 {
		t.Fatalf("dump has %d chunks; the test needs several", len(content))
	}
	// Remove the pack holding the last chunk, unless it also holds the first.
	last, _ := r.Index().Lookup(repo.DataBlob, repo.ID(content[len(content)-1].ID))
	first, _ := r.Index().Lookup(repo.DataBlob, repo.ID(content[0].ID))
	if last.Pack == first.Pack {
		t.Fatal("first and last chunk share a pack; lower PackSize")
	}
	h := repo.Hex(last.Pack)
	if err := os.Remove(filepath.Join(dir, "data", h[:2], h)); err != nil {
		t.Fatal(err)
	}
	dst := pgCreateDB(t, "bulwark_pg_rb_dst")
	psql(t, dst, `CREATE TABLE sentinel (keep int); INSERT INTO sentinel VALUES (42)`)
	r2 := repotest.Open(t, dir, repotest.Password)
	_, err = RestorePostgres(bg, r2, res.Snapshot, pgDSN(dst), RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "reading the dump from the repository") {
		t.Fatalf("restore with a missing pack: %v", err)
	}
	if got := psql(t, dst, `SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'`); got != "sentinel" {
		t.Errorf("tables after the failed restore: %q, want only the original sentinel", got)
	}
	if got := psql(t, dst, `SELECT keep FROM sentinel`); got != "42" {
		t.Errorf("sentinel after the failed restore: %q", got)
	}
}
