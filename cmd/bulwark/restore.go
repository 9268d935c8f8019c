package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
)

func restoreCommand() *Command {
	var (
		f                  repoFlags
		target             string
		includes, hosts    stringList
		verify, numericIDs bool
	)
	return &Command{
		Name:    "restore",
		Summary: "restore a snapshot into a directory",
		Usage:   "bulwark restore --repo DIR SNAPSHOT|latest --target DIR [--include PATH]... [--verify]",
		Long: `Writes the snapshot's files below --target, keeping their full paths
(/etc/hosts is restored as TARGET/etc/hosts), with modes, owners (as root),
times, symlinks, hard links, extended attributes, devices and FIFOs. Sparse
files stay sparse. Existing files with the same names are replaced.
--verify reads every restored file back and checks it against the snapshot.`,
		Examples: []string{
			"bulwark restore --repo /srv/backup latest --target /tmp/restore",
			"bulwark restore --repo /srv/backup 3f2a9c1e --target / --include /etc/nginx --verify",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&target, "target", "", "restore into `DIR` (required)")
			fs.Var(&includes, "include", "restore only `PATH` (a path in the snapshot) and what is below it (repeatable)")
			fs.Var(&hosts, "host", "with latest: the latest snapshot of `HOST`")
			fs.BoolVar(&verify, "verify", false, "read the restored files back and check them")
			fs.BoolVar(&numericIDs, "numeric-ids", false, "restore owners by number, ignoring names")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("give one snapshot id (or latest)")
			}
			if target == "" {
				return usageError("--target DIR is required")
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

func showRestoreProgress(e *Env, p *restorer.Progress) func() {
	return liveStatus(e, func(el time.Duration) string {
		return transferStatus(el, p.Files.Load(), p.TotalFiles.Load(), p.Bytes.Load(), p.TotalBytes.Load(), true)
	})
}
