package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/continuity"
)

// Policy commands run on this machine against the configuration's
// policies and the data directory's run history (the same ones `bulwark
// up` schedules), so they work whether or not the server is running.

// openLocal opens the data directory's app for a command that works on
// it directly, quiet below warnings unless --log-level says otherwise.
func openLocal(ctx context.Context, f *serverFlags, e *Env) (*app.App, error) {
	o := f.options(e)
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	return app.Open(ctx, o)
}

func openContinuity(ctx context.Context, f *serverFlags, e *Env) (*app.App, error) {
	a, err := openLocal(ctx, f, e)
	if err != nil {
		return nil, err
	}
	a.Continuity.Actor = cliActor()
	if len(a.Config.Continuity.Policies) == 0 {
		a.Close()
		return nil, usageError("no backup policy is configured (continuity.policies in %s); see docs/continuity.md", orDefault(a.ConfigFile, "the configuration"))
	}
	return a, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func policyCommand() *Command {
	return &Command{
		Name:    "policy",
		Summary: "list, run and inspect backup policies",
		Usage:   "bulwark policy list|run|status|scrub [FLAGS]",
		Long: `Backup policies are configured under continuity.policies (docs/continuity.md).
'bulwark up' runs them on their schedules; these commands run them now and
show their history, reading the same configuration and data directory.`,
		Subs: []*Command{policyListCommand(), policyRunCommand(), policyStatusCommand(), policyScrubCommand()},
	}
}

func policyListCommand() *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name: "list", Summary: "list the configured policies with their last run and next run",
		Usage:    "bulwark policy list [--config FILE] [--data DIR] [--json]",
		Examples: []string{"bulwark policy list", "bulwark policy list --config /etc/bulwark/bulwark.yaml --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("list takes no arguments")
			}
			a, err := openContinuity(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			var rows []continuity.PolicySummary
			for _, p := range a.Continuity.Policies() {
				r, err := a.Continuity.Summary(ctx, p)
				if err != nil {
					return err
				}
				rows = append(rows, r)
			}
			if asJSON {
				return writeJSON(e.Stdout, rows)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POLICY\tSCHEDULE\tREPOSITORY\tOFFSITE\tLAST BACKUP\tNEXT")
			for _, r := range rows {
				last := "never"
				if r.LastBackup != nil {
					last = fmt.Sprintf("%s %s", r.LastBackup.Started.Local().Format("2006-01-02 15:04"), r.LastBackup.Status)
				}
				next := "on demand"
				if !r.NextBackup.IsZero() {
					next = r.NextBackup.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, orDefault(r.Schedule, "-"), r.Repository, orDefault(strings.Join(r.Offsite, ","), "-"), last, next)
			}
			return tw.Flush()
		},
	}
}

func policyRunCommand() *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name: "run", Summary: "run a policy's backup now (every source, offsite copies, retention)",
		Usage: "bulwark policy run NAME [--config FILE] [--data DIR] [--json]",
		Long: `Backs up every source of the policy into its repository, copies the new
snapshots to its offsite repositories, then applies its retention. The run
is recorded in the history and reported as events, as a scheduled run is.
Exit status 1 when any part failed (the report says which).`,
		Examples: []string{"bulwark policy run web", "bulwark policy run db --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the run's evidence as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			return runPolicyJob(ctx, e, &f, args, asJSON, func(a *app.App, name string) (*continuity.BackupReport, error) {
				return a.Continuity.RunBackup(ctx, name)
			}, func(rep *continuity.BackupReport) {
				for _, s := range rep.Sources {
					if s.Error != "" {
						fmt.Fprintf(e.Stdout, "source %s: FAILED: %s\n", s.Source, s.Error)
						continue
					}
					fmt.Fprintf(e.Stdout, "source %s: snapshot %s, %d files, %s added\n", s.Source, s.Snapshot[:8], s.Summary.TotalFiles, humanBytes(s.Summary.BytesAdded))
				}
				for _, c := range rep.Copies {
					if c.Error != "" {
						fmt.Fprintf(e.Stdout, "copy to %s: FAILED: %s\n", c.Repository, c.Error)
						continue
					}
					fmt.Fprintf(e.Stdout, "copy to %s: %d snapshots, %s\n", c.Repository, c.Copied, humanBytes(c.Bytes))
				}
				if rep.Forgotten > 0 || rep.Locked > 0 {
					fmt.Fprintf(e.Stdout, "retention: %d snapshots forgotten, %d kept by a lock\n", rep.Forgotten, rep.Locked)
				}
				fmt.Fprintf(e.Stdout, "policy %s: %s in %.1fs\n", rep.Policy, map[bool]string{true: "ok", false: "FAILED"}[rep.OK], rep.Duration)
			})
		},
	}
}

func policyStatusCommand() *Command {
	var f serverFlags
	var asJSON bool
	var limit int
	return &Command{
		Name: "status", Summary: "show a policy's recent runs and its recovery point against the RPO",
		Usage:    "bulwark policy status [NAME] [--runs N] [--config FILE] [--data DIR] [--json]",
		Examples: []string{"bulwark policy status", "bulwark policy status web --runs 20 --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.IntVar(&limit, "runs", 10, "show the last `N` runs")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 1 {
				return usageError("give at most one policy name")
			}
			a, err := openContinuity(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			names := args
			if len(names) == 0 {
				for _, p := range a.Config.Continuity.Policies {
					names = append(names, p.Name)
				}
			}
			type status struct {
				Policy string                 `json:"policy"`
				Runs   []continuity.Run       `json:"runs"`
				RPO    []continuity.RPOStatus `json:"rpo"`
			}
			var out []status
			breached := false
			for _, n := range names {
				runs, err := a.Continuity.History.List(ctx, n, limit)
				if err != nil {
					return err
				}
				rpo, err := a.Continuity.CheckRPO(ctx, n)
				if err != nil {
					return err
				}
				for _, r := range rpo {
					breached = breached || r.Breached
				}
				out = append(out, status{n, append([]continuity.Run{}, runs...), append([]continuity.RPOStatus{}, rpo...)})
			}
			if asJSON {
				if err := writeJSON(e.Stdout, out); err != nil {
					return err
				}
			} else {
				for _, st := range out {
					fmt.Fprintf(e.Stdout, "policy %s\n", st.Policy)
					for _, r := range st.RPO {
						state := "ok"
						if r.Breached {
							state = "BREACHED"
						}
						age := "no snapshot"
						if !r.Newest.IsZero() {
							age = (time.Duration(r.AgeSeconds) * time.Second).String() + " old"
						}
						fmt.Fprintf(e.Stdout, "  RPO %s in %s (source %s): %s, limit %s\n", state, r.Repository, r.Source, age, time.Duration(r.RPOSeconds)*time.Second)
					}
					for _, r := range st.Runs {
						line := fmt.Sprintf("  %s  %-12s %s", r.Started.Local().Format("2006-01-02 15:04:05"), r.Kind, r.Status)
						if !r.Finished.IsZero() {
							line += fmt.Sprintf(" in %.1fs", r.Finished.Sub(r.Started).Seconds())
						}
						if r.Error != "" {
							line += ": " + r.Error
						}
						fmt.Fprintln(e.Stdout, line)
					}
				}
			}
			if breached {
				return &ExitError{Code: 1, Err: fmt.Errorf("a recovery point objective is breached")}
			}
			return nil
		},
	}
}

func policyScrubCommand() *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name: "scrub", Summary: "re-read and verify this run's share of a policy's repository, repairing damage",
		Usage: "bulwark policy scrub NAME [--config FILE] [--data DIR] [--json]",
		Long: `Reads the next group of packs (so that every byte is verified once per
scrub.period) and verifies every blob. Damage is repaired from parity,
then from an offsite copy made with the same parameters.`,
		Examples: []string{"bulwark policy scrub web"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			return runPolicyJob(ctx, e, &f, args, asJSON, func(a *app.App, name string) (*continuity.ScrubReport, error) {
				return a.Continuity.Scrub(ctx, name)
			}, func(rep *continuity.ScrubReport) {
				fmt.Fprintf(e.Stdout, "scrub of %s: group %s, %d packs (%s) read, %d problems\n", rep.Repository, rep.Group, rep.Packs, humanBytes(rep.Bytes), len(rep.Problems))
				for _, p := range rep.Problems {
					fmt.Fprintln(e.Stdout, "  "+p)
				}
			})
		},
	}
}

func restoreTestCommand() *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name:    "restore-test",
		Summary: "restore a policy's newest and an older snapshot into scratch space and verify them",
		Usage:   "bulwark restore-test POLICY [--config FILE] [--data DIR] [--json]",
		Long: `For every source of the policy, restores the newest snapshot and a random
older one into a scratch directory (restore_test.scratch, default a
temporary directory), verifies every file's content and metadata against
the snapshot, restores database dumps into a scratch database when
restore_test.postgres / restore_test.mysql name a server, runs
restore_test.command if set, and removes everything. Prints the evidence:
snapshot ids, files and bytes verified, the recovery time and the data's
age. Exit status 1 when the test fails (an alert event is raised too).`,
		Examples: []string{"bulwark restore-test web --config /etc/bulwark/bulwark.yaml --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the evidence as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			return runPolicyJob(ctx, e, &f, args, asJSON, func(a *app.App, name string) (*continuity.RestoreTestEvidence, error) {
				return a.Continuity.RestoreTest(ctx, name)
			}, func(ev *continuity.RestoreTestEvidence) {
				for _, t := range ev.Tests {
					res := "passed"
					if t.Error != "" {
						res = "FAILED: " + t.Error
					}
					fmt.Fprintf(e.Stdout, "%s %s snapshot %s (%s old): %d files, %s verified in %.2fs: %s\n", t.Source, t.Which, t.Snapshot[:8],
						(time.Duration(t.DataAge) * time.Second).Round(time.Second), t.FilesVerified, humanBytes(t.Bytes), t.Duration, res)
				}
				fmt.Fprintf(e.Stdout, "restore test of %s: %s in %.2fs\n", ev.Policy, ev.Result, ev.Duration)
			})
		},
	}
}

// runPolicyJob runs job on the one policy args names, prints its report
// (JSON, or text), and turns a failed job into exit status 1; a job that
// could not start (unknown policy, already running) is an error as is.
func runPolicyJob[T any](ctx context.Context, e *Env, f *serverFlags, args []string, asJSON bool,
	job func(a *app.App, policy string) (*T, error), text func(*T)) error {
	if len(args) != 1 {
		return usageError("give one policy name")
	}
	a, err := openContinuity(ctx, f, e)
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := job(a, args[0])
	if rep == nil {
		return err
	}
	if asJSON {
		if werr := writeJSON(e.Stdout, rep); werr != nil {
			return werr
		}
	} else {
		text(rep)
	}
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	return nil
}
