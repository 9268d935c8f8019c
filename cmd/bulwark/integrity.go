package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/signkey"
)

func integrityCommand() *Command {
	return &Command{
		Name:    "integrity",
		Summary: "file integrity: record a signed baseline, check the system against it, accept changes",
		Usage:   "bulwark integrity init|check|accept|watch|packages [FLAGS]",
		Long: `A baseline records, for every watched path, the attributes its rule asks
for (type, mode, owner, group, size, times, inode, links, symlink target,
extended attributes, ACLs, capabilities, content hash), and is signed with
DIR/integrity.key (created on first use; keep a copy of integrity.pub off
the host and pass it with --public-key). Without --path the configuration's
integrity rules are used: the built-in policy for a Debian or Ubuntu server
unless integrity.rules says otherwise (docs/integrity.md). --baseline
defaults to the configuration's integrity.baseline, DATA_DIR/integrity.baseline.
With integrity.enabled, bulwark up watches the baseline's paths itself.`,
		Subs: []*Command{integrityInitCommand(), integrityCheckCommand(), integrityAcceptCommand(), integrityWatchCommand(), integrityPackagesCommand()},
	}
}

// integrityFlags are the flags the integrity commands share.
type integrityFlags struct {
	server   serverFlags
	baseline string
	pubFile  string
	asJSON   bool
}

func (f *integrityFlags) register(fs *flag.FlagSet) {
	f.server.register(fs, false)
	fs.StringVar(&f.baseline, "baseline", "", "baseline `FILE` (default: the configuration's integrity.baseline, DATA_DIR/integrity.baseline)")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
}

func (f *integrityFlags) registerPub(fs *flag.FlagSet) {
	fs.StringVar(&f.pubFile, "public-key", "", "integrity public key `FILE` kept apart from the host (default DIR/integrity.pub)")
}

// dataDir resolves the data directory as the server would.
func (f *integrityFlags) dataDir(e *Env) (string, error) {
	_, _, dir, err := app.LoadConfig(f.server.options(e))
	return dir, err
}

// service is the integrity service of the configuration (its baseline and
// key paths), and --baseline defaults to its baseline.
func (f *integrityFlags) service(e *Env) (*integrity.Service, error) {
	cfg, _, dir, err := app.LoadConfig(f.server.options(e))
	if err != nil {
		return nil, err
	}
	svc := &integrity.Service{Config: cfg.Integrity, DataDir: dir}
	if f.baseline == "" {
		f.baseline = svc.BaselinePath()
	}
	if f.pubFile == "" && cfg.Integrity.PublicKey != "" {
		f.pubFile = cfg.Integrity.PublicKey
	}
	return svc, nil
}

func (f *integrityFlags) key(e *Env) (ed25519.PrivateKey, error) {
	dir, err := f.dataDir(e)
	if err != nil {
		return nil, err
	}
	return signkey.LoadOrCreate(dir, "integrity")
}

func (f *integrityFlags) publicKey(e *Env) (ed25519.PublicKey, error) {
	p := f.pubFile
	if p == "" {
		dir, err := f.dataDir(e)
		if err != nil {
			return nil, err
		}
		p = filepath.Join(dir, "integrity.pub")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("integrity public key: %w (was a baseline ever made with this data directory?)", err)
	}
	pub, err := signkey.ReadPublic(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return pub, nil
}

func (f *integrityFlags) readBaseline(e *Env) (*integrity.Baseline, error) {
	if _, err := f.service(e); err != nil {
		return nil, err
	}
	pub, err := f.publicKey(e)
	if err != nil {
		return nil, err
	}
	b, err := integrity.ReadFile(f.baseline, pub)
	if err != nil {
		return nil, &ExitError{Code: 2, Err: err}
	}
	return b, nil
}

// scan runs a scan with live progress on a terminal.
func integrityScan(ctx context.Context, e *Env, p integrity.Policy, expect int) (*integrity.Result, error) {
	prog := &integrity.Progress{}
	stop := liveStatus(e, func(el time.Duration) string {
		return fmt.Sprintf("scanned %d entries, hashed %s (%s/s), %s", prog.Entries.Load(), humanBytes(prog.Bytes.Load()),
			humanBytes(int64(float64(prog.Bytes.Load())/max(el.Seconds(), 0.001))), el.Truncate(time.Second))
	})
	res, err := integrity.Scan(ctx, p, integrity.Options{Progress: prog, Expect: expect})
	stop()
	if err != nil {
		return nil, err
	}
	for _, se := range res.Errors {
		fmt.Fprintf(e.Stderr, "warning: %s: %s\n", se.Path, se.Error)
	}
	return res, nil
}

func integrityInitCommand() *Command {
	var f integrityFlags
	var paths stringList
	var hash, attrs, sysRoot string
	var noExcludes bool
	return &Command{
		Name:    "init",
		Summary: "scan the watched paths and write a signed baseline",
		Usage:   "bulwark integrity init --baseline FILE [--path DIR]... [--attrs LIST] [--no-default-excludes] [--hash sha256|blake3] [--root DIR] [--json]",
		Long: `Scans every watched path and writes the baseline FILE, signed with
DIR/integrity.key. --path replaces the policy's paths, each recorded with
the attributes of --attrs (default all; names, or AIDE's letters:
"p+u+g+s+m+c+i+n+sha256"). --no-default-excludes also records what the
built-in policy leaves out (__pycache__, editor files, /etc/mtab, ...).
--root DIR says where the watched system is mounted (an image, a
container's root): findings are graded by their path below it, so
DIR/etc/shadow counts as /etc/shadow. Entries that cannot be read are
listed as warnings and recorded with the error, so they show as changed
until they can be read.`,
		Examples: []string{
			"bulwark integrity init --baseline /var/lib/bulwark/integrity.baseline",
			"bulwark integrity init --baseline ./usr.baseline --path /usr --json",
			"bulwark integrity init --baseline ./usr.baseline --path /usr --attrs p+u+g+s+m+c+i+n+sha256 --no-default-excludes",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Var(&paths, "path", "watch `DIR` instead of the policy's paths (repeatable)")
			fs.StringVar(&hash, "hash", "", "content hash: sha256 (default) or blake3")
			fs.StringVar(&attrs, "attrs", "", "attributes the --path rules record, e.g. mode,owner,hash or p+u+g+s+m+c+i+n+sha256 (default all)")
			fs.BoolVar(&noExcludes, "no-default-excludes", false, "record the volatile files the built-in policy leaves out")
			fs.StringVar(&sysRoot, "root", "", "the watched system is mounted at `DIR` (grading of findings; default /)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("init takes no arguments (use --path DIR), got %q", args)
			}
			svc, err := f.service(e)
			if err != nil {
				return err
			}
			p, err := integrity.PolicyFromConfig(svc.Config)
			if err != nil {
				return err
			}
			if len(paths) > 0 {
				abs := make([]string, len(paths))
				for i, d := range paths {
					a, err := filepath.Abs(d)
					if err != nil {
						return usageError("--path %q: %v", d, err)
					}
					abs[i] = a
				}
				p = p.WithPaths(abs)
			}
			if attrs != "" {
				if len(paths) == 0 {
					return usageError("--attrs applies to --path rules; give --path DIR")
				}
				a, err := integrity.ParseAttrs(strings.Split(attrs, ","))
				if err != nil {
					return usageError("--attrs: %v", err)
				}
				for i := range p.Rules {
					p.Rules[i].Attrs = a
				}
			}
			if noExcludes {
				p.Exclude = nil
			}
			if hash != "" {
				p.Hash = integrity.HashAlg(hash)
			}
			if sysRoot != "" {
				a, err := filepath.Abs(sysRoot)
				if err != nil {
					return usageError("--root %q: %v", sysRoot, err)
				}
				p.Root = a
			}
			if err := p.Validate(); err != nil {
				return usageError("%v", err)
			}
			key, err := f.key(e)
			if err != nil {
				return err
			}
			res, err := integrityScan(ctx, e, p, 0)
			if err != nil {
				return err
			}
			h := integrity.NewHeader(p)
			digest, err := integrity.WriteFile(f.baseline, h, res.Entries, key)
			if err != nil {
				return err
			}
			sum := map[string]any{"baseline": f.baseline, "entries": len(res.Entries), "bytes_hashed": res.Bytes,
				"errors": len(res.Errors), "seconds": res.Duration.Seconds(), "digest": digest,
				"key_id": signkey.ID(key.Public().(ed25519.PublicKey))}
			if f.asJSON {
				return writeJSON(e.Stdout, sum)
			}
			fmt.Fprintf(e.Stdout, "baseline %s: %d entries, %s hashed in %.2fs, %d unreadable; signed by key %s\n",
				f.baseline, len(res.Entries), humanBytes(res.Bytes), res.Duration.Seconds(), len(res.Errors), sum["key_id"])
			return nil
		},
	}
}

func integrityCheckCommand() *Command {
	var f integrityFlags
	return &Command{
		Name:    "check",
		Summary: "compare the system with the baseline",
		Usage:   "bulwark integrity check --baseline FILE [--public-key FILE] [--json]",
		Long: `Verifies the baseline's signature, scans with the baseline's own policy and
reports added, removed and changed entries, each changed attribute with
its old and new value. Exit status 0 when nothing changed, 1 when
something did, 2 on errors (a baseline whose signature does not verify
included).`,
		Examples: []string{
			"bulwark integrity check --baseline /var/lib/bulwark/integrity.baseline",
			"bulwark integrity check --baseline ./usr.baseline --public-key /mnt/offsite/integrity.pub --json",
		},
		Flags: func(fs *flag.FlagSet) { f.register(fs); f.registerPub(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("check takes no arguments, got %q", args)
			}
			b, err := f.readBaseline(e)
			if err != nil {
				return err
			}
			res, err := integrityScan(ctx, e, b.Header.Policy, len(b.Entries))
			if err != nil {
				return err
			}
			rep := integrity.Diff(b.Entries, res.Entries, b.Grading())
			if f.asJSON {
				out := struct {
					*integrity.Report
					Severities map[string]int        `json:"severities"`
					Entries    int                   `json:"entries"`
					Errors     []integrity.ScanError `json:"errors"`
					Seconds    float64               `json:"seconds"`
				}{rep, rep.Counts(), len(res.Entries), res.Errors, res.Duration.Seconds()}
				if out.Errors == nil {
					out.Errors = []integrity.ScanError{}
				}
				if err := writeJSON(e.Stdout, out); err != nil {
					return err
				}
			} else {
				printReport(e, rep)
				n := rep.Counts()
				fmt.Fprintf(e.Stderr, "%d entries checked in %.2fs: %d added, %d removed, %d changed (%d high, %d medium, %d low severity)\n",
					len(res.Entries), res.Duration.Seconds(), len(rep.Added), len(rep.Removed), len(rep.Changed),
					n[integrity.SeverityHigh], n[integrity.SeverityMedium], n[integrity.SeverityLow])
			}
			if !rep.Clean() {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

func printReport(e *Env, rep *integrity.Report) {
	for _, a := range rep.Added {
		fmt.Fprintf(e.Stdout, "added    %s%s\n", a.Path, severityNote(&a))
	}
	for _, r := range rep.Removed {
		fmt.Fprintf(e.Stdout, "removed  %s%s\n", r.Path, severityNote(&r))
	}
	for _, c := range rep.Changed {
		fmt.Fprintf(e.Stdout, "changed  %s%s\n", c.Path, severityNote(&c))
		for _, ch := range c.Changes {
			fmt.Fprintf(e.Stdout, "         %s: %s -> %s\n", ch.Attribute, ch.Old, ch.New)
		}
	}
}

// severityNote marks a high-severity finding with its reasons.
func severityNote(f *integrity.Finding) string {
	if f.Severity != integrity.SeverityHigh {
		return ""
	}
	return "  [HIGH: " + strings.Join(f.Reasons, "; ") + "]"
}

func integrityAcceptCommand() *Command {
	var f integrityFlags
	var comment string
	return &Command{
		Name:    "accept",
		Summary: "fold reviewed changes into the baseline (audited)",
		Usage:   "bulwark integrity accept --baseline FILE [--comment TEXT] [PATH...]",
		Long: `Scans again and writes a new signed baseline in which the changes under
each PATH (a path covers everything below it; every change without PATH)
are accepted. Who accepted what is recorded in the baseline's header and
in the audit log of the data directory's store (--data DIR).`,
		Examples: []string{
			"bulwark integrity accept --baseline /var/lib/bulwark/integrity.baseline /etc/nginx --comment 'TLS renewal'",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			f.registerPub(fs)
			fs.StringVar(&comment, "comment", "", "why the changes are accepted (recorded)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			b, err := f.readBaseline(e)
			if err != nil {
				return err
			}
			a, err := openLocal(ctx, &f.server, e)
			if err != nil {
				return fmt.Errorf("accept is audited, and the store does not open: %w", err)
			}
			defer a.Close()
			key, err := signkey.Load(a.DataDir, "integrity")
			if err != nil {
				return err
			}
			if signkey.ID(key.Public().(ed25519.PublicKey)) != b.Header.KeyID {
				return integrity.ErrOtherKey
			}
			paths := make([]string, len(args))
			for i, p := range args {
				if paths[i], err = filepath.Abs(p); err != nil {
					return usageError("%q: %v", p, err)
				}
			}
			// The same accept as the API's (integrity.Service.Accept).
			res, err := integrity.AcceptFile(ctx, f.baseline, b, key, integrity.AcceptOptions{Paths: paths, By: cliActor(), Comment: comment,
				Scan: func(ctx context.Context, p integrity.Policy, expect int) (*integrity.Result, error) {
					return integrityScan(ctx, e, p, expect)
				}})
			if err != nil {
				return err
			}
			n, digest := res.Accepted, res.Digest
			if _, err := a.Audit.Append(ctx, audit.Entry{Actor: cliActor(), Action: "integrity.accept", Resource: "integrity", Result: "ok",
				Details: map[string]any{"baseline": f.baseline, "paths": paths, "changes": n, "comment": comment,
					"previous_digest": b.Digest, "digest": digest}}); err != nil {
				return fmt.Errorf("the new baseline is written but the audit log refused the record: %w", err)
			}
			out := map[string]any{"baseline": f.baseline, "accepted": n, "entries": res.Entries, "digest": digest}
			if f.asJSON {
				return writeJSON(e.Stdout, out)
			}
			fmt.Fprintf(e.Stdout, "accepted %d change(s); baseline %s now holds %d entries\n", n, f.baseline, res.Entries)
			return nil
		},
	}
}

func integrityWatchCommand() *Command {
	var f integrityFlags
	var rescan time.Duration
	return &Command{
		Name:    "watch",
		Summary: "report changes against the baseline as they happen (inotify)",
		Usage:   "bulwark integrity watch --baseline FILE [--public-key FILE] [--rescan DURATION] [--json]",
		Long: `Verifies the baseline's signature, scans once, then watches every covered
directory with inotify and reports each path that comes to differ from the
baseline (added, removed, changed with the attributes), usually within a
tenth of a second, and each that goes back to what the baseline holds
(restored). New directories are watched as they appear. When the kernel's
event queue overflows, or every --rescan (default 6h; 0 turns it off), a
full scan reconciles what was reported. Runs until interrupted.

--json prints one JSON object per line: kind (added, removed, changed,
restored, scan, warning), time, path, type, attributes, changes, source
(inotify or scan) and delay_ms (from the change's ctime to the report).`,
		Examples: []string{
			"bulwark integrity watch --baseline /var/lib/bulwark/integrity.baseline",
			"bulwark integrity watch --baseline ./etc.baseline --json --rescan 1h",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			f.registerPub(fs)
			fs.DurationVar(&rescan, "rescan", integrity.DefaultRescan, "full scan every `DURATION` (0: only at the start and after an overflow)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("watch takes no arguments, got %q", args)
			}
			if rescan < 0 {
				return usageError("--rescan %v: want a positive duration, or 0 for none", rescan)
			}
			b, err := f.readBaseline(e)
			if err != nil {
				return err
			}
			if rescan == 0 {
				rescan = -1 // integrity.WatchOptions: negative is none
			}
			enc := json.NewEncoder(e.Stdout)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var werr error
			events := func(ev integrity.WatchEvent) {
				if werr != nil {
					return
				}
				if f.asJSON {
					werr = enc.Encode(ev)
				} else {
					werr = printWatchEvent(e, ev)
				}
				if werr != nil {
					cancel() // nobody reads the reports any more: stop
				}
			}
			g := b.Grading()
			err = integrity.Watch(ctx, b.Header.Policy, b.Entries, integrity.WatchOptions{Rescan: rescan, Events: events, Packages: g.Packages, Since: g.Since})
			if err == nil {
				err = werr
			}
			return err
		},
	}
}

func printWatchEvent(e *Env, ev integrity.WatchEvent) error {
	at := ev.Time.Local().Format("15:04:05.000")
	switch ev.Kind {
	case integrity.KindScan:
		s := ev.Scan
		_, err := fmt.Fprintf(e.Stderr, "%s full scan (%s): %d entries in %.2fs, %d differ from the baseline, %d directories watched\n",
			at, s.Reason, s.Entries, s.Seconds, s.Differences, s.Watches)
		return err
	case integrity.KindWarning:
		_, err := fmt.Fprintf(e.Stderr, "%s warning: %s\n", at, ev.Message)
		return err
	}
	line := fmt.Sprintf("%s %-8s %s", at, ev.Kind, ev.Path)
	if len(ev.Attributes) > 0 {
		line += " (" + strings.Join(ev.Attributes, ", ") + ")"
	}
	line += severityNote(ev.Finding)
	_, err := fmt.Fprintln(e.Stdout, line)
	if err == nil {
		for _, ch := range ev.Changes {
			if _, err = fmt.Fprintf(e.Stdout, "             %s: %s -> %s\n", ch.Attribute, ch.Old, ch.New); err != nil {
				break
			}
		}
	}
	return err
}

func integrityPackagesCommand() *Command {
	var root string
	var asJSON bool
	return &Command{
		Name:    "packages",
		Summary: "verify every package file against dpkg's own checksums",
		Usage:   "bulwark integrity packages [--root DIR] [--json]",
		Long: `Reads every file Debian's dpkg has a checksum for (/var/lib/dpkg/info/*.md5sums,
as debsums does) and lists those whose content differs from the package's,
that are missing, or that are no longer regular files. Configuration files
(conffiles) have no such checksum: their edits show in integrity check.
Exit status 0 when every file is as installed, 1 when one is not, 2 on
errors (no dpkg database). --root checks a system mounted at DIR.`,
		Examples: []string{
			"bulwark integrity packages",
			"bulwark integrity packages --root /mnt/image --json",
		},
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "the system is mounted at `DIR`")
			fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("packages takes no arguments, got %q", args)
			}
			if !integrity.DpkgPresent(root) {
				return &ExitError{Code: 2, Err: fmt.Errorf("no dpkg database below %s (var/lib/dpkg/info): only Debian and its derivatives are supported", root)}
			}
			var done atomic.Int64
			stop := liveStatus(e, func(el time.Duration) string {
				return fmt.Sprintf("verified %d package files, %s", done.Load(), el.Truncate(time.Second))
			})
			rep, err := integrity.NewPackages(root).Verify(ctx, 0, &done)
			stop()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if asJSON {
				if err := writeJSON(e.Stdout, rep); err != nil {
					return err
				}
			} else {
				for _, p := range rep.Problems {
					fmt.Fprintf(e.Stdout, "%-10s %s (%s)\n", p.Problem, p.Path, p.Package)
				}
				fmt.Fprintf(e.Stderr, "%d files of %d packages verified in %.1fs: %d not as installed\n", rep.Files, rep.Packages, rep.Seconds, len(rep.Problems))
			}
			if len(rep.Problems) > 0 {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}
