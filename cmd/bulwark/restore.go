package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/continuity/dump"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
)

func restoreCommand() *Command {
	var (
		f                  repoFlags
		target             string
		includes, hosts    stringList
		verify, numericIDs bool
		pgDSN, myDSN       string
	)
	return &Command{
		Name:    "restore",
		Summary: "restore a snapshot into a directory or a database",
		Usage:   "bulwark restore --repo DIR SNAPSHOT|latest --target DIR [--include PATH]... [--verify]\n  bulwark restore --repo DIR SNAPSHOT|latest --postgres DSN [--include /postgres/DB.dump]\n  bulwark restore --repo DIR SNAPSHOT|latest --mysql DSN",
		Long: `Writes the snapshot's files below --target, keeping their full paths
(/etc/hosts is restored as TARGET/etc/hosts), with modes, owners (as root),
times, symlinks, hard links, extended attributes, devices and FIFOs. Sparse
files stay sparse. Existing files with the same names are replaced.
--verify reads every restored file back and checks it against the snapshot.

--postgres DSN (instead of --target) streams the snapshot's pg_dump archive
into pg_restore --clean --if-exists --no-owner --single-transaction in the
existing database the DSN names: a failure leaves that database as it was.
A DSN without dbname restores every dump of the snapshot with --create into
a database of its original name (dropped first if it exists). Roles
(/postgres/globals.sql) are never applied; see docs/databases.md.
--mysql DSN pipes the snapshot's SQL dump into the mariadb client in the
existing database the DSN names (without one: a --all-databases dump).
No temporary file is written.`,
		Examples: []string{
			"bulwark restore --repo /srv/backup latest --target /tmp/restore",
			"bulwark restore --repo /srv/backup 3f2a9c1e --target / --include /etc/nginx --verify",
			"bulwark restore --repo /srv/backup latest --postgres 'host=127.0.0.1 user=postgres dbname=app_restored'",
			"bulwark restore --repo /srv/backup 3f2a9c1e --postgres 'dbname=app' --include /postgres/app.dump",
			"bulwark restore --repo /srv/backup latest --mysql mysql://root@127.0.0.1:3306/shop_restored",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&target, "target", "", "restore into `DIR` (required)")
			fs.Var(&includes, "include", "restore only `PATH` (a path in the snapshot) and what is below it (repeatable)")
			fs.Var(&hosts, "host", "with latest: the latest snapshot of `HOST`")
			fs.BoolVar(&verify, "verify", false, "read the restored files back and check them")
			fs.BoolVar(&numericIDs, "numeric-ids", false, "restore owners by number, ignoring names")
			fs.StringVar(&pgDSN, "postgres", "", "restore the snapshot's PostgreSQL dump into the database of `DSN` (instead of --target)")
			fs.StringVar(&myDSN, "mysql", "", "restore the snapshot's MariaDB/MySQL dump into the database of `DSN` (instead of --target)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("give one snapshot id (or latest)")
			}
			db := pgDSN != "" || myDSN != ""
			switch {
			case pgDSN != "" && myDSN != "":
				return usageError("give --postgres or --mysql, not both")
			case db && target != "":
				return usageError("--target cannot be combined with --postgres or --mysql")
			case db && (verify || numericIDs):
				return usageError("--verify and --numeric-ids apply to file restores, not --postgres or --mysql")
			case !db && target == "":
				return usageError("--target DIR is required (or --postgres DSN, --mysql DSN)")
			}
			r, err := f.open(ctx, e, true)
			if err != nil {
				return err
			}
			defer r.Close()
			s, err := r.FindSnapshot(ctx, args[0], repo.Filter{Hosts: hosts})
			if err != nil {
				return err
			}
			if db {
				return restoreDatabase(ctx, e, r, s, pgDSN, myDSN, includes, f.asJSON)
			}
			prog := &restorer.Progress{}
			stop := showRestoreProgress(e, prog)
			start := time.Now()
			st, err := restorer.Restore(ctx, r, s, target, restorer.Options{Includes: includes, Verify: verify,
				NumericIDs: numericIDs, Progress: prog,
				Warn: func(path string, err error) { fmt.Fprintf(e.Stderr, "warning: %s: %v\n", path, err) }})
			stop()
			if err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(e.Stdout, struct {
					Snapshot string `json:"snapshot_id"`
					*restorer.Stats
					Duration float64 `json:"duration_seconds"`
				}{repo.Hex(s.ID), st, time.Since(start).Seconds()})
			}
			fmt.Fprintf(e.Stdout, "restored snapshot %s: %d files, %d dirs, %s in %.2fs", repo.Short(s.ID), st.Files, st.Dirs,
				humanBytes(st.Bytes), time.Since(start).Seconds())
			if verify {
				fmt.Fprintf(e.Stdout, "; %d files verified", st.Verified)
			}
			fmt.Fprintln(e.Stdout)
			return nil
		},
	}
}

// restoreDatabase feeds the snapshot's dump into a database.
func restoreDatabase(ctx context.Context, e *Env, r *repo.Repository, s *repo.Snapshot, pgDSN, myDSN string, includes []string, asJSON bool) error {
	start := time.Now()
	o := dump.RestoreOptions{Includes: includes}
	var done []dump.Restored
	var err error
	if pgDSN != "" {
		done, err = dump.RestorePostgres(ctx, r, s, pgDSN, o)
	} else {
		done, err = dump.RestoreMySQL(ctx, r, s, myDSN, o)
	}
	if err != nil {
		for _, d := range done {
			fmt.Fprintf(e.Stderr, "restored %s into database %q before the failure\n", d.Path, d.Database)
		}
		return err
	}
	el := time.Since(start).Seconds()
	if asJSON {
		return writeJSON(e.Stdout, struct {
			Snapshot string          `json:"snapshot_id"`
			Restored []dump.Restored `json:"restored"`
			Duration float64         `json:"duration_seconds"`
		}{repo.Hex(s.ID), done, el})
	}
	for _, d := range done {
		name := d.Database
		if name == "" {
			name = "(every database in the dump)"
		}
		fmt.Fprintf(e.Stdout, "restored %s (%s) into database %s\n", d.Path, humanBytes(d.Bytes), name)
	}
	fmt.Fprintf(e.Stdout, "restored snapshot %s in %.2fs\n", repo.Short(s.ID), el)
	return nil
}

func showRestoreProgress(e *Env, p *restorer.Progress) func() {
	return liveStatus(e, func(el time.Duration) string {
		return transferStatus(el, p.Files.Load(), p.TotalFiles.Load(), p.Bytes.Load(), p.TotalBytes.Load(), true)
	})
}
