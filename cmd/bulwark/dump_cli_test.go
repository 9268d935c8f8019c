package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Database end-to-end tests of `bulwark backup|restore --postgres|--mysql`
// against the PostgreSQL and MariaDB servers of the test machine.

const dumpCLIPGBase = "host=127.0.0.1 port=5432 user=postgres"

func dumpCLIName(prefix string) string {
	return fmt.Sprintf("%s_%d_%x", prefix, os.Getpid(), rand.Uint32())
}

func dumpCLIPSQL(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := exec.Command("psql", "--no-psqlrc", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"--dbname="+dumpCLIPGBase+" dbname="+db, "-c", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %s: %v\n%s", db, err, out)
	}
	return strings.TrimSpace(string(out))
}

func dumpCLIPGDB(t *testing.T) string {
	t.Helper()
	db := dumpCLIName("bulwark_cli_pg")
	dumpCLIPSQL(t, "postgres", `CREATE DATABASE "`+db+`"`)
	t.Cleanup(func() {
		if out, err := exec.Command("psql", "--no-psqlrc", "-X", "--dbname="+dumpCLIPGBase+" dbname=postgres",
			"-c", `DROP DATABASE IF EXISTS "`+db+`" WITH (FORCE)`).CombinedOutput(); err != nil {
			t.Errorf("drop %s: %v %s", db, err, out)
		}
	})
	return db
}

func dumpCLIMaria(t *testing.T, db, sql string) string {
	t.Helper()
	args := []string{"--protocol=tcp", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "--batch", "--skip-column-names"}
	if db != "" {
		args = append(args, "--database="+db)
	}
	cmd := exec.Command("mariadb", args...)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb %s: %v\n%s", db, err, out)
	}
	return strings.TrimSpace(string(out))
}

func dumpCLIMariaDB(t *testing.T) string {
	t.Helper()
	db := dumpCLIName("bulwark_cli_my")
	dumpCLIMaria(t, "", "CREATE DATABASE `"+db+"`")
	t.Cleanup(func() {
		if out, err := exec.Command("mariadb", "--protocol=tcp", "-h", "127.0.0.1", "-u", "root", "-e", "DROP DATABASE IF EXISTS `"+db+"`").CombinedOutput(); err != nil {
			t.Errorf("drop %s: %v %s", db, err, out)
		}
	})
	return db
}

type dumpCLISummary struct {
	SnapshotID string `json:"snapshot_id"`
	FilesNew   int    `json:"files_new"`
	TotalFiles int    `json:"total_files"`
	TotalBytes int64  `json:"total_bytes"`
	BytesAdded int64  `json:"bytes_added"`
	Warnings   int    `json:"warnings"`
}

func TestBackupRestorePostgresCLI(t *testing.T) {
	c, _ := repoCLI(t)
	mustRun(t, c, "repo", "init")
	src, dst := dumpCLIPGDB(t), dumpCLIPGDB(t)
	dumpCLIPSQL(t, src, `CREATE TABLE parent (id int PRIMARY KEY, name text);
CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent(id), data bytea, note text);
INSERT INTO parent SELECT i, 'naïve ' || i FROM generate_series(1, 500) i;
INSERT INTO child (parent_id, data, note) SELECT 1 + i % 500, decode(md5(i::text), 'hex'), CASE WHEN i % 4 = 0 THEN NULL ELSE 'ü' || i END
  FROM generate_series(1, 5000) i;`)
	checksum := `SELECT (SELECT count(*) || md5(string_agg(p::text, ',' ORDER BY id)) FROM parent p) || ' ' ||
		(SELECT count(*) || md5(string_agg(c::text, ',' ORDER BY id)) FROM child c)`
	want := dumpCLIPSQL(t, src, checksum)

	out := mustRun(t, c, "backup", "--json", "--tag", "db", "--host", "pg1", "--postgres", dumpCLIPGBase+" dbname="+src)
	var sum dumpCLISummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if sum.SnapshotID == "" || sum.FilesNew != 2 || sum.TotalFiles != 2 || sum.TotalBytes == 0 || sum.Warnings != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	var snaps []struct {
		ID       string   `json:"id"`
		Paths    []string `json:"paths"`
		Tags     []string `json:"tags"`
		Hostname string   `json:"hostname"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, c, "snapshots", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Hostname != "pg1" || len(snaps[0].Tags) != 1 || snaps[0].Tags[0] != "db" ||
		strings.Join(snaps[0].Paths, " ") != "/postgres/"+src+".dump /postgres/globals.sql" {
		t.Fatalf("snapshots: %+v", snaps)
	}
	if got := mustRun(t, c, "cat", "file", sum.SnapshotID, "/postgres/globals.sql"); !strings.Contains(got, "CREATE ROLE") {
		t.Errorf("globals.sql: %.200q", got)
	}

	out = mustRun(t, c, "restore", "latest", "--json", "--postgres", dumpCLIPGBase+" dbname="+dst)
	var rest struct {
		SnapshotID string `json:"snapshot_id"`
		Restored   []struct {
			Path     string `json:"path"`
			Database string `json:"database"`
			Bytes    int64  `json:"bytes"`
		} `json:"restored"`
	}
	if err := json.Unmarshal([]byte(out), &rest); err != nil {
		t.Fatalf("restore --json: %v\n%s", err, out)
	}
	if rest.SnapshotID != sum.SnapshotID || len(rest.Restored) != 1 || rest.Restored[0].Database != dst || rest.Restored[0].Path != "/postgres/"+src+".dump" {
		t.Fatalf("restore: %+v", rest)
	}
	if got := dumpCLIPSQL(t, dst, checksum); got != want {
		t.Errorf("restored checksums %q, want %q", got, want)
	}
	// Text output names what went where.
	if out := mustRun(t, c, "restore", sum.SnapshotID[:8], "--postgres", dumpCLIPGBase+" dbname="+dst); !strings.Contains(out, "into database "+dst) {
		t.Errorf("restore text output: %q", out)
	}

	// A failed dump: exit non-zero, the tool's message, no new snapshot.
	code, _, errOut := c.run("", "backup", "--postgres", dumpCLIPGBase+" dbname=bulwark_cli_missing_db")
	if code == 0 || !strings.Contains(errOut, `database "bulwark_cli_missing_db" does not exist`) || !strings.Contains(errOut, "no snapshot was saved") {
		t.Errorf("failed dump: exit %d, stderr %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(mustRun(t, c, "snapshots", "--json")), &snaps); err != nil || len(snaps) != 1 {
		t.Errorf("snapshots after a failed dump: %d %v", len(snaps), err)
	}
}

func TestBackupRestoreMySQLCLI(t *testing.T) {
	c, _ := repoCLI(t)
	mustRun(t, c, "repo", "init")
	src, dst := dumpCLIMariaDB(t), dumpCLIMariaDB(t)
	dumpCLIMaria(t, src, `CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=InnoDB;
CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, data VARBINARY(32), FOREIGN KEY (parent_id) REFERENCES parent(id)) ENGINE=InnoDB;
INSERT INTO parent SELECT seq, CONCAT('naïve ', seq) FROM seq_1_to_500;
INSERT INTO child (parent_id, data) SELECT 1 + seq % 500, IF(seq % 4 = 0, NULL, UNHEX(MD5(seq))) FROM seq_1_to_5000;`)
	checksum := `SELECT CONCAT((SELECT COUNT(*) FROM parent), ' ', (SELECT COUNT(*) FROM child));
CHECKSUM TABLE parent, child EXTENDED;`
	want := dumpCLIMaria(t, src, checksum)
	want = strings.ReplaceAll(want, src+".", "DB.")

	out := mustRun(t, c, "backup", "--json", "--tag", "db", "--mysql", "mysql://root@127.0.0.1:3306/"+src)
	var sum dumpCLISummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if sum.FilesNew != 1 || sum.TotalBytes == 0 {
		t.Fatalf("summary: %+v", sum)
	}
	out = mustRun(t, c, "restore", sum.SnapshotID, "--mysql", "mysql://root@127.0.0.1:3306/"+dst)
	if !strings.Contains(out, "restored /mysql/"+src+".sql") {
		t.Errorf("restore output: %q", out)
	}
	got := strings.ReplaceAll(dumpCLIMaria(t, dst, checksum), dst+".", "DB.")
	if got != want || !strings.HasPrefix(got, "500 5000") {
		t.Errorf("restored checksums:\n%s\nwant:\n%s", got, want)
	}
}

func TestDatabaseFlagsUsage(t *testing.T) {
	c, _ := repoCLI(t)
	pg := "--postgres=" + dumpCLIPGBase + " dbname=test"
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"backup", pg, "/etc"}, "take no paths"},
		{[]string{"backup", pg, "--mysql", "mysql://root@127.0.0.1/test"}, "not both"},
		{[]string{"backup", pg, "--stdin"}, "--stdin cannot be combined"},
		{[]string{"backup", "--no-globals", "/etc"}, "--no-globals applies to --postgres only"},
		{[]string{"restore", "latest", pg, "--target", "/tmp/x"}, "--target cannot be combined"},
		{[]string{"restore", "latest", pg, "--mysql", "mysql://root@127.0.0.1/test"}, "not both"},
		{[]string{"restore", "latest", pg, "--verify"}, "apply to file restores"},
		{[]string{"restore", "latest"}, "--target DIR is required (or --postgres DSN, --mysql DSN)"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := c.run("", tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.wantErr)
			}
		})
	}
	// A snapshot of files cannot be restored into a database.
	mustRun(t, c, "repo", "init")
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/f", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "backup", dir)
	code, _, errOut := c.run("", "restore", "latest", pg)
	if code == 0 || !strings.Contains(errOut, "holds no PostgreSQL dump") {
		t.Errorf("restore of a file snapshot into postgres: exit %d, %s", code, errOut)
	}
}
