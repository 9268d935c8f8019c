package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/monitor/check"
	"github.com/bulwarkhq/bulwark/internal/monitor/host"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
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
		Subs: []*Command{monitorMetricsCommand(), monitorCheckCommand()},
	}
}

func monitorMetricsCommand() *Command {
	var f serverFlags
	var asJSON, prom, smart, updates bool
	var over time.Duration
	return &Command{
		Name:    "metrics",
		Summary: "print one sample of the host's metrics",
		Usage:   "bulwark monitor metrics [--json | --prometheus] [--smart] [--updates]",
		Long: `Reads the host's metrics from /proc and /sys: CPU, load, memory and swap, space
and inodes per filesystem, disk I/O, network, clock offset and
synchronisation, uptime, processes (and the configuration's
monitor.processes, up or down). Rates (CPU busy) are measured over --over.
--smart adds SMART health through smartctl (it says when smartctl is not
installed), --updates pending apt upgrades (slow: apt-get is run).
--json prints the sample as one JSON object; --prometheus prints what
/metrics serves, under node_exporter's names.`,
		Examples: []string{"bulwark monitor metrics", "bulwark monitor metrics --json --smart --updates", "bulwark monitor metrics --prometheus | grep node_filesystem"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the sample as JSON")
			fs.BoolVar(&prom, "prometheus", false, "print the Prometheus exposition /metrics serves")
			fs.BoolVar(&smart, "smart", false, "read SMART health with smartctl")
			fs.BoolVar(&updates, "updates", false, "count pending package upgrades with apt-get")
			fs.DurationVar(&over, "over", time.Second, "measure rates over `DURATION`")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("metrics takes no arguments, got %q", args)
			}
			if asJSON && prom {
				return usageError("--json and --prometheus are exclusive")
			}
			cfg, _, _, err := app.LoadConfig(f.options(e))
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			c := host.New(host.Options{Processes: cfg.Monitor.Processes, SMART: smart, Updates: updates})
			if prom {
				reg := prometheus.NewPedanticRegistry()
				if err := reg.Register(c); err != nil {
					return err
				}
				mfs, err := reg.Gather()
				if err != nil {
					return err
				}
				for _, mf := range mfs {
					if _, err := expfmt.MetricFamilyToText(e.Stdout, mf); err != nil {
						return err
					}
				}
				return nil
			}
			if _, err := c.Sample(ctx); err != nil {
				fmt.Fprintf(e.Stderr, "warning: %v\n", err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(over):
			}
			s, err := c.Sample(ctx)
			if s == nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err != nil {
				fmt.Fprintf(e.Stderr, "warning: %v\n", err)
			}
			if asJSON {
				return writeJSON(e.Stdout, s)
			}
			printSample(e, s)
			return nil
		},
	}
}

func printSample(e *Env, s *host.Sample) {
	w := e.Stdout
	busy := "n/a"
	if s.CPU.BusyPercent != nil {
		busy = fmt.Sprintf("%.1f%%", *s.CPU.BusyPercent)
	}
	fmt.Fprintf(w, "cpu       %d CPUs, %s busy, load %.2f %.2f %.2f\n", s.CPU.Count, busy, s.Load.Load1, s.Load.Load5, s.Load.Load15)
	fmt.Fprintf(w, "memory    %s of %s used (%.1f%%), swap %.1f%% of %s\n", humanBytes(int64(s.Memory.UsedBytes)), humanBytes(int64(s.Memory.TotalBytes)), s.Memory.UsedPercent,
		s.Swap.UsedPercent, humanBytes(int64(s.Swap.TotalBytes)))
	sync := "synchronised"
	if !s.Clock.Synchronised {
		sync = "NOT synchronised"
	}
	fmt.Fprintf(w, "clock     %s, offset %.6f s, up %s (boot %s)\n", sync, s.Clock.OffsetSeconds, time.Duration(s.Clock.UptimeSeconds*float64(time.Second)).Round(time.Second), s.Clock.BootTime.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "processes %d (%d threads), %d running, %d blocked\n", s.Processes.Total, s.Processes.Threads, s.Processes.Running, s.Processes.Blocked)
	for _, p := range s.Named {
		state := "DOWN"
		if p.Up > 0 {
			state = fmt.Sprintf("up (%d)", p.Up)
		}
		fmt.Fprintf(w, "process   %-15s %s, %d restarts\n", p.Name, state, p.Restarts)
	}
	for _, fs := range s.Filesystems {
		if fs.Error != "" {
			fmt.Fprintf(w, "fs        %-20s %s\n", fs.MountPoint, fs.Error)
			continue
		}
		fmt.Fprintf(w, "fs        %-20s %5.1f%% of %-10s inodes %5.1f%%  %s %s\n", fs.MountPoint, fs.UsedPercent, humanBytes(int64(fs.SizeBytes)), fs.InodesUsedPercent, fs.FSType, fs.Device)
	}
	for _, d := range s.Disks {
		fmt.Fprintf(w, "disk      %-10s read %s, written %s since boot\n", d.Device, humanBytes(int64(d.ReadBytes)), humanBytes(int64(d.WrittenBytes)))
	}
	for _, n := range s.Network {
		fmt.Fprintf(w, "net       %-10s rx %s (%d errors), tx %s (%d errors)\n", n.Device, humanBytes(int64(n.RxBytes)), n.RxErrs, humanBytes(int64(n.TxBytes)), n.TxErrs)
	}
	if sm := s.SMART; sm != nil {
		switch {
		case !sm.Available:
			fmt.Fprintf(w, "smart     unavailable: %s\n", sm.Reason)
		case len(sm.Devices) == 0:
			fmt.Fprintf(w, "smart     smartctl found no disks (a virtual machine's disks have no SMART)\n")
		}
		for _, d := range sm.Devices {
			h := "unknown"
			if d.Healthy != nil && *d.Healthy {
				h = "PASSED"
			} else if d.Healthy != nil {
				h = "FAILING"
			}
			fmt.Fprintf(w, "smart     %-10s %s %s\n", d.Name, h, d.Error)
		}
	}
	if u := s.Updates; u != nil {
		if !u.Available {
			fmt.Fprintf(w, "updates   unavailable: %s\n", u.Reason)
		} else {
			fmt.Fprintf(w, "updates   %d pending, %d from security archives\n", u.Upgradable, u.Security)
		}
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
