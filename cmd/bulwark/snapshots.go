package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

type snapshotJSON struct {
	ID       string        `json:"id"`
	Short    string        `json:"short_id"`
	Time     time.Time     `json:"time"`
	Host     string        `json:"hostname"`
	Paths    []string      `json:"paths"`
	Tags     []string      `json:"tags"`
	Size     int64         `json:"size"`
	Tree     string        `json:"tree"`
	Parent   string        `json:"parent,omitempty"`
	Summary  *repo.Summary `json:"summary,omitempty"`
	Lost     *repo.Lost    `json:"lost,omitempty"`
	Original string        `json:"original,omitempty"`
}

func toJSON(s *repo.Snapshot) snapshotJSON {
	j := snapshotJSON{ID: repo.Hex(s.ID), Short: repo.Short(s.ID), Time: s.Time, Host: s.Hostname, Paths: s.Paths,
		Tags: s.Tags, Tree: repo.Hex(s.Tree), Parent: s.Parent, Summary: s.Summary, Lost: s.Lost, Original: s.Original}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if s.Summary != nil {
		j.Size = s.Summary.TotalBytes
	}
	return j
}

func snapshotsCommand() *Command {
	var (
		f           repoFlags
		hosts, tags stringList
	)
	return &Command{
		Name:    "snapshots",
		Summary: "list the snapshots in a repository",
		Usage:   "bulwark snapshots --repo DIR [--host H] [--tag T] [--json]",
		Examples: []string{
			"bulwark snapshots --repo /srv/backup",
			"bulwark snapshots --repo /srv/backup --host web1 --tag daily --json",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Var(&hosts, "host", "only snapshots of `HOST` (repeatable)")
			fs.Var(&tags, "tag", "only snapshots with `TAG` (repeatable; all must match)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("snapshots takes no arguments, got %q", args)
			}
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			snaps, bad, err := r.Snapshots(ctx)
			if err != nil {
				return err
			}
			filter := repo.Filter{Hosts: hosts, Tags: tags}
			var out []snapshotJSON
			for _, s := range snaps {
				if filter.Match(s) {
					out = append(out, toJSON(s))
				}
			}
			for _, b := range bad {
				fmt.Fprintf(e.Stderr, "warning: snapshot %s: %v\n", repo.Short(b.ID), b.Err)
			}
			if f.asJSON {
				if out == nil {
					out = []snapshotJSON{}
				}
				return writeJSON(e.Stdout, out)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTime\tHost\tTags\tPaths\tSize")
			for _, s := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Short, s.Time.Local().Format("2006-01-02 15:04:05"), s.Host,
					strings.Join(s.Tags, ","), strings.Join(s.Paths, " "), humanBytes(s.Size))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "%d snapshots\n", len(out))
			return nil
		},
	}
}
