package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/continuity"
)

func drpCommand() *Command {
	return &Command{
		Name:    "drp",
		Summary: "disaster recovery: bring a policy's data up on a standby",
		Usage:   "bulwark drp activate POLICY --target DIR [--postgres DSN] [--mysql DSN]",
		Long:    "The runbook (activation and return to production) is docs/disaster-recovery.md.",
		Subs:    []*Command{drpActivateCommand()},
	}
}

func drpActivateCommand() *Command {
	var f serverFlags
	var o continuity.ActivateOptions
	var asJSON bool
	return &Command{
		Name:    "activate",
		Summary: "restore everything a policy covers from its freshest copy",
		Usage:   "bulwark drp activate POLICY --target DIR [--postgres DSN] [--mysql DSN] [--config FILE] [--data DIR] [--json]",
		Long: `For every source of the policy, finds the newest snapshot in the primary
repository or, when it is newer or the primary is unreachable, in an
offsite one, and restores it: files below --target (verified), PostgreSQL
dumps into --postgres DSN, MariaDB/MySQL dumps into --mysql DSN. Prints
which copy each source came from, the measured recovery time and the age
of the data (the recovery point). Exit status 1 if any source failed.`,
		Examples: []string{
			"bulwark drp activate web --target /srv/standby --config /etc/bulwark/bulwark.yaml",
			"bulwark drp activate db --postgres 'host=127.0.0.1 dbname=app' --json",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.StringVar(&o.Target, "target", "", "restore files below `DIR`")
			fs.StringVar(&o.Postgres, "postgres", "", "restore PostgreSQL dumps into `DSN`")
			fs.StringVar(&o.MySQL, "mysql", "", "restore MariaDB/MySQL dumps into `DSN`")
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			return runPolicyJob(ctx, e, &f, args, asJSON, func(a *app.App, name string) (*continuity.ActivationReport, error) {
				return a.Continuity.Activate(ctx, name, o)
			}, func(rep *continuity.ActivationReport) {
				for _, s := range rep.Sources {
					if s.Error != "" {
						fmt.Fprintf(e.Stdout, "%s: FAILED: %s\n", s.Source, s.Error)
						continue
					}
					fmt.Fprintf(e.Stdout, "%s: snapshot %s from %s, data %s old\n", s.Source, s.Snapshot[:8], s.Repository, (time.Duration(s.DataAge) * time.Second).Round(time.Second))
				}
				fmt.Fprintf(e.Stdout, "recovery of %s: %s in %.1fs\n", rep.Policy, map[bool]string{true: "complete", false: "INCOMPLETE"}[rep.OK], rep.Duration)
			})
		},
	}
}
