package dump

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/continuity/dump/dumptest"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/google/go-cmp/cmp"
)

// The MariaDB server of the test machine (scripts/test-deps.sh): root,
// no password, on loopback TCP.
const myBase = "mysql://root@127.0.0.1:3306/"

var myTables = map[string]string{
	"customers": "CONCAT_WS('|', id, name, IFNULL(note, '<null>'), IFNULL(HEX(avatar), '<null>'), created)",
	"orders":    "CONCAT_WS('|', id, customer_id, amount, HEX(payload), IFNULL(comment, '<null>'))",
	"audit":     "CONCAT_WS('|', id, order_id, what)",
}

// myState: per table the row count and the md5 of its rows in id order,
// and the schema objects.
func myState(t *testing.T, db string) map[string]string {
	t.Helper()
	st := map[string]string{}
	for tbl, row := range myTables {
		st[tbl] = dumptest.MariaDB(t, db, fmt.Sprintf("SET SESSION group_concat_max_len = 1073741824; SELECT CONCAT(COUNT(*), ' ', MD5(IFNULL(GROUP_CONCAT(%s ORDER BY id SEPARATOR '\\n'), ''))) FROM %s", row, tbl))
	}
	st["view"] = dumptest.MariaDB(t, db, "SET SESSION group_concat_max_len = 1073741824; SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(CONCAT_WS('|', id, name, amount) ORDER BY id))) FROM big_orders")
	st["routines"] = dumptest.MariaDB(t, db, "SELECT GROUP_CONCAT(CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME) ORDER BY ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()")
	st["triggers"] = dumptest.MariaDB(t, db, "SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
	st["events"] = dumptest.MariaDB(t, db, "SELECT GROUP_CONCAT(EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()")
	st["fkeys"] = dumptest.MariaDB(t, db, "SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, '->', REFERENCED_TABLE_NAME)) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()")
	st["vat"] = dumptest.MariaDB(t, db, "SELECT vat(100)")
	return st
}

func TestMySQLBackupRestore(t *testing.T) {
	src := dumptest.MariaDBDatabase(t, "bulwark_my_src")
	dumptest.MariaDB(t, src, dumptest.MariaDBFill(2500))
	want := myState(t, src)
	if !strings.HasPrefix(want["orders"], "10000 ") || !strings.HasPrefix(want["customers"], "2500 ") || want["events"] != "nightly" || want["triggers"] != "orders_log" {
		t.Fatalf("test data not as planned: %v", want)
	}
	r, dir := repotest.New(t, repotest.Options{})
	start := time.Now()
	res, err := BackupMySQL(bg, r, myBase+src, Options{}, archiver.Options{Tags: []string{"mariadb"}, Host: "db1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mariadb-dump+backup of %s: %d bytes of SQL in %v, %d bytes added to the repository", src, res.Summary.TotalBytes, time.Since(start).Round(time.Millisecond), res.Summary.BytesAdded)
	if diff := cmp.Diff([]string{"/" + MyDumpFileName(src)}, res.Snapshot.Paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	sql := string(readFile(t, r, res.Snapshot, MyDir, src+".sql"))
	for _, w := range []string{"CREATE TABLE `orders`", "0x", "CREATE DEFINER", "PROCEDURE `fill`", "EVENT `nightly`", "orders_log", "-- Dump completed"} {
		if !strings.Contains(sql, w) {
			t.Errorf("dump lacks %q", w)
		}
	}
	if strings.Contains(sql, "CREATE DATABASE") || strings.Contains(sql, "USE `") {
		t.Error("a single-database dump names its database; it could not be restored under another name")
	}

	r2 := repotest.Open(t, dir, repotest.Password)
	snap, err := r2.FindSnapshot(bg, "latest", repo.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	dst := dumptest.MariaDBDatabase(t, "bulwark_my_dst")
	start = time.Now()
	done, err := RestoreMySQL(bg, r2, snap, myBase+dst, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore into %s: %v", dst, time.Since(start).Round(time.Millisecond))
	if len(done) != 1 || done[0].Database != dst || done[0].Bytes != res.Summary.TotalBytes {
		t.Errorf("restored %+v", done)
	}
	if diff := cmp.Diff(want, myState(t, dst)); diff != "" {
		t.Errorf("restored database differs (-source +restored):\n%s", diff)
	}
	// The restored objects refer to the restored database, not the source.
	for _, q := range []string{
		"SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()",
		"SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
		"SELECT ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()",
	} {
		if got := dumptest.MariaDB(t, dst, q); strings.Contains(got, src) || got == "" {
			t.Errorf("%s: %q (mentions the source %s or is empty)", q, got, src)
		}
	}
	// The source is untouched by a restore elsewhere.
	if diff := cmp.Diff(want, myState(t, src)); diff != "" {
		t.Errorf("source changed (-before +after):\n%s", diff)
	}

	// Errors that must be clear.
	if _, err := RestoreMySQL(bg, r2, snap, myBase+"bulwark_no_such_db_q", RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "Unknown database 'bulwark_no_such_db_q'") {
		t.Errorf("restore into a missing database: %v", err)
	}
	if _, err := RestoreMySQL(bg, r2, snap, myBase, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "holds no /mysql/@all.sql") {
		t.Errorf("restore of a single database without naming the target: %v", err)
	}
	if _, err := RestorePostgres(bg, r2, snap, pgDSN("test"), RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "holds no PostgreSQL dump") {
		t.Errorf("postgres restore of a mysql snapshot: %v", err)
	}
}

// TestMySQLFailedDumpLeavesNoSnapshot: a missing database, a wrong
// password and a closed port fail with the tool's words and save nothing;
// the password never shows in the error.
func TestMySQLFailedDumpLeavesNoSnapshot(t *testing.T) {
	tests := []struct {
		name, dsn string
		wantErr   []string
	}{
		{name: "no such database", dsn: myBase + "bulwark_missing_db_q",
			wantErr: []string{`mariadb-dump of database "bulwark_missing_db_q"`, "exit status 2", "Unknown database", "no snapshot was saved"}},
		{name: "wrong password", dsn: "mysql://bulwark_nobody:Wr0ngPassw0rd@127.0.0.1:3306/test",
			wantErr: []string{"exit status 2", "Access denied for user 'bulwark_nobody'"}},
		{name: "nothing listening", dsn: "mysql://root@127.0.0.1:1/test", wantErr: []string{"exit status 2", "Can't connect"}},
		{name: "go driver form", dsn: "root@tcp(127.0.0.1:3306)/test", wantErr: []string{"not accepted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := repotest.New(t, repotest.Options{})
			_, err := BackupMySQL(bg, r, tt.dsn, Options{}, archiver.Options{})
			if err == nil {
				t.Fatal("backup succeeded")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "Wr0ngPassw0rd") {
				t.Errorf("error shows the password: %v", err)
			}
			if n := snapshotCount(t, r); n != 0 {
				t.Errorf("%d snapshots after a failed dump, want 0", n)
			}
		})
	}
}

// TestMySQLPasswordUser backs up and restores as a user whose password
// holds every character that needs quoting; the password is in a 0600
// option file while the dump runs, never in argv, and the file is gone
// afterwards.
func TestMySQLPasswordUser(t *testing.T) {
	const password = `p@ss:w/o"rd'\ #;%x` + "\t="
	src := dumptest.MariaDBDatabase(t, "bulwark_my_pw_src")
	dst := dumptest.MariaDBDatabase(t, "bulwark_my_pw_dst")
	user := dumptest.UniqueName("bwu")
	sqlPW := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	dumptest.MariaDB(t, "", fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON `%s`.* TO '%s'@'%%'; GRANT ALL ON `%s`.* TO '%s'@'%%';",
		user, sqlPW, src, user, dst, user))
	t.Cleanup(func() { dumptest.MariaDBExec(t, "DROP USER IF EXISTS '"+user+"'@'%'") })
	dumptest.MariaDB(t, src, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (1, 'ä'), (2, NULL), (3, 'z');")
	dsn := "mysql://" + user + ":" + pctEncodeAll(password) + "@127.0.0.1:3306/"
	streams, err := MySQLStreams(dsn+src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := streams[0].Open(bg)
	if err != nil {
		t.Fatal(err)
	}
	pr := rc.(*procReader)
	args := strings.Join(pr.cmd.Args, " ")
	if strings.Contains(args, "w/o") {
		t.Errorf("argv holds the password: %s", args)
	}
	cnf := strings.TrimPrefix(pr.cmd.Args[1], "--defaults-extra-file=")
	fi, err := os.Stat(cnf)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("option file %s: %v mode %v", cnf, err, fi)
	}
	if _, err := readAllClose(rc); err != nil {
		t.Fatalf("dump as %s: %v", user, err)
	}
	if _, err := os.Stat(cnf); !os.IsNotExist(err) {
		t.Errorf("option file %s still there after the dump: %v", cnf, err)
	}

	r, _ := repotest.New(t, repotest.Options{})
	res, err := BackupMySQL(bg, r, dsn+src, Options{}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreMySQL(bg, r, res.Snapshot, dsn+dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := dumptest.MariaDB(t, dst, "SELECT GROUP_CONCAT(CONCAT(id, '=', IFNULL(v, 'NULL')) ORDER BY id) FROM t"); got != "1=ä,2=NULL,3=z" {
		t.Errorf("restored rows: %q", got)
	}
}

// pctEncodeAll percent-encodes every byte but letters and digits.
func pctEncodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
