package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/continuity/dump"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
)

func backupCommand() *Command {
	var (
		f                   repoFlags
		tags, excludes      stringList
		host, stdinName     string
		oneFS, stdin, noPar bool
		pgDSN, myDSN        string
		noGlobals           bool
	)
	return &Command{
		Name:    "backup",
		Summary: "back up files, standard input or a database into a repository",
		Usage:   "bulwark backup --repo DIR [--tag T]... [--host H] [--exclude PATTERN]... [--one-file-system] PATH...\n  bulwark backup --repo DIR --stdin --stdin-name NAME\n  bulwark backup --repo DIR --postgres DSN [--no-globals]\n  bulwark backup --repo DIR --mysql DSN",
		Long: `Makes a snapshot: files are cut into chunks, deduplicated against everything
already in the repository, compressed and encrypted. Files whose size, mtime,
ctime and inode match the previous snapshot of the same host and paths are
not read again. Prints the new snapshot id (--json: a summary).

--exclude PATTERN: a pattern without '/' matches entry names anywhere
(*.tmp, node_modules); with '/' it matches whole paths (/var/cache/*).
Unreadable files are reported and left out; the exit status is then 3.

--postgres DSN streams pg_dump --format=custom of the database the DSN
names (without dbname: of every non-template database) and pg_dumpall
--globals-only into one snapshot, as /postgres/DBNAME.dump and
/postgres/globals.sql. The DSN is a libpq connection string
("host=H port=P dbname=D user=U" or postgres://U@H:P/D).
--mysql DSN streams mariadb-dump --single-transaction --routines --events
--triggers of the database the DSN names (without one: --all-databases)
as /mysql/DBNAME.sql (or /mysql/@all.sql). The DSN is
mysql://USER[:PASSWORD]@HOST[:PORT]/[DATABASE].
No temporary file is written; if a dump program fails, no snapshot is
saved. A password in a DSN reaches the tools through the environment or a
0600 file, never their command line, but it is visible on bulwark's own:
prefer PGPASSWORD or ~/.pgpass, and ~/.my.cnf. See docs/databases.md.`,
		Examples: []string{
			"bulwark backup --repo /srv/backup /etc /home",
			"bulwark backup --repo /srv/backup --tag daily --exclude '*.tmp' /var/www",
			"pg_dump app | bulwark backup --repo /srv/backup --stdin --stdin-name app.sql --tag db",
			"bulwark backup --repo /srv/backup --tag db --postgres 'host=127.0.0.1 user=postgres dbname=app'",
			"bulwark backup --repo /srv/backup --postgres postgres://backup@db1/   # every database",
			"bulwark backup --repo /srv/backup --tag db --mysql mysql://root@127.0.0.1:3306/shop",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Var(&tags, "tag", "add `TAG` to the snapshot (repeatable)")
			fs.Var(&excludes, "exclude", "leave out entries matching `PATTERN` (repeatable)")
			fs.StringVar(&host, "host", "", "record `HOST` as the snapshot's host (default: this host's name)")
			fs.BoolVar(&oneFS, "one-file-system", false, "do not cross into other file systems")
			fs.BoolVar(&stdin, "stdin", false, "back up standard input as one file")
			fs.StringVar(&stdinName, "stdin-name", "stdin", "file `NAME` for --stdin")
			fs.BoolVar(&noPar, "force", false, "read every file even when unchanged since the parent snapshot")
			fs.StringVar(&pgDSN, "postgres", "", "dump the PostgreSQL database(s) of `DSN` (libpq connection string) instead of files")
			fs.StringVar(&myDSN, "mysql", "", "dump the MariaDB/MySQL database(s) of `DSN` (mysql://USER@HOST:PORT/DB) instead of files")
			fs.BoolVar(&noGlobals, "no-globals", false, "with --postgres: leave out roles and tablespaces (pg_dumpall --globals-only needs a superuser)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			db := pgDSN != "" || myDSN != ""
			switch {
			case pgDSN != "" && myDSN != "":
				return usageError("give --postgres or --mysql, not both (one snapshot per database server)")
			case db && stdin:
				return usageError("--stdin cannot be combined with --postgres or --mysql")
			case db && len(args) > 0:
				return usageError("--postgres and --mysql take no paths, got %q", args)
			case noGlobals && pgDSN == "":
				return usageError("--no-globals applies to --postgres only")
			}
			if stdin && len(args) > 0 {
				return usageError("--stdin takes no paths, got %q", args)
			}
			if !stdin && !db && len(args) == 0 {
				return usageError("give the paths to back up (or --stdin, --postgres DSN, --mysql DSN)")
			}
			r, err := f.open(ctx, e, true)
			if err != nil {
				return err
			}
			defer r.Close()
			collectAtLimit(e)
			l, err := f.lock(ctx, r, false)
			if err != nil {
				return err
			}
			defer l.Unlock()
			// A prune between loading the index and locking may have
			// removed data the index lists.
			if _, err := r.RefreshIndex(ctx); err != nil {
				return err
			}
			prog := &archiver.Progress{}
			o := archiver.Options{Tags: tags, Host: host, Excludes: excludes, OneFileSystem: oneFS,
				NoParent: noPar, ProgramVersion: "bulwark " + version, Progress: prog,
				Warn: func(path string, err error) {
					fmt.Fprintf(e.Stderr, "warning: %s: %v\n", path, err)
				}}
			stop := showBackupProgress(e, prog)
			o.Scan = isTerminal(e.Stderr)
			var res *archiver.Result
			switch {
			case pgDSN != "":
				res, err = dump.BackupPostgres(ctx, r, pgDSN, dump.PGOptions{NoGlobals: noGlobals}, o)
			case myDSN != "":
				res, err = dump.BackupMySQL(ctx, r, myDSN, dump.Options{}, o)
			case stdin:
				res, err = archiver.BackupReader(ctx, r, e.Stdin, stdinName, o)
			default:
				res, err = archiver.Backup(ctx, r, args, o)
			}
			stop()
			if err != nil {
				return err
			}
			if f.asJSON {
				out := struct {
					SnapshotID string `json:"snapshot_id"`
					repo.Summary
					Warnings int `json:"warnings"`
				}{repo.Hex(res.Snapshot.ID), res.Summary, res.Warnings}
				if err := writeJSON(e.Stdout, out); err != nil {
					return err
				}
			} else {
				s := res.Summary
				fmt.Fprintf(e.Stderr, "files: %d new, %d changed, %d unmodified; %d dirs\n", s.FilesNew, s.FilesChanged, s.FilesUnmodified, s.Dirs)
				fmt.Fprintf(e.Stderr, "processed %s, added %s to the repository in %.2fs\n", humanBytes(s.TotalBytes), humanBytes(s.BytesAdded), s.Duration)
				fmt.Fprintln(e.Stdout, repo.Hex(res.Snapshot.ID))
			}
			if res.Warnings > 0 {
				return &ExitError{Code: 3, Err: fmt.Errorf("snapshot %s saved, but %d entries could not be read (see warnings above)", repo.Short(res.Snapshot.ID), res.Warnings)}
			}
			return nil
		},
	}
}

// showBackupProgress prints files, bytes, rate and ETA on a terminal.
func showBackupProgress(e *Env, p *archiver.Progress) func() {
	return liveStatus(e, func(el time.Duration) string {
		return transferStatus(el, p.Files.Load(), p.TotalFiles.Load(), p.Bytes.Load(), p.TotalBytes.Load(), p.ScanDone.Load())
	})
}
