package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
)

func backupCommand() *Command {
	var (
		f                   repoFlags
		tags, excludes      stringList
		host, stdinName     string
		oneFS, stdin, noPar bool
	)
	return &Command{
		Name:    "backup",
		Summary: "back up files or standard input into a repository",
		Usage:   "bulwark backup --repo DIR [--tag T]... [--host H] [--exclude PATTERN]... [--one-file-system] PATH...\n  bulwark backup --repo DIR --stdin --stdin-name NAME",
		Long: `Makes a snapshot: files are cut into chunks, deduplicated against everything
already in the repository, compressed and encrypted. Files whose size, mtime,
ctime and inode match the previous snapshot of the same host and paths are
not read again. Prints the new snapshot id (--json: a summary).

--exclude PATTERN: a pattern without '/' matches entry names anywhere
(*.tmp, node_modules); with '/' it matches whole paths (/var/cache/*).
Unreadable files are reported and left out; the exit status is then 3.`,
		Examples: []string{
			"bulwark backup --repo /srv/backup /etc /home",
			"bulwark backup --repo /srv/backup --tag daily --exclude '*.tmp' /var/www",
			"pg_dump app | bulwark backup --repo /srv/backup --stdin --stdin-name app.sql --tag db",
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
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if stdin && len(args) > 0 {
				return usageError("--stdin takes no paths, got %q", args)
			}
			if !stdin && len(args) == 0 {
				return usageError("give the paths to back up (or --stdin)")
			}
			r, err := f.open(ctx, e, true)
			if err != nil {
				return err
			}
			defer r.Close()
			l, err := f.lock(ctx, r, false)
			if err != nil {
				return err
			}
			defer l.Unlock()
			prog := &archiver.Progress{}
			warnings := 0
			o := archiver.Options{Tags: tags, Host: host, Excludes: excludes, OneFileSystem: oneFS,
				NoParent: noPar, ProgramVersion: "bulwark " + version, Progress: prog,
				Warn: func(path string, err error) {
					warnings++
					fmt.Fprintf(e.Stderr, "warning: %s: %v\n", path, err)
				}}
			stop := showBackupProgress(e, prog)
			o.Scan = isTerminal(e.Stderr)
			var res *archiver.Result
			if stdin {
				res, err = archiver.BackupReader(ctx, r, e.Stdin, stdinName, o)
			} else {
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
