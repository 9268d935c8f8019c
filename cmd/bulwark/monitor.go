package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/monitor/check"
)

func monitorCommand() *Command {
	return &Command{
		Name:    "monitor",
		Summary: "supervision: host metrics and service checks",
		Usage:   "bulwark monitor metrics|check [FLAGS]",
		Long: `Host metrics are sampled from /proc and /sys (node_exporter's names at /metrics
of bulwark up); service checks are configured under monitor.checks
(docs/monitor.md). Inside bulwark up, checks run on their intervals and alert
rules (alerts.rules) notify the configured channels.`,
		Subs: []*Command{monitorCheckCommand()},
	}
}

func monitorCheckCommand() *Command {
	var f serverFlags
	var asJSON bool
	var only string
	var parallel int
	return &Command{
		Name:    "check",
		Summary: "run every configured check once and print the results",
		Usage:   "bulwark monitor check [--config FILE] [--check NAME,...] [--json]",
		Long: `Runs the checks of monitor.checks once each (retries and timeouts as
configured), several at a time, and prints one line per check: status, name,
time taken and what was found. With --json, one JSON object per line and per
check: name, kind, ok, status (ok, warning, critical, unknown),
duration_seconds, message, attempts, time, values (latency_seconds,
status_code, cert_expiry_seconds, lag_seconds, ...) and perf (a Nagios
plugin's performance data). Exit status 0 when every check passed, 1 when one
failed, 2 on errors (a bad configuration).`,
		Examples: []string{
			"bulwark monitor check --config /etc/bulwark/bulwark.yaml",
			"bulwark monitor check --check web,db --json",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print one JSON object per check")
			fs.StringVar(&only, "check", "", "run only these checks (comma-separated `NAMES`)")
			fs.IntVar(&parallel, "parallel", 16, "run at most `N` checks at once")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("check takes no arguments, got %q", args)
			}
			cfg, path, _, err := app.LoadConfig(f.options(e))
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			cfgs, err := selectChecks(cfg.Monitor.Checks, only)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if len(cfgs) == 0 {
				where := path
				if where == "" {
					where = "the built-in default configuration"
				}
				return &ExitError{Code: 2, Err: fmt.Errorf("%s configures no checks: add them under monitor.checks (docs/monitor.md)", where)}
			}
			checks, err := check.Compile(cfgs, check.Options{Getenv: e.Getenv})
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			results := check.RunAll(ctx, checks, parallel)
			failed := 0
			enc := json.NewEncoder(e.Stdout)
			for _, r := range results {
				if !r.OK {
					failed++
				}
				if asJSON {
					if err := enc.Encode(r); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(e.Stdout, "%-8s %-20s %7.0f ms  %s\n", strings.ToUpper(string(r.Status)), r.Name, r.DurationSeconds*1000, r.Message)
			}
			if !asJSON {
				fmt.Fprintf(e.Stderr, "%d checks, %d failed\n", len(results), failed)
			}
			if failed > 0 {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

// selectChecks keeps the checks named in a comma-separated list (all when
// empty); an unknown name is an error.
func selectChecks(all []config.Check, only string) ([]config.Check, error) {
	if only == "" {
		return all, nil
	}
	var out []config.Check
	for _, name := range strings.Split(only, ",") {
		i := slices.IndexFunc(all, func(c config.Check) bool { return c.Name == name })
		if i < 0 {
			names := make([]string, len(all))
			for j, c := range all {
				names[j] = c.Name
			}
			return nil, fmt.Errorf("--check: no check named %q (configured: %s)", name, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}
