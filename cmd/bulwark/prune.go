package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
)

func repoPruneCommand() *Command {
	var (
		f         repoFlags
		maxUnused float64
		dryRun    bool
	)
	return &Command{
		Name:    "prune",
		Summary: "remove data no snapshot needs (repack partly used packs)",
		Usage:   "bulwark repo prune --repo DIR [--max-unused-percent P] [--dry-run] [--json]",
		Long: `Finds the blobs that the snapshots still use, removes packs that hold none of
them, repacks packs that are partly used (copying the used blobs into new packs)
when their unused share reaches --max-unused-percent, and removes packs that no
index lists (left by interrupted backups). Blobs stored twice count once.

Prune takes an exclusive lock: it waits for no backup and fails if one runs
(see --lock-wait). If a snapshot, a tree, an index file or a used blob cannot be
read, prune stops before deleting anything: run 'bulwark repo check' and
'bulwark repo repair' first. Index entries written by write-only keys are
verified before they go into the new, signed index.

Prune is safe to interrupt at any point: the repository stays valid, and the
next prune removes what the interrupted one left behind.`,
		Examples: []string{
			"bulwark repo prune --repo /srv/backup --dry-run",
			"bulwark repo prune --repo /srv/backup --max-unused-percent 0",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Float64Var(&maxUnused, "max-unused-percent", prune.DefaultMaxUnusedPercent,
				"repack a partly used pack when at least `P` percent of it is unused (0: every partly used pack)")
			fs.BoolVar(&dryRun, "dry-run", false, "print what prune would do and change nothing")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("repo prune takes no arguments, got %q", args)
			}
			if maxUnused < 0 || maxUnused > 100 {
				return usageError("--max-unused-percent %g: give a number from 0 to 100", maxUnused)
			}
			r, err := f.openFull(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := runPrune(ctx, e, r, prune.Options{MaxUnusedPercent: maxUnused, DryRun: dryRun, LockWait: f.lockWait})
			if err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(e.Stdout, rep)
			}
			return printPruneReport(e.Stdout, rep)
		},
	}
}

// runPrune runs prune with a live status line on a terminal.
func runPrune(ctx context.Context, e *Env, r *repo.Repository, o prune.Options) (*prune.Report, error) {
	prog := &prune.Progress{}
	o.Progress = prog
	stop := liveStatus(e, func(el time.Duration) string {
		done, total := prog.Done.Load(), prog.Total.Load()
		s := fmt.Sprintf("prune: %s", prog.Phase())
		if total > 0 {
			s += fmt.Sprintf(" %d/%d", done, total)
		} else if done > 0 {
			s += fmt.Sprintf(" %d", done)
		}
		return s + fmt.Sprintf(" (%s)", el.Truncate(time.Second))
	})
	rep, err := prune.Prune(ctx, r, o)
	stop()
	return rep, err
}

// printPruneReport prints packs and bytes kept, repacked and removed.
func printPruneReport(w io.Writer, rep *prune.Report) error {
	would := func(done, planned string) string {
		if rep.DryRun {
			return planned
		}
		return done
	}
	fmt.Fprintf(w, "%d snapshots, %d trees, %d blobs in use (%s)\n", rep.Snapshots, rep.Trees, rep.UsedBlobs, humanBytes(rep.UsedBytes))
	if rep.DuplicateBlobs > 0 {
		fmt.Fprintf(w, "%d blobs are stored more than once: one copy is kept\n", rep.DuplicateBlobs)
	}
	row := func(what string, s prune.PackStats, note string) {
		line := fmt.Sprintf("  %-12s %6d packs %11s", what, s.Packs, humanBytes(s.Bytes))
		if note != "" {
			line += "   " + note
		}
		fmt.Fprintln(w, line)
	}
	row("before:", rep.Before, "")
	keepNote := ""
	if rep.KeepUnusedBytes > 0 {
		keepNote = humanBytes(rep.KeepUnusedBytes) + " unused, below the repack threshold"
	}
	row(would("kept:", "keep:"), rep.Keep, keepNote)
	if rep.Repack.Packs > 0 {
		row(would("repacked:", "repack:"), rep.Repack, fmt.Sprintf("%s in use, copied into %d new packs (%s)",
			humanBytes(rep.RepackUsedBytes), rep.Written.Packs, humanBytes(rep.Written.Bytes)))
	}
	if rep.Remove.Packs > 0 {
		row(would("removed:", "remove:"), rep.Remove, "no longer used")
	}
	if rep.Unreferenced.Packs > 0 {
		row(would("removed:", "remove:"), rep.Unreferenced, "in no index (left by interrupted operations)")
	}
	if rep.Verified.Packs > 0 {
		row(would("verified:", "verify:"), rep.Verified, fmt.Sprintf("written by write-only keys: %d blobs checked before signing", rep.VerifiedBlobs))
	}
	if rep.Locked.Packs > 0 {
		row("locked:", rep.Locked, "kept under an object lock that has not expired; pruned after it does")
	}
	row("after:", rep.After, "")
	if rep.LockedLeft > 0 {
		fmt.Fprintf(w, "%d leftover objects are still under object lock and stay until it expires\n", rep.LockedLeft)
	}
	if rep.LocksExtended > 0 {
		fmt.Fprintf(w, "object locks extended on %d objects that kept snapshots need\n", rep.LocksExtended)
	}
	for _, m := range rep.MissingPacks {
		fmt.Fprintf(w, "warning: pack %s is listed in the index but missing (none of its blobs is used): dropped from the index\n", m)
	}
	for _, ff := range rep.ForeignFiles {
		fmt.Fprintf(w, "warning: %s is not a pack: left alone\n", ff)
	}
	switch {
	case rep.NothingToDo:
		fmt.Fprintln(w, "nothing to prune")
	case rep.DryRun:
		fmt.Fprintf(w, "dry run: would free %s; nothing was changed\n", humanBytes(rep.BytesFreed))
	default:
		var extra []string
		if rep.NewIndex != "" {
			extra = append(extra, fmt.Sprintf("index rewritten as %s (%d old files removed)", rep.NewIndex[:8], rep.IndexFilesRemoved))
		}
		if rep.ParityRemoved > 0 {
			extra = append(extra, fmt.Sprintf("%d parity objects removed", rep.ParityRemoved))
		}
		fmt.Fprintf(w, "freed %s in %.1fs", humanBytes(rep.BytesFreed), rep.Duration)
		if len(extra) > 0 {
			fmt.Fprintf(w, "; %s", strings.Join(extra, "; "))
		}
		fmt.Fprintln(w)
	}
	return nil
}
