package dump

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
)

// Names of the files a MariaDB/MySQL backup puts into its snapshot.
const (
	MyDir     = "mysql"          // directory of the snapshot holding the dumps
	MyAllFile = "mysql/@all.sql" // --all-databases; '@' is escaped in database names, so no database's file is called that
	mySuffix  = ".sql"           // mysql/DBNAME.sql for one database
	myPackage = "mariadb-client" // the Debian package of the tools
)

// MyDumpFileName is the snapshot file name of database db's dump.
func MyDumpFileName(db string) string { return MyDir + "/" + escapeName(db) + mySuffix }

// myDumpArgs are the options of every dump: one consistent InnoDB
// snapshot (--single-transaction: a REPEATABLE READ transaction, no table
// locks), everything that is not table data (routines, events,
// triggers), binary columns as hex so the SQL survives any character set
// handling, rows streamed one by one (--quick) rather than buffered.
var myDumpArgs = []string{"--single-transaction", "--routines", "--events", "--triggers",
	"--hex-blob", "--quick", "--default-character-set=utf8mb4"}

// withOptionFile writes the DSN's client option file into a new private
// temporary directory and returns its path and a function removing it.
func withOptionFile(d *MyDSN) (string, func(), error) {
	dir, err := os.MkdirTemp("", "bulwark-mysql-")
	if err != nil {
		return "", nil, fmt.Errorf("mysql: creating the client option file: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	p := filepath.Join(dir, "client.cnf")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.Write(d.optionFile())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("mysql: writing the client option file: %w", err)
	}
	return p, cleanup, nil
}

// MySQLStreams returns the stream of a MariaDB/MySQL backup: the database
// the DSN names as MyDumpFileName(db), or every database
// (--all-databases, including the mysql system database with users and
// grants) as MyAllFile. mariadb-dump is preferred, mysqldump used when it
// is the only one installed.
func MySQLStreams(dsn string, o Options) ([]archiver.Stream, error) {
	d, err := ParseMyDSN(dsn)
	if err != nil {
		return nil, err
	}
	tool, err := o.lookTool(myPackage, "mariadb-dump", "mysqldump")
	if err != nil {
		return nil, err
	}
	name, what := MyAllFile, "mariadb-dump --all-databases"
	if d.Database != "" {
		name, what = MyDumpFileName(d.Database), fmt.Sprintf("mariadb-dump of database %q", d.Database)
	}
	if filepath.Base(tool) == "mysqldump" {
		what = "mysqldump" + strings.TrimPrefix(what, "mariadb-dump")
	}
	return []archiver.Stream{{Name: name, Open: func(ctx context.Context) (io.ReadCloser, error) {
		cnf, cleanup, err := withOptionFile(d)
		if err != nil {
			return nil, err
		}
		// --defaults-extra-file must come first; "--" ends the options so
		// a database called "-x" stays a name.
		args := append([]string{"--defaults-extra-file=" + cnf}, myDumpArgs...)
		if d.Database == "" {
			args = append(args, "--all-databases")
		} else {
			args = append(args, "--", d.Database)
		}
		rd, err := startReader(ctx, what, tool, args, o.env(), cleanup)
		if err != nil {
			cleanup()
			return nil, err
		}
		return rd, nil
	}}}, nil
}

// BackupMySQL dumps what dsn selects into one snapshot of r (see
// MySQLStreams). A failed dump leaves no snapshot.
func BackupMySQL(ctx context.Context, r *repo.Repository, dsn string, o Options, ao archiver.Options) (*archiver.Result, error) {
	streams, err := MySQLStreams(dsn, o)
	if err != nil {
		return nil, err
	}
	res, err := archiver.BackupStreams(ctx, r, streams, ao)
	if err != nil {
		return nil, fmt.Errorf("mysql backup failed, no snapshot was saved: %w", err)
	}
	return res, nil
}

// RestoreMySQL pipes the SQL dump of snapshot s into the mariadb (or
// mysql) client, streaming it from the repository.
//
// When dsn names a database, the snapshot (after Includes) must hold
// exactly one single-database dump; it runs in that existing database
// (the dump has no CREATE DATABASE or USE): its tables, views, routines,
// triggers and events are dropped and recreated. When dsn names no
// database, the snapshot must hold MyAllFile, which recreates every
// database it holds, the mysql system database (users, grants) included.
//
// The client stops at the first failing statement and Bulwark reports it,
// but what ran before stays: MariaDB cannot roll back DDL.
func RestoreMySQL(ctx context.Context, r *repo.Repository, s *repo.Snapshot, dsn string, o RestoreOptions) ([]Restored, error) {
	d, err := ParseMyDSN(dsn)
	if err != nil {
		return nil, err
	}
	client, err := o.lookTool(myPackage, "mariadb", "mysql")
	if err != nil {
		return nil, err
	}
	var files []SnapshotFile
	if d.Database != "" {
		files, err = dumpFiles(ctx, r, s, MyDir, mySuffix, MyAllFile, o.Includes)
	} else {
		files, err = dumpFiles(ctx, r, s, MyDir, "/"+MyAllFile, "", o.Includes)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case len(files) == 0 && d.Database != "":
		return nil, fmt.Errorf("snapshot %s holds no single-database MariaDB/MySQL dump (/%s/DB%s) to restore into %q; for a dump of every database give a DSN without database",
			repo.Short(s.ID), MyDir, mySuffix, d.Database)
	case len(files) == 0:
		return nil, fmt.Errorf("snapshot %s holds no /%s (a dump of every database); to restore a single-database dump, name the target database in the DSN",
			repo.Short(s.ID), MyAllFile)
	case len(files) > 1:
		return nil, fmt.Errorf("snapshot %s holds %d MariaDB/MySQL dumps (%s): choose one with --include PATH", repo.Short(s.ID), len(files), joinPaths(files))
	}
	f := files[0]
	cnf, cleanup, err := withOptionFile(d)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	args := []string{"--defaults-extra-file=" + cnf, "--default-character-set=utf8mb4", "--batch"}
	what := fmt.Sprintf("%s restoring %s", filepath.Base(client), f.Path)
	if d.Database != "" {
		args = append(args, "--database="+d.Database)
		what += fmt.Sprintf(" into database %q", d.Database)
	}
	n, err := feedFile(ctx, r, &f, what, client, args, o.env())
	if err != nil {
		return nil, err
	}
	return []Restored{{Path: f.Path, Database: d.Database, Bytes: n}}, nil
}
