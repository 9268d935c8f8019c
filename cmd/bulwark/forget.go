package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
)

type forgetSnapshotJSON struct {
	snapshotJSON
	Reasons []string `json:"reasons"`
}

type forgetGroupJSON struct {
	Hostname string               `json:"hostname"`
	Paths    []string             `json:"paths"`
	Keep     []forgetSnapshotJSON `json:"keep"`
	Remove   []forgetSnapshotJSON `json:"remove"`
}

func forgetCommand() *Command {
	var (
		f               repoFlags
		p               prune.Policy
		within          string
		keepTags        stringList
		tags, hosts     stringList
		doPrune, dryRun bool
		maxUnused       float64
	)
	return &Command{
		Name:    "forget",
		Summary: "remove snapshots by a retention policy (and prune with --prune)",
		Usage: "bulwark forget --repo DIR [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N]\n" +
			"      [--keep-monthly N] [--keep-yearly N] [--keep-within DURATION] [--keep-tag T]...\n" +
			"      [--tag T]... [--host H]... [--prune] [--dry-run] [--json]",
		Long: `Applies a retention policy to each group of snapshots with the same host and
paths, and removes the snapshots no rule keeps. A snapshot is kept when any rule
keeps it; the output gives the reasons.

  --keep-last N      the N newest snapshots
  --keep-hourly N    the newest snapshot of each of the N most recent hours that
                     have one (likewise daily, weekly, monthly, yearly; periods in
                     the time zone the backup host recorded, ISO weeks)
  --keep-within D    every snapshot newer than the group's newest minus D
  --keep-tag T       every snapshot with tag T

DURATION is calendar units then a Go duration: 30d, 2w, 1y2m (m = months), 36h,
1y6m15d12h. A policy without any rule is refused, since it would remove every
snapshot. --tag and --host restrict forget to matching snapshots; others are
left alone. Removing snapshots frees no space by itself: --prune (or a later
'bulwark repo prune') removes the data they alone used.`,
		Examples: []string{
			"bulwark forget --repo /srv/backup --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --prune",
			"bulwark forget --repo /srv/backup --keep-within 30d --tag db --dry-run",
			"bulwark forget --repo /srv/backup --keep-last 10 --host web1 --json",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.IntVar(&p.Last, "keep-last", 0, "keep the `N` newest snapshots")
			fs.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last `N` hours with one")
			fs.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last `N` days with one")
			fs.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last `N` weeks with one")
			fs.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last `N` months with one")
			fs.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last `N` years with one")
			fs.StringVar(&within, "keep-within", "", "keep snapshots newer than the newest minus `DURATION` (30d, 1y2m, 36h)")
			fs.Var(&keepTags, "keep-tag", "keep every snapshot with `TAG` (repeatable)")
			fs.Var(&tags, "tag", "only consider snapshots with `TAG` (repeatable; all must match)")
			fs.Var(&hosts, "host", "only consider snapshots of `HOST` (repeatable)")
			fs.BoolVar(&doPrune, "prune", false, "prune the repository afterwards (see 'bulwark repo prune')")
			fs.Float64Var(&maxUnused, "max-unused-percent", prune.DefaultMaxUnusedPercent, "with --prune: repack packs with at least `P` percent unused")
			fs.BoolVar(&dryRun, "dry-run", false, "print what would be removed and change nothing")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("forget takes no arguments, got %q (snapshots are chosen by the --keep-* policy)", args)
			}
			if within != "" {
				d, err := prune.ParseDuration(within)
				if err != nil {
					return usageError("--keep-within: %v", err)
				}
				p.Within = d
			}
			p.Tags = keepTags
			if err := p.Validate(); err != nil {
				return usageError("%v", err)
			}
			if p.Empty() {
				return usageError("no keep rule given: forget would remove every snapshot; give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within, --keep-tag")
			}
			if maxUnused < 0 || maxUnused > 100 {
				return usageError("--max-unused-percent %g: give a number from 0 to 100", maxUnused)
			}
			r, err := f.openFull(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			l, err := f.lock(ctx, r, true)
			if err != nil {
				return err
			}
			defer l.Unlock()
			snaps, bad, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			for _, b := range bad {
				fmt.Fprintf(e.Stderr, "warning: snapshot %s cannot be read and is left alone: %v\n", repo.Short(b.ID), b.Err)
			}
			filter := repo.Filter{Hosts: hosts, Tags: tags}
			var sel []*repo.Snapshot
			for _, s := range snaps {
				if filter.Match(s) {
					sel = append(sel, s)
				}
			}
			groups := prune.ApplyGroups(sel, p)
			var removeIDs []repo.ID
			for _, g := range groups {
				for _, d := range g.Remove {
					removeIDs = append(removeIDs, d.Snapshot.ID)
				}
			}
			// Snapshots under an object lock cannot be removed by anyone
			// before it expires: leave them, say until when.
			var locked []lockedSnapshot
			if ret, ok := backend.AsRetainer(r.Backend()); ok {
				var free []repo.ID
				for _, id := range removeIDs {
					until, err := ret.RetainUntil(ctx, backend.Handle{Type: backend.SnapshotFile, Name: repo.Hex(id)})
					if err != nil {
						return fmt.Errorf("object lock of snapshot %s: %w", repo.Short(id), err)
					}
					if until.After(time.Now()) {
						locked = append(locked, lockedSnapshot{repo.Hex(id), until.UTC()})
						continue
					}
					free = append(free, id)
				}
				removeIDs = free
			}
			removed := 0
			if !dryRun {
				for _, id := range removeIDs {
					if err := r.RemoveSnapshot(ctx, id); err != nil {
						if errors.Is(err, backend.ErrForbidden) && removed == 0 {
							return fmt.Errorf("the repository refused to delete snapshot %s (an append-only credential, or a lock): no snapshot was removed: %w", repo.Short(id), err)
						}
						return fmt.Errorf("removed %d of %d snapshots, then: snapshot %s: %w", removed, len(removeIDs), repo.Short(id), err)
					}
					removed++
				}
			}
			for _, l := range locked {
				fmt.Fprintf(e.Stderr, "snapshot %s is under object lock until %s and stays; forget it again after that\n", l.ID[:8], l.Until.Format(time.RFC3339))
			}
			if !f.asJSON {
				printForget(e, groups, p, dryRun, removed, len(removeIDs))
			}
			var rep *prune.Report
			if doPrune {
				o := prune.Options{MaxUnusedPercent: maxUnused, DryRun: dryRun, Lock: l}
				if dryRun {
					o.IgnoreSnapshots = removeIDs
				}
				if rep, err = runPrune(ctx, e, r, o); err != nil {
					if dryRun {
						return fmt.Errorf("prune (dry run): %w", err)
					}
					return fmt.Errorf("%d snapshots were removed, but prune failed: %w", removed, err)
				}
			}
			if f.asJSON {
				out := struct {
					DryRun   bool              `json:"dry_run"`
					Policy   string            `json:"policy"`
					Groups   []forgetGroupJSON `json:"groups"`
					ToRemove int               `json:"to_remove"`
					Removed  int               `json:"removed"`
					Locked   []lockedSnapshot  `json:"locked"`
					Prune    *prune.Report     `json:"prune,omitempty"`
				}{dryRun, p.String(), []forgetGroupJSON{}, len(removeIDs), removed, append([]lockedSnapshot{}, locked...), rep}
				for _, g := range groups {
					gj := forgetGroupJSON{Hostname: g.Hostname, Paths: g.Paths, Keep: []forgetSnapshotJSON{}, Remove: []forgetSnapshotJSON{}}
					for _, d := range g.Keep {
						gj.Keep = append(gj.Keep, forgetSnapshotJSON{toJSON(d.Snapshot), d.Reasons})
					}
					for _, d := range g.Remove {
						gj.Remove = append(gj.Remove, forgetSnapshotJSON{toJSON(d.Snapshot), []string{}})
					}
					out.Groups = append(out.Groups, gj)
				}
				return writeJSON(e.Stdout, out)
			}
			if rep != nil {
				fmt.Fprintln(e.Stdout)
				return printPruneReport(e.Stdout, rep)
			}
			return nil
		},
	}
}

func printForget(e *Env, groups []prune.Group, p prune.Policy, dryRun bool, removed, toRemove int) {
	w := e.Stdout
	fmt.Fprintf(w, "policy: %s\n", p)
	for _, g := range groups {
		fmt.Fprintf(w, "\nhost %s, paths %s: keep %d, remove %d\n", g.Hostname, strings.Join(g.Paths, " "), len(g.Keep), len(g.Remove))
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTime\tTags\tAction\tReasons")
		// Newest first, kept and removed interleaved as in time.
		all := append(append([]prune.Decision(nil), g.Keep...), g.Remove...)
		sortDecisions(all)
		for _, d := range all {
			act := "keep"
			if len(d.Reasons) == 0 {
				act = "remove"
			}
			s := d.Snapshot
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo.Short(s.ID), s.Time.Local().Format("2006-01-02 15:04:05"),
				strings.Join(s.Tags, ","), act, strings.Join(d.Reasons, ", "))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	switch {
	case len(groups) == 0:
		fmt.Fprintln(w, "no snapshots match")
	case dryRun:
		fmt.Fprintf(w, "dry run: would remove %d snapshots; nothing was changed\n", toRemove)
	default:
		fmt.Fprintf(w, "removed %d snapshots\n", removed)
	}
}

// sortDecisions orders newest first, ties by id (as prune.Apply does).
func sortDecisions(d []prune.Decision) {
	sort.Slice(d, func(i, j int) bool { return newer(d[i].Snapshot, d[j].Snapshot) })
}

func newer(a, b *repo.Snapshot) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return repo.Hex(a.ID) > repo.Hex(b.ID)
}

// lockedSnapshot is a snapshot forget would remove but an object lock keeps.
type lockedSnapshot struct {
	ID    string    `json:"id"`
	Until time.Time `json:"locked_until"`
}
