package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
)

func repoCommand() *Command {
	return &Command{
		Name:    "repo",
		Summary: "create and maintain backup repositories (init, key, check, prune, repair)",
		Usage:   "bulwark repo COMMAND --repo DIR [FLAGS]",
		Long: `A repository holds encrypted, deduplicated snapshots. Its location comes from
--repo or BULWARK_REPO, its password from BULWARK_PASSWORD, BULWARK_PASSWORD_FILE
or --password-file. The format is documented in docs/repository-format.md.`,
		Subs: []*Command{repoInitCommand(), repoKeyCommand(), repoCheckCommand(), repoPruneCommand(), repoRepairCommand(), repoUnlockCommand()},
	}
}

// parseParity reads "off" or "DATA+PARITY" (e.g. 128+2).
func parseParity(s string) (*parity.Params, error) {
	if s == "" || s == "off" || s == "none" {
		return nil, nil
	}
	d, p, ok := strings.Cut(s, "+")
	dn, err1 := strconv.Atoi(d)
	pn, err2 := strconv.Atoi(p)
	if !ok || err1 != nil || err2 != nil {
		return nil, usageError("--parity %q: write DATA+PARITY shards, e.g. 128+2, or off", s)
	}
	pp := &parity.Params{DataShards: dn, ParityShards: pn}
	if err := pp.Validate(); err != nil {
		return nil, usageError("--parity %q: %v", s, err)
	}
	return pp, nil
}

func repoInitCommand() *Command {
	var (
		f                   repoFlags
		par, copyFrom, cpPW string
	)
	return &Command{
		Name:    "init",
		Summary: "create a new repository",
		Usage:   "bulwark repo init --repo DIR [--parity off|DATA+PARITY] [--copy-params-from OTHER]",
		Long: `Creates an empty repository protected by the password (BULWARK_PASSWORD or
--password-file). Keep the password safe: without it nothing can be restored.

--parity adds Reed-Solomon parity to every pack so 'repo repair' can fix bit rot
in place: 128+2 costs 1.6% more space and repairs any two damaged 128 KiB
regions per 16 MiB pack. Default off.
--copy-params-from makes a repository that shares OTHER's chunking secrets,
so 'bulwark copy' between the two transfers only missing chunks (OTHER's
password from BULWARK_FROM_PASSWORD or --from-password-file).`,
		Examples: []string{
			"BULWARK_PASSWORD_FILE=/root/.bulwark-pw bulwark repo init --repo /srv/backup",
			"bulwark repo init --repo /srv/backup --parity 128+2",
			"bulwark repo init --repo /mnt/offsite --copy-params-from /srv/backup",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&par, "parity", "off", "Reed-Solomon parity per pack: off or `DATA+PARITY` shards (e.g. 128+2)")
			fs.StringVar(&copyFrom, "copy-params-from", "", "share chunking secrets with repository `OTHER`")
			fs.StringVar(&cpPW, "from-password-file", "", "password `FILE` of --copy-params-from (default $BULWARK_FROM_PASSWORD)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("repo init takes no arguments, got %q", args)
			}
			loc, err := f.location(e)
			if err != nil {
				return err
			}
			pw, err := f.password(e)
			if err != nil {
				return err
			}
			pp, err := parseParity(par)
			if err != nil {
				return err
			}
			o := repo.InitOptions{Parity: pp, CacheDir: f.cache(e)}
			if copyFrom != "" {
				opw, err := readPassword(e, cpPW, "BULWARK_FROM_PASSWORD", "--from-password-file")
				if err != nil {
					return err
				}
				obe, err := openBackend(ctx, e, &f.transport, copyFrom, false)
				if err != nil {
					return err
				}
				other, err := repo.Open(ctx, obe, opw, repo.OpenOptions{CacheDir: "-"})
				if err != nil {
					return fmt.Errorf("--copy-params-from %s: %w", copyFrom, err)
				}
				defer other.Close()
				o.CopyFrom = other
			}
			be, err := openBackend(ctx, e, &f.transport, loc, true)
			if err != nil {
				return fmt.Errorf("repository %s: %w", loc, err)
			}
			r, err := repo.Init(ctx, be, pw, o)
			if err != nil {
				be.Close()
				return err
			}
			defer r.Close()
			if f.asJSON {
				return writeJSON(e.Stdout, map[string]any{"id": r.Config().ID, "location": loc, "config": r.Config()})
			}
			fmt.Fprintf(e.Stdout, "created repository %s at %s\n", r.Config().ID[:8], loc)
			fmt.Fprintln(e.Stderr, "Without the password the data cannot be read: keep it somewhere safe, apart from the backups.")
			return nil
		},
	}
}

func repoKeyCommand() *Command {
	return &Command{
		Name:    "key",
		Summary: "manage the passwords that open a repository",
		Usage:   "bulwark repo key add|list|remove|passwd --repo DIR",
		Long: `Every key wraps the same repository secrets under its own password.
A write-only key (add --write-only) can add snapshots and deduplicate, but can
neither read existing data nor delete anything: give it to backup clients so
that a stolen client cannot read or destroy past backups.`,
		Subs: []*Command{keyAddCommand(), keyListCommand(), keyRemoveCommand(), keyPasswdCommand()},
	}
}

func keyAddCommand() *Command {
	var (
		f         repoFlags
		newPW     string
		writeOnly bool
		host      string
	)
	return &Command{
		Name:    "add",
		Summary: "add a key (a new password) to the repository",
		Usage:   "bulwark repo key add --repo DIR --new-password-file FILE [--write-only] [--host H]",
		Examples: []string{
			"bulwark repo key add --repo /srv/backup --new-password-file /root/second-pw",
			"bulwark repo key add --repo /srv/backup --new-password-file client.pw --write-only --host web1",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&newPW, "new-password-file", "", "the new key's password `FILE` (default $BULWARK_NEW_PASSWORD)")
			fs.BoolVar(&writeOnly, "write-only", false, "a key that can back up but not read or delete")
			fs.StringVar(&host, "host", "", "record `HOST` as the key's owner (informational)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("repo key add takes no arguments, got %q", args)
			}
			pw, err := readPassword(e, newPW, "BULWARK_NEW_PASSWORD", "--new-password-file")
			if err != nil {
				return err
			}
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			id, err := r.AddKey(ctx, pw, writeOnly, crypto.KDFParams{}, crypto.KeyFile{Host: host})
			if err != nil {
				return err
			}
			kind := crypto.Full
			if writeOnly {
				kind = crypto.WriteOnly
			}
			if f.asJSON {
				return writeJSON(e.Stdout, map[string]string{"id": id, "kind": string(kind)})
			}
			fmt.Fprintf(e.Stdout, "added %s key %s\n", kind, id[:8])
			return nil
		},
	}
}

func keyListCommand() *Command {
	var f repoFlags
	return &Command{
		Name:     "list",
		Summary:  "list the repository's keys",
		Usage:    "bulwark repo key list --repo DIR [--json]",
		Examples: []string{"bulwark repo key list --repo /srv/backup", "bulwark repo key list --repo /srv/backup --json"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("repo key list takes no arguments, got %q", args)
			}
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			keys, err := r.ListKeys(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(e.Stdout, keys)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, " \tID\tKind\tHost\tUser\tCreated\tKDF")
			for _, k := range keys {
				cur := " "
				if k.Current {
					cur = "*"
				}
				if k.Err != "" {
					fmt.Fprintf(tw, "%s\t%s\tunreadable: %s\n", cur, k.ID[:8], k.Err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\targon2id t=%d m=%dMiB p=%d\n", cur, k.ID[:8], k.Kind, k.Host, k.User, k.Created,
					k.KDF.Time, k.KDF.MemoryKiB/1024, k.KDF.Threads)
			}
			return tw.Flush()
		},
	}
}

func keyRemoveCommand() *Command {
	var f repoFlags
	return &Command{
		Name:     "remove",
		Summary:  "remove a key (not the one in use, not the last full key)",
		Usage:    "bulwark repo key remove --repo DIR KEY-ID",
		Examples: []string{"bulwark repo key remove --repo /srv/backup 3f2a9c1e"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("give the id (or a unique prefix) of the key to remove; see 'bulwark repo key list'")
			}
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			if err := r.RemoveKey(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "removed key %s\n", args[0])
			return nil
		},
	}
}

func keyPasswdCommand() *Command {
	var (
		f     repoFlags
		newPW string
	)
	return &Command{
		Name:     "passwd",
		Summary:  "change the password of the key in use",
		Usage:    "bulwark repo key passwd --repo DIR --new-password-file FILE",
		Examples: []string{"bulwark repo key passwd --repo /srv/backup --new-password-file /root/new-pw"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&newPW, "new-password-file", "", "the new password `FILE` (default $BULWARK_NEW_PASSWORD)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("repo key passwd takes no arguments, got %q", args)
			}
			pw, err := readPassword(e, newPW, "BULWARK_NEW_PASSWORD", "--new-password-file")
			if err != nil {
				return err
			}
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			id, err := r.ChangePassword(ctx, pw, crypto.KDFParams{})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "password changed; the key is now %s\n", id[:8])
			return nil
		},
	}
}

func repoUnlockCommand() *Command {
	var f repoFlags
	return &Command{
		Name:     "unlock",
		Summary:  "remove stale locks (left by crashed processes)",
		Usage:    "bulwark repo unlock --repo DIR",
		Long:     `Removes locks older than 30 minutes and locks of processes on this host that no longer run. Locks of live processes are kept.`,
		Examples: []string{"bulwark repo unlock --repo /srv/backup"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			r, err := f.open(ctx, e, false)
			if err != nil {
				return err
			}
			defer r.Close()
			n, err := r.RemoveStaleLocks(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "removed %d stale locks\n", n)
			return nil
		},
	}
}
