package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"time"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/audit"
)

func auditCommand() *Command {
	return &Command{
		Name:    "audit",
		Summary: "verify, export and anchor the tamper-evident audit log",
		Usage:   "bulwark audit verify|export|anchor [FLAGS]",
		Long: `These commands read the server's store directly (--data DIR, or the
configuration's PostgreSQL DSN), so they work while the server is down.
Each use is itself recorded in the audit log.`,
		Subs: []*Command{auditVerifyCommand(), auditExportCommand(), auditAnchorCommand()},
	}
}

// cliActor names the local operator in audit entries of offline commands.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

func openOffline(ctx context.Context, f *serverFlags, e *Env) (*app.App, error) {
	o := f.options(e)
	o.MustExist = true
	o.LogLevel = "warn"
	return app.Open(ctx, o)
}

func auditVerifyCommand() *Command {
	var f serverFlags
	var anchorFile, pubFile string
	var asJSON bool
	return &Command{
		Name:    "verify",
		Summary: "check the hash chain, checkpoint signatures and an anchor",
		Usage:   "bulwark audit verify --data DIR [--anchor FILE] [--public-key FILE] [--json]",
		Long: `Exit status 0 when the log is intact; 1 when an entry was altered, removed or
reordered, or the newest entries were cut off (detected against --anchor, an
anchor file written earlier by 'bulwark audit anchor'); 2 on other errors.`,
		Examples: []string{
			"bulwark audit verify --data /var/lib/bulwark",
			"bulwark audit verify --data ./data --anchor /mnt/offsite/audit-anchor.json --public-key /mnt/offsite/audit.pub",
			"bulwark audit verify --data ./data --json",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.StringVar(&anchorFile, "anchor", "", "anchor `FILE` exported earlier, to detect truncation")
			fs.StringVar(&pubFile, "public-key", "", "audit public key `FILE` kept apart from the data directory (default DIR/audit.pub)")
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("verify takes no arguments")
			}
			a, err := openOffline(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			var opts audit.VerifyOptions
			if anchorFile != "" {
				fh, err := os.Open(anchorFile)
				if err != nil {
					return fmt.Errorf("anchor: %w", err)
				}
				an, err := audit.ReadAnchor(fh)
				fh.Close()
				if err != nil {
					return fmt.Errorf("anchor %s: %w", anchorFile, err)
				}
				opts.Anchor = &an
			}
			if pubFile != "" {
				b, err := os.ReadFile(pubFile)
				if err != nil {
					return fmt.Errorf("public key: %w", err)
				}
				pub, err := audit.ReadPublicKey(b)
				if err != nil {
					return fmt.Errorf("public key %s: %w", pubFile, err)
				}
				opts.PublicKey = ed25519.PublicKey(pub)
			}
			progress := newProgress(e.Stderr, "verified", "entries")
			if !asJSON {
				opts.Progress = progress.update
			}
			start := time.Now()
			rep, err := a.Audit.Verify(ctx, opts)
			progress.done()
			if err != nil {
				return err
			}
			elapsed := time.Since(start)
			if _, aerr := a.Audit.Append(ctx, audit.Entry{Actor: cliActor(), Action: "audit.verify", Resource: "audit", Result: map[bool]string{true: "ok", false: "failed"}[rep.OK],
				Details: map[string]any{"entries": rep.Entries, "ok": rep.OK, "anchor": anchorFile}}); aerr != nil {
				fmt.Fprintf(e.Stderr, "warning: could not record this verification: %v\n", aerr)
			}
			if asJSON {
				if err := json.NewEncoder(e.Stdout).Encode(map[string]any{"report": rep, "seconds": elapsed.Seconds()}); err != nil {
					return err
				}
			} else if rep.OK {
				fmt.Fprintf(e.Stdout, "audit log intact: %d entries (seq %d..%d), %d signed checkpoints, verified in %s\n",
					rep.Entries, rep.FirstSeq, rep.LastSeq, rep.Checkpoints, elapsed.Round(time.Millisecond))
				if opts.Anchor != nil {
					if rep.AnchorChecked {
						fmt.Fprintf(e.Stdout, "anchor at seq %d matches\n", opts.Anchor.Seq)
					} else {
						fmt.Fprintf(e.Stdout, "anchor at seq %d predates the retained log; not compared\n", opts.Anchor.Seq)
					}
				}
			} else {
				fmt.Fprintf(e.Stdout, "AUDIT LOG TAMPERED: first bad entry: %s\n", rep.Problem)
			}
			if !rep.OK {
				return &ExitError{Code: 1, Err: fmt.Errorf("audit log verification failed at entry %d (%s)", rep.Problem.Seq, rep.Problem.Kind)}
			}
			return nil
		},
	}
}

func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, usageError("--%s %q: use RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", name, v)
}

func auditExportCommand() *Command {
	var f serverFlags
	var since, until, format, output string
	return &Command{
		Name:    "export",
		Summary: "stream audit entries as JSON Lines",
		Usage:   "bulwark audit export --data DIR [--since T] [--until T] [--format jsonl] [--output FILE]",
		Examples: []string{
			"bulwark audit export --data ./data --since 2026-01-01 --until 2026-02-01 > january.jsonl",
			"bulwark audit export --data ./data --format jsonl | jq 'select(.result != \"ok\")'",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.StringVar(&since, "since", "", "first `TIME` to include (RFC 3339 or YYYY-MM-DD)")
			fs.StringVar(&until, "until", "", "`TIME` to stop before (exclusive)")
			fs.StringVar(&format, "format", "jsonl", "output format: jsonl")
			fs.StringVar(&output, "output", "", "write to `FILE` instead of standard output")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if format != "jsonl" {
				return usageError("--format %q: only jsonl is supported", format)
			}
			s, err := parseTimeFlag("since", since)
			if err != nil {
				return err
			}
			u, err := parseTimeFlag("until", until)
			if err != nil {
				return err
			}
			a, err := openOffline(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			var w io.Writer = e.Stdout
			var fh *os.File
			if output != "" {
				if fh, err = os.OpenFile(output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err != nil {
					return err
				}
				w = fh
			}
			bw := bufio.NewWriterSize(w, 64<<10)
			n, err := a.Audit.Export(ctx, bw, s, u)
			if ferr := bw.Flush(); err == nil {
				err = ferr
			}
			if fh != nil {
				if cerr := fh.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				return err
			}
			if _, err := a.Audit.Append(ctx, audit.Entry{Actor: cliActor(), Action: "audit.export", Resource: "audit", Result: "ok",
				Details: map[string]any{"since": since, "until": until, "entries": n, "output": output}}); err != nil {
				return fmt.Errorf("record export: %w", err)
			}
			if output != "" {
				fmt.Fprintf(e.Stderr, "exported %d entries to %s\n", n, output)
			}
			return nil
		},
	}
}

func auditAnchorCommand() *Command {
	var f serverFlags
	var to string
	return &Command{
		Name:    "anchor",
		Summary: "write the signed head of the log to a file or URL kept elsewhere",
		Usage:   "bulwark audit anchor --data DIR [--to FILE|https://URL]",
		Long: `An anchor is the newest entry's sequence number and hash, signed with the
audit key. Kept off the server, it lets 'audit verify --anchor' detect that
the newest entries were cut off. --to defaults to the configuration's
audit.anchor; '-' writes to standard output. A URL receives an HTTP PUT.`,
		Examples: []string{
			"bulwark audit anchor --data ./data --to /mnt/offsite/audit-anchor.json",
			"bulwark audit anchor --data ./data --to https://evidence.example.net/anchors/host1.json",
			"bulwark audit anchor --data ./data --to -",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.StringVar(&to, "to", "", "destination `FILE` or https:// URL ('-' for standard output)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			a, err := openOffline(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			dest := to
			if dest == "" {
				dest = a.Config.Audit.Anchor
			}
			if dest == "" {
				return usageError("give --to FILE|URL or set audit.anchor in the configuration")
			}
			// Record the anchoring first so the anchor covers its own entry.
			if _, err := a.Audit.Append(ctx, audit.Entry{Actor: cliActor(), Action: "audit.anchor", Resource: "audit", Result: "ok",
				Details: map[string]any{"to": dest}}); err != nil {
				return err
			}
			an, err := a.Audit.Anchor(ctx)
			if err != nil {
				return err
			}
			if dest == "-" {
				return json.NewEncoder(e.Stdout).Encode(an)
			}
			if err := audit.WriteAnchor(ctx, an, dest, &http.Client{Timeout: 30 * time.Second}); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "anchored seq %d to %s\n", an.Seq, dest)
			return nil
		},
	}
}
