package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/bulwarkhq/bulwark/internal/certs"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
	"github.com/bulwarkhq/bulwark/internal/vault"
)

func vaultCommand() *Command {
	return &Command{
		Name:    "vault",
		Summary: "run an offsite, append-only repository server (the vault) and manage its tokens",
		Usage:   "bulwark vault serve|token|retention [FLAGS]",
		Long: `The vault stores backup repositories for other hosts over HTTPS. Clients reach a
repository with --repo https://HOST:PORT/NAME, a token in BULWARK_VAULT_TOKEN and
--cacert DATA/tls/cert.pem. An append-only token can add backups but never delete or
overwrite anything; old snapshots go only through the vault's own retention, which
uses the time the vault received each snapshot. See docs/vault.md.`,
		Subs: []*Command{vaultServeCommand(), vaultTokenCommand(), vaultRetentionCommand()},
	}
}

// dataFlag registers --data (default $BULWARK_VAULT_DATA).
func dataFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "data", "", "vault data `DIR` (default $BULWARK_VAULT_DATA)")
}

func vaultData(e *Env, v string) (string, error) {
	if v == "" {
		v = e.Getenv("BULWARK_VAULT_DATA")
	}
	if v == "" {
		return "", usageError("no vault data directory: give --data DIR or set BULWARK_VAULT_DATA")
	}
	return v, nil
}

func vaultServeCommand() *Command {
	var data, listen, logFile, within string
	var keepLast int
	var every time.Duration
	return &Command{
		Name:    "serve",
		Summary: "serve the vault's repositories over HTTPS",
		Usage:   "bulwark vault serve --data DIR --listen ADDR [--log FILE] [--retention DURATION [--retention-keep-last N] [--retention-every D]]",
		Long: `Serves HTTPS only (TLS 1.2 or later). Without a certificate in DATA/tls/ it makes a
self-signed one, DATA/tls/cert.pem, which clients trust with --cacert. Refused
requests are logged as JSON lines to DATA/vault.log (--log - for stderr).
With --retention, every repository's snapshots received longer than DURATION before
its newest one are deleted every --retention-every (see 'bulwark vault retention').`,
		Examples: []string{
			"bulwark vault serve --data /srv/vault --listen 0.0.0.0:8443",
			"bulwark vault serve --data /srv/vault --listen 127.0.0.1:8443 --retention 30d",
		},
		Flags: func(fs *flag.FlagSet) {
			dataFlag(fs, &data)
			fs.StringVar(&listen, "listen", "127.0.0.1:8443", "listen on `ADDR` (host:port)")
			fs.StringVar(&logFile, "log", "", "append refused requests to `FILE` (default DATA/vault.log; - for stderr)")
			fs.StringVar(&within, "retention", "", "delete snapshots received longer than `DURATION` (30d, 1y) before the newest")
			fs.IntVar(&keepLast, "retention-keep-last", 1, "with --retention: always keep the `N` most recently received snapshots")
			fs.DurationVar(&every, "retention-every", time.Hour, "with --retention: run it every `D`")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("vault serve takes no arguments, got %q", args)
			}
			dir, err := vaultData(e, data)
			if err != nil {
				return err
			}
			var ro *vault.RetentionOptions
			if within != "" {
				d, err := prune.ParseDuration(within)
				if err != nil {
					return usageError("--retention: %v", err)
				}
				if every <= 0 {
					return usageError("--retention-every %s: must be positive", every)
				}
				ro = &vault.RetentionOptions{KeepWithin: d, KeepLast: keepLast}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("vault data %s: %w", dir, err)
			}
			var logw io.Writer = e.Stderr
			if logFile != "-" {
				if logFile == "" {
					logFile = filepath.Join(dir, "vault.log")
				}
				f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
				if err != nil {
					return fmt.Errorf("vault log: %w", err)
				}
				defer f.Close()
				logw = f
			}
			certFile, keyFile, err := certs.EnsureSelfSigned(dir, listen, time.Now())
			if err != nil {
				return err
			}
			s, err := vault.New(vault.Options{Data: dir, Log: logw})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("vault: listen on %s: %w", listen, err)
			}
			fp, _ := certs.CertFingerprint(certFile)
			fmt.Fprintf(e.Stderr, "vault serving https://%s (data %s)\ncertificate %s\nfingerprint sha256:%s\n", ln.Addr(), dir, certFile, fp)
			if ro != nil {
				go retentionLoop(ctx, e, dir, *ro, every)
			}
			return s.Serve(ctx, ln, certFile, keyFile)
		},
	}
}

// retentionLoop applies o to every repository now and then every period.
func retentionLoop(ctx context.Context, e *Env, dir string, o vault.RetentionOptions, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		names, err := vault.Repos(dir)
		if err != nil {
			fmt.Fprintf(e.Stderr, "vault retention: %v\n", err)
		}
		for _, n := range names {
			rep, err := vault.Retention(ctx, dir, n, o)
			if err != nil {
				fmt.Fprintf(e.Stderr, "vault retention %s: %v\n", n, err)
				continue
			}
			if rep.Removed > 0 {
				fmt.Fprintf(e.Stderr, "vault retention %s: removed %d snapshots received before %s\n", n, rep.Removed, rep.Cutoff.Format(time.RFC3339))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func vaultTokenCommand() *Command {
	return &Command{
		Name:    "token",
		Summary: "add, list and revoke the tokens clients use to reach the vault",
		Usage:   "bulwark vault token add|list|revoke [FLAGS]",
		Long: `Tokens are stored hashed in DATA/tokens.json; a new token is printed once. A running
vault sees changes at its next request: a revoked token is refused at once.`,
		Subs: []*Command{vaultTokenAddCommand(), vaultTokenListCommand(), vaultTokenRevokeCommand()},
	}
}

func vaultTokenAddCommand() *Command {
	var data, repoName, quota string
	var appendOnly, status bool
	return &Command{
		Name:    "add",
		Summary: "create a token and print it (once)",
		Usage:   "bulwark vault token add NAME --data DIR [--append-only | --status] [--repo NAME] [--quota SIZE]",
		Long: `A full token may read, write and delete; an --append-only token may create objects and
read them, never overwrite, rename or delete (except its own locks), so a compromised
client cannot destroy its backups. --repo limits the token to one repository;
--quota limits the bytes stored through it (507 beyond). A --status token may only
publish status pages (status.publish's vault destination), which the vault serves to
anyone at https://VAULT/_status/ (docs/monitor.md).`,
		Examples: []string{
			"bulwark vault token add web1 --data /srv/vault --append-only --repo web1 --quota 500GiB",
			"bulwark vault token add admin --data /srv/vault",
			"bulwark vault token add status-web1 --data /srv/vault --status",
		},
		Flags: func(fs *flag.FlagSet) {
			dataFlag(fs, &data)
			fs.BoolVar(&appendOnly, "append-only", false, "the token may add but never delete or overwrite")
			fs.BoolVar(&status, "status", false, "the token may only publish status pages")
			fs.StringVar(&repoName, "repo", "", "limit the token to repository `NAME` (default: every repository)")
			fs.StringVar(&quota, "quota", "", "most bytes stored through the token, `SIZE` (e.g. 100GiB; default no limit)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("vault token add takes one NAME, got %d arguments", len(args))
			}
			dir, err := vaultData(e, data)
			if err != nil {
				return err
			}
			spec := vault.TokenSpec{Name: args[0], Repo: repoName, Mode: vault.ModeFull}
			if appendOnly && status {
				return usageError("--append-only and --status are exclusive")
			}
			if appendOnly {
				spec.Mode = vault.ModeAppendOnly
			}
			if status {
				spec.Mode = vault.ModeStatus
			}
			if quota != "" {
				q, err := config.ParseSize(quota)
				if err != nil {
					return usageError("--quota: %v", err)
				}
				spec.Quota = q.Bytes()
			}
			secret, err := vault.AddToken(dir, spec, time.Now())
			if err != nil {
				if errors.Is(err, vault.ErrTokenExists) {
					return usageError("%v", err)
				}
				return err
			}
			fmt.Fprintln(e.Stdout, secret)
			fmt.Fprintf(e.Stderr, "token %q (%s) created; it is shown only now: give it to the client as BULWARK_VAULT_TOKEN\n", spec.Name, spec.Mode)
			return nil
		},
	}
}

func vaultTokenListCommand() *Command {
	var data string
	var asJSON bool
	return &Command{
		Name:     "list",
		Summary:  "list the vault's tokens (never the secrets)",
		Usage:    "bulwark vault token list --data DIR [--json]",
		Examples: []string{"bulwark vault token list --data /srv/vault"},
		Flags: func(fs *flag.FlagSet) {
			dataFlag(fs, &data)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("vault token list takes no arguments")
			}
			dir, err := vaultData(e, data)
			if err != nil {
				return err
			}
			toks, err := vault.ListTokens(dir)
			if err != nil {
				return err
			}
			type row struct {
				Name    string    `json:"name"`
				Mode    string    `json:"mode"`
				Repo    string    `json:"repo"`
				Quota   int64     `json:"quota"`
				Used    int64     `json:"used"`
				Created time.Time `json:"created"`
			}
			rows := []row{}
			for _, t := range toks {
				rows = append(rows, row{t.Name, string(t.Mode), t.Repo, t.Quota, vault.TokenUsage(dir, t), t.Created})
			}
			if asJSON {
				return writeJSON(e.Stdout, rows)
			}
			w := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tMODE\tREPOSITORY\tUSED\tQUOTA\tCREATED")
			for _, r := range rows {
				repo, q := r.Repo, "-"
				if repo == "" {
					repo = "(all)"
				}
				if r.Quota > 0 {
					q = humanBytes(r.Quota)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Mode, repo, humanBytes(r.Used), q, r.Created.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
}

func vaultTokenRevokeCommand() *Command {
	var data string
	return &Command{
		Name:     "revoke",
		Summary:  "revoke a token; a running vault refuses it at once",
		Usage:    "bulwark vault token revoke NAME --data DIR",
		Examples: []string{"bulwark vault token revoke web1 --data /srv/vault"},
		Flags:    func(fs *flag.FlagSet) { dataFlag(fs, &data) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("vault token revoke takes one NAME, got %d arguments", len(args))
			}
			dir, err := vaultData(e, data)
			if err != nil {
				return err
			}
			if err := vault.RevokeToken(dir, args[0]); err != nil {
				if errors.Is(err, vault.ErrNoToken) {
					return usageError("%v (see 'bulwark vault token list')", err)
				}
				return err
			}
			fmt.Fprintf(e.Stderr, "token %q revoked\n", args[0])
			return nil
		},
	}
}

func vaultRetentionCommand() *Command {
	var data, repoName, within string
	var keepLast int
	var dryRun, asJSON bool
	return &Command{
		Name:    "retention",
		Summary: "delete old snapshots by the time the vault received them",
		Usage:   "bulwark vault retention --data DIR --repo NAME --keep-within DURATION [--keep-last N] [--dry-run] [--json]",
		Long: `Keeps every snapshot the vault received within DURATION of the newest one it received
(and the --keep-last N most recent), and deletes the other snapshot objects. Times are
the vault's own, so a client that forges snapshot times cannot push real snapshots out.
Only snapshot objects are deleted: the data they alone used stays until a prune with a
full key and a full token.`,
		Examples: []string{
			"bulwark vault retention --data /srv/vault --repo web1 --keep-within 30d",
			"bulwark vault retention --data /srv/vault --repo web1 --keep-within 30d --dry-run",
		},
		Flags: func(fs *flag.FlagSet) {
			dataFlag(fs, &data)
			fs.StringVar(&repoName, "repo", "", "repository `NAME` on the vault")
			fs.StringVar(&within, "keep-within", "", "keep snapshots received within `DURATION` (30d, 1y2m, 36h) of the newest")
			fs.IntVar(&keepLast, "keep-last", 1, "always keep the `N` most recently received snapshots")
			fs.BoolVar(&dryRun, "dry-run", false, "print what would be deleted and delete nothing")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("vault retention takes no arguments")
			}
			dir, err := vaultData(e, data)
			if err != nil {
				return err
			}
			if repoName == "" {
				return usageError("give --repo NAME")
			}
			if within == "" {
				return usageError("give --keep-within DURATION (e.g. 30d)")
			}
			d, err := prune.ParseDuration(within)
			if err != nil {
				return usageError("--keep-within: %v", err)
			}
			if keepLast < 0 {
				return usageError("--keep-last %d: must not be negative", keepLast)
			}
			rep, err := vault.Retention(ctx, dir, repoName, vault.RetentionOptions{KeepWithin: d, KeepLast: keepLast, DryRun: dryRun})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, rep)
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			fmt.Fprintf(e.Stdout, "repository %s: keep %d snapshots received since %s, %s %d\n", repoName, len(rep.Keep), rep.Cutoff.Format(time.RFC3339), verb, len(rep.Remove))
			for _, s := range rep.Remove {
				fmt.Fprintf(e.Stdout, "  - %s received %s\n", s.Name[:min(12, len(s.Name))], s.Received.Format(time.RFC3339))
			}
			return nil
		},
	}
}
