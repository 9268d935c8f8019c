package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/checker"
)

func repoCheckCommand() *Command {
	var (
		f        repoFlags
		readData bool
		subset   string
		lock     bool
	)
	return &Command{
		Name:    "check",
		Summary: "verify a repository's structure and, with --read-data, every byte",
		Usage:   "bulwark repo check --repo DIR [--read-data | --read-data-subset N%|N/M] [--json]",
		Long: `Checks that every object is where and what it should be: object names, key
files, index files, that every pack the index lists exists and its header
agrees with the index, parity objects, and that every tree of every snapshot
loads and every chunk its files need is in the index. Problems are listed
with the object they concern, then a summary line.

--read-data also reads every pack whole: its SHA-256 must be its name, and
every blob is decrypted, decompressed and verified. With parity, damaged
shards are named and whether 'bulwark repo repair' can rebuild them.
--read-data-subset reads a share of the packs: N% picks packs at random;
N/M picks the packs whose id's first byte modulo M is N-1, so running
1/M ... M/M in turn reads every pack once.

Warnings (unreferenced packs, stale locks, leftover temporary files) are not
failures. The check never changes the repository; it takes no lock unless
--lock is given (a shared lock keeps prune out while it runs).

Exit status: 0 no errors (warnings allowed), 1 errors found, 2 the check
could not run, 3 wrong password. A write-only key checks what it can and
lists what it skipped.`,
		Examples: []string{
			"bulwark repo check --repo /srv/backup",
			"bulwark repo check --repo /srv/backup --read-data",
			"bulwark repo check --repo /srv/backup --read-data-subset 5%",
			"bulwark repo check --repo /srv/backup --read-data-subset 2/7 --json",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&readData, "read-data", false, "read and verify every pack")
			fs.StringVar(&subset, "read-data-subset", "", "read and verify `N%|N/M` of the packs (random N%, or the N-th of M groups)")
			fs.BoolVar(&lock, "lock", false, "hold a shared lock while checking (keeps prune out; writes a lock file)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("repo check takes no arguments, got %q", args)
			}
			o := checker.Options{ReadData: readData, Progress: &checker.Progress{}}
			if subset != "" {
				if readData {
					return usageError("give --read-data or --read-data-subset, not both")
				}
				s, err := checker.ParseSubset(subset)
				if err != nil {
					return usageError("--read-data-subset: %v", err)
				}
				o.ReadData, o.Subset = true, s
			}
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			if lock {
				l, err := f.lock(ctx, r, false)
				if err != nil {
					return err
				}
				defer l.Unlock()
			}
			stop := showCheckProgress(e, o.Progress)
			rep, err := checker.Check(ctx, r, o)
			stop()
			if err != nil {
				return err
			}
			if err := f.report(e, rep, func() { printCheckReport(e, rep) }); err != nil {
				return err
			}
			if !rep.OK {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

func printCheckReport(e *Env, rep *checker.Report) {
	for _, p := range rep.Errors {
		fmt.Fprintf(e.Stdout, "error: %s\n", p)
	}
	for _, p := range rep.Warnings {
		fmt.Fprintf(e.Stdout, "warning: %s\n", p)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(e.Stdout, "skipped: %s\n", s)
	}
	s := rep.Stats
	read := ""
	if s.PacksRead > 0 {
		read = fmt.Sprintf(" (%d read whole: %s, %d blobs verified)", s.PacksRead, humanBytes(s.BytesRead), s.BlobsRead)
	}
	unsigned := ""
	if s.UnsignedIndexFiles > 0 {
		unsigned = fmt.Sprintf(" (%d unsigned, from write-only keys)", s.UnsignedIndexFiles)
	}
	fmt.Fprintf(e.Stdout, "checked %s, %s%s, %s%s, %s, %s in %.1fs\n", count(s.Keys, "key"), count(s.IndexFiles, "index file"), unsigned,
		count(s.Packs, "pack"), read, count(s.Snapshots, "snapshot"), count(s.Trees, "tree"), s.Duration)
	switch n := len(rep.Errors); {
	case n == 0 && len(rep.Warnings) > 0:
		fmt.Fprintf(e.Stdout, "no errors were found (%d %s)\n", len(rep.Warnings), plural(len(rep.Warnings), "warning"))
	case n == 0:
		fmt.Fprintln(e.Stdout, "no errors were found")
	default:
		fmt.Fprintf(e.Stdout, "%d %s found\n", n, plural(n, "error"))
	}
}

func count(n int, word string) string { return fmt.Sprintf("%d %s", n, plural(n, word)) }

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// showCheckProgress prints the phase and its progress on a terminal; while
// data is read, bytes, rate and ETA.
func showCheckProgress(e *Env, p *checker.Progress) func() {
	var readStart time.Duration = -1
	return liveStatus(e, func(el time.Duration) string {
		phase := p.Phase()
		line := fmt.Sprintf("%s: %d/%d", phase, p.Done.Load(), p.Total.Load())
		if phase == "reading data" {
			if readStart < 0 {
				readStart = el
			}
			line = phase + ": " + transferStatus(max(el-readStart, time.Millisecond), p.Done.Load(), p.Total.Load(), p.Bytes.Load(), p.TotalBytes.Load(), true)
			line = strings.Replace(line, " files, ", " packs, ", 1)
		}
		if n := p.Errors.Load(); n > 0 {
			line += fmt.Sprintf(", %d %s", n, plural(int(n), "error"))
		}
		return line
	})
}
