package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/copier"
)

func copyCommand() *Command {
	var (
		f           repoFlags
		to, toPW    string
		hosts, tags stringList
	)
	return &Command{
		Name:    "copy",
		Summary: "copy snapshots to another repository (an offsite copy)",
		Usage:   "bulwark copy --repo SRC --to DST [--host H]... [--tag T]... [SNAPSHOT...]",
		Long: `Copies snapshots of SRC (all, or those named, or those of --host/--tag)
into DST, storing only the chunks DST lacks, then checks that DST's index
lists every chunk of the copies and that their packs exist (with a full
DST key it also reads the copies back). Snapshots already in DST are
skipped, so running it after every backup keeps DST current.

Create DST with 'bulwark repo init --repo DST --copy-params-from SRC' so
that both share chunking and chunk ids: copies then move only new chunks
and deduplicate with DST's own backups. Otherwise every chunk is read and
re-hashed under DST's key.

DST's password comes from --to-password-file, $BULWARK_TO_PASSWORD or
$BULWARK_TO_PASSWORD_FILE; a write-only key is enough. For a vault
destination, $BULWARK_TO_VAULT_TOKEN (else $BULWARK_VAULT_TOKEN) is its
token; --cacert and --insecure apply to both repositories.`,
		Examples: []string{
			"bulwark copy --repo /srv/backup --to /mnt/offsite",
			"bulwark copy --repo /srv/backup --to https://vault.example:8443/web1 --cacert vault.pem latest",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&to, "to", "", "destination repository `LOCATION` (required)")
			fs.StringVar(&toPW, "to-password-file", "", "read the destination's password from `FILE` (default $BULWARK_TO_PASSWORD)")
			fs.Var(&hosts, "host", "copy only snapshots of `HOST` (repeatable)")
			fs.Var(&tags, "tag", "copy only snapshots with `TAG` (repeatable; all must match)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if to == "" {
				return usageError("--to LOCATION is required (the destination repository)")
			}
			src, err := f.openFull(ctx, e, true)
			if err != nil {
				return err
			}
			defer src.Close()
			loc, _ := f.location(e)
			if loc == to {
				return usageError("--to %s is the source repository", to)
			}
			dst, err := openDest(ctx, e, &f, to, toPW)
			if err != nil {
				return err
			}
			defer dst.Close()
			snaps, err := pickSnapshots(ctx, src, args, repo.Filter{Hosts: hosts, Tags: tags})
			if err != nil {
				return err
			}
			sl, err := f.lock(ctx, src, false)
			if err != nil {
				return err
			}
			defer sl.Unlock()
			dl, err := f.lock(ctx, dst, false)
			if err != nil {
				return fmt.Errorf("destination %s: %w", to, err)
			}
			defer dl.Unlock()
			// A prune of either between loading its index and locking
			// may have removed data the index lists.
			if _, err := src.RefreshIndex(ctx); err != nil {
				return err
			}
			if _, err := dst.RefreshIndex(ctx); err != nil {
				return fmt.Errorf("destination %s: %w", to, err)
			}

			prog := &copier.Progress{}
			stop := liveStatus(e, func(el time.Duration) string {
				return fmt.Sprintf("%d snapshots, %d chunks checked, %d copied (%s)", prog.Snapshots.Load(),
					prog.Checked.Load(), prog.Blobs.Load(), humanBytes(prog.Bytes.Load()))
			})
			start := time.Now()
			res, err := copier.Copy(ctx, src, dst, snaps, copier.Options{Progress: prog})
			stop()
			if err != nil {
				return err
			}
			return f.report(e, struct {
				*copier.Result
				Duration float64 `json:"duration_seconds"`
			}{res, time.Since(start).Seconds()}, func() {
				for _, c := range res.Copied {
					fmt.Fprintf(e.Stdout, "copied %s -> %s\n", c.Source[:8], c.Copy[:8])
				}
				fmt.Fprintf(e.Stderr, "%d snapshots copied, %d already there; %d chunks (%s) stored; verified %d chunks in %.2fs\n",
					len(res.Copied), len(res.Skipped), res.Blobs, humanBytes(res.Bytes), res.BlobsNeeded, time.Since(start).Seconds())
			})
		},
	}
}

// pickSnapshots resolves ids (or "latest") among src's snapshots, or
// returns all that match f when none are given.
func pickSnapshots(ctx context.Context, src *repo.Repository, ids []string, f repo.Filter) ([]*repo.Snapshot, error) {
	if len(ids) == 0 {
		all, _, err := src.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		var out []*repo.Snapshot
		for _, s := range all {
			if f.Match(s) {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil, copier.ErrNothingToCopy
		}
		return out, nil
	}
	var out []*repo.Snapshot
	for _, id := range ids {
		s, err := src.FindSnapshot(ctx, id, f)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// openDest opens the destination of a copy with its own password and,
// for a vault, its own token.
func openDest(ctx context.Context, e *Env, f *repoFlags, loc, pwFile string) (*repo.Repository, error) {
	pw, err := readPassword(e, pwFile, "BULWARK_TO_PASSWORD", "--to-password-file")
	if err != nil {
		return nil, err
	}
	de := *e
	de.Getenv = func(k string) string {
		if k == "BULWARK_VAULT_TOKEN" {
			if v := e.Getenv("BULWARK_TO_VAULT_TOKEN"); v != "" {
				return v
			}
		}
		return e.Getenv(k)
	}
	r, err := openRepo(ctx, &de, &f.transport, loc, pw, f.cache(e), "destination")
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return nil, err
		}
		return nil, fmt.Errorf("destination %s: %w", loc, err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("destination %s: %w", loc, err)
	}
	return r, nil
}
