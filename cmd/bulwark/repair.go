package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/repair"
)

func repoRepairCommand() *Command {
	var (
		f                   repoFlags
		dryRun, keepDamaged bool
	)
	return &Command{
		Name:    "repair",
		Summary: "repair packs from parity, rebuild the index and salvage damaged snapshots",
		Usage:   "bulwark repo repair --repo DIR [--dry-run] [--keep-damaged] [--json]",
		Long: `Reads every pack. A damaged pack is rebuilt from its parity (repo init
--parity) and written back byte for byte; missing or damaged parity objects
are written again. A pack that cannot be rebuilt is left in place, and every
blob of it that still decrypts and verifies is copied into a new pack.
The index is then rebuilt from the packs when it differs from them, in one
signed index file that replaces all others. A snapshot file with one flipped
bit is corrected. A snapshot that references lost data is saved anew without
it: a file with a missing chunk is left out, a directory whose listing is
lost becomes empty, and the new snapshot lists both under "lost" (see
'bulwark snapshots --json'); the damaged snapshot is then removed unless
--keep-damaged is given. Unreadable snapshot files are reported and kept.

Takes an exclusive lock. Exit status 1 when data was lost (or, with
--dry-run, would be), 0 when everything was intact or restored.`,
		Examples: []string{
			"bulwark repo repair --repo /srv/backup --dry-run",
			"bulwark repo repair --repo /srv/backup",
			"bulwark repo repair --repo /srv/backup --keep-damaged --json",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&dryRun, "dry-run", false, "report what would be repaired and lost, write nothing")
			fs.BoolVar(&keepDamaged, "keep-damaged", false, "keep damaged snapshots next to their salvaged copies")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("repo repair takes no arguments, got %q", args)
			}
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			prog := &repair.Progress{}
			stop := liveStatus(e, func(el time.Duration) string { return repairStatus(prog, el) })
			rep, err := repair.Repair(ctx, r, repair.Options{DryRun: dryRun, Forget: !keepDamaged,
				LockWait: f.lockWait, Progress: prog})
			stop()
			if err != nil {
				return err
			}
			if err := f.report(e, rep, func() { printRepairReport(e.Stdout, rep) }); err != nil {
				return err
			}
			if rep.DataLost() {
				var what []string
				if n := rep.Lost.Snapshots; n > 0 {
					verb := "lost"
					if dryRun {
						verb = "would lose"
					}
					what = append(what, fmt.Sprintf("%d snapshots %s data (%d paths)", n, verb, rep.Lost.Files))
				}
				if n := rep.Lost.Unreadable; n > 0 {
					what = append(what, fmt.Sprintf("%d snapshot files are unreadable", n))
				}
				return &ExitError{Code: 1, Err: errors.New(strings.Join(what, "; "))}
			}
			return nil
		},
	}
}

// repairStatus is the live status line.
func repairStatus(p *repair.Progress, el time.Duration) string {
	ph := repair.Phase(p.Phase.Load())
	switch ph {
	case repair.PhasePacks:
		b := p.Bytes.Load()
		return fmt.Sprintf("%s %d/%d, %s/%s, %s/s", ph, p.Packs.Load(), p.TotalPacks.Load(),
			humanBytes(b), humanBytes(p.TotalBytes.Load()), humanBytes(int64(float64(b)/el.Seconds())))
	case repair.PhaseDamaged:
		return fmt.Sprintf("%s: %d repaired, %d damaged (%d blobs salvaged, %d lost)", ph,
			p.PacksRepaired.Load(), p.PacksDamaged.Load(), p.BlobsSalvaged.Load(), p.BlobsLost.Load())
	case repair.PhaseSnapshots:
		return fmt.Sprintf("%s %d/%d, %d salvaged", ph, p.Snapshots.Load(), p.TotalSnapshots.Load(), p.SnapshotsSalvaged.Load())
	}
	return ph.String()
}

// maxLostListed bounds the lost paths printed per snapshot; --json has all.
const maxLostListed = 50

func printRepairReport(w io.Writer, rep *repair.Report) {
	would := func(done, dry string) string {
		if rep.DryRun {
			return dry
		}
		return done
	}
	if rep.DryRun {
		fmt.Fprintln(w, "dry run: nothing was written")
	}
	p := &rep.Packs
	fmt.Fprintf(w, "packs: %d checked, %s read", p.Checked, humanBytes(p.BytesRead))
	if p.Verified > 0 {
		fmt.Fprintf(w, ", %d not vouched for by a signed index verified blob by blob", p.Verified)
	}
	fmt.Fprintln(w)
	for _, x := range p.Repaired {
		fmt.Fprintf(w, "  %s from parity: %s (shards %s)\n", would("repaired", "would repair"), x.ID[:8], joinInts(x.Shards))
	}
	for _, x := range p.Damaged {
		fmt.Fprintf(w, "  damaged, left in place: %s: %s\n", x.ID[:8], x.Error)
		fmt.Fprintf(w, "    %d blobs %s, %d also in intact packs, %d lost\n", x.BlobsSalvaged, would("copied to new packs", "would be copied"), x.BlobsElsewhere, x.BlobsLost)
	}
	for _, id := range p.Missing {
		fmt.Fprintf(w, "  missing: %s\n", id[:8])
	}
	for _, x := range p.ParityWritten {
		fmt.Fprintf(w, "  parity %s: %s (%s)\n", would("rewritten", "would be rewritten"), x.Pack[:8], x.Reason)
	}
	if n := len(p.ParityOrphans); n > 0 {
		fmt.Fprintf(w, "  %d parity objects without a pack (left for prune)\n", n)
	}
	if n := len(p.Rejected); n > 0 {
		fmt.Fprintf(w, "  %d blobs do not match their ids and were left out of the index\n", n)
	}
	ix := &rep.Index
	for _, u := range ix.Unreadable {
		fmt.Fprintf(w, "  unreadable index file %s: %s\n", u.ID[:8], u.Error)
	}
	if ix.Rewritten {
		fmt.Fprintf(w, "index: %s (%s): %d packs, %d blobs", would("rebuilt", "would be rebuilt"), strings.Join(ix.Reasons, "; "), ix.Packs, ix.Blobs)
		if ix.Written != "" {
			fmt.Fprintf(w, " in %s", ix.Written[:8])
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "index: matches the packs")
	}
	if n := len(ix.Removed); n > 0 {
		fmt.Fprintf(w, "  %d old index files %s\n", n, would("removed", "would be removed"))
	}
	s := &rep.Snapshots
	fmt.Fprintf(w, "snapshots: %d checked, %d intact", s.Checked, s.Intact)
	if n := len(s.Fixed); n > 0 {
		fmt.Fprintf(w, ", %d with a flipped bit %s", n, would("corrected", "to correct"))
	}
	fmt.Fprintln(w)
	for _, u := range s.Unreadable {
		fmt.Fprintf(w, "  unreadable, left in place: %s: %s\n", u.ID[:8], u.Error)
	}
	for _, x := range s.Salvaged {
		fmt.Fprintf(w, "  %s %s (%s, %s, %s)", would("salvaged", "would salvage"), x.Original[:8],
			x.Time.Local().Format(time.DateTime), x.Host, strings.Join(x.Paths, " "))
		switch {
		case x.AlreadyBy != "":
			fmt.Fprintf(w, ", already salvaged as %s", x.AlreadyBy[:8])
		case x.New != "":
			fmt.Fprintf(w, " as %s", x.New[:8])
		}
		fmt.Fprintf(w, ": %d paths lost (%d chunks, %d trees)\n", len(x.Lost.Files), x.Lost.Chunks, x.Lost.Trees)
		for i, path := range x.Lost.Files {
			if i == maxLostListed {
				fmt.Fprintf(w, "    ... and %d more (--json lists all)\n", len(x.Lost.Files)-i)
				break
			}
			fmt.Fprintf(w, "    %q\n", path)
		}
	}
	if n := len(s.Removed); n > 0 {
		fmt.Fprintf(w, "  %d damaged snapshots %s\n", n, would("removed", "would be removed"))
	}
	for _, x := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
	switch {
	case rep.DataLost():
		fmt.Fprintf(w, "lost: %d paths in %d snapshots; %d unreadable snapshot files\n", rep.Lost.Files, rep.Lost.Snapshots, rep.Lost.Unreadable)
	case rep.Changed():
		fmt.Fprintf(w, "%s, nothing lost (%.1fs)\n", would("repaired", "everything can be repaired"), rep.Duration)
	case len(p.Damaged) > 0:
		fmt.Fprintf(w, "nothing lost; the damaged packs are no longer used ('bulwark repo prune' removes them) (%.1fs)\n", rep.Duration)
	default:
		fmt.Fprintf(w, "nothing to repair (%.1fs)\n", rep.Duration)
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
