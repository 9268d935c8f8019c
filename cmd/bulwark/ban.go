package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect"
)

// Ban commands work on the data directory's store, as the policy commands
// do, so they work whether or not the server runs; a running `bulwark up`
// enforces a change within five seconds (it reloads the active bans), in
// the guard and, when enabled, in nftables. Every manual ban and lift is
// an event, and so an audit entry, naming the person who ran the command.

func banCommand() *Command {
	return &Command{
		Name:    "ban",
		Summary: "list, add and lift bans (addresses and networks kept out)",
		Usage:   "bulwark ban list|add|remove [FLAGS]",
		Long: `Bans are decided by detection scenarios (docs/detect.md) or by a person with
these commands. The guard refuses a banned client's connections and
requests; with firewall.enabled, nftables drops its packets too. A running
'bulwark up' picks up a change within five seconds.`,
		Subs: []*Command{banListCommand(), banAddCommand(), banRemoveCommand()},
	}
}

// banActor is who a manual decision is recorded as: the operating-system
// user running the command.
func banActor() string { return "user:" + strings.TrimPrefix(cliActor(), "cli:") + "@cli" }

func banListCommand() *Command {
	var f serverFlags
	var asJSON, all bool
	var limit int
	return &Command{
		Name: "list", Summary: "list the bans in force (or every decision with --all)",
		Usage:    "bulwark ban list [--all] [--limit N] [--json] [--config FILE] [--data DIR]",
		Examples: []string{"bulwark ban list", "bulwark ban list --all --limit 50 --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.BoolVar(&all, "all", false, "include lifted and expired bans (the history)")
			fs.IntVar(&limit, "limit", 0, "show at most `N` bans, newest first (0: all)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("list takes no arguments, got %q", args)
			}
			if limit < 0 {
				return usageError("--limit must be 0 or more, got %d", limit)
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			list, err := a.Bans.List(ctx, all, limit)
			if err != nil {
				return err
			}
			if asJSON {
				if list == nil {
					list = []detect.Ban{}
				}
				return writeJSON(e.Stdout, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(e.Stdout, "no bans in force")
				return nil
			}
			now := time.Now()
			rows := make([][]string, 0, len(list))
			for _, b := range list {
				state := "active"
				switch {
				case !b.Removed.IsZero():
					state = "lifted by " + strings.TrimPrefix(b.RemovedBy, "user:")
				case !b.Active(now):
					state = "expired"
				}
				rows = append(rows, []string{b.Net.String(), b.Origin, b.Start.Local().Format("2006-01-02 15:04:05"),
					b.Expires.Local().Format("2006-01-02 15:04:05"), state, oneLine(b.Reason)})
			}
			return table(e.Stdout, []string{"NETWORK", "BY", "STARTED", "EXPIRES", "STATE", "REASON"}, rows)
		},
	}
}

// oneLine keeps a reason on its table row (table cleans what is left).
func oneLine(s string) string { return truncateRunes(strings.Join(strings.Fields(s), " "), 100) }

func banAddCommand() *Command {
	var f serverFlags
	var asJSON bool
	var dur time.Duration
	var reason string
	return &Command{
		Name: "add", Summary: "ban an address or network for a while",
		Usage: "bulwark ban add ADDR|CIDR --for DURATION --reason TEXT [--json]",
		Long: `Bans ADDR (one address) or CIDR (a network) for DURATION from now, with a
reason that the next person reading the list will see. Allow-listed
addresses (guard.allow) stay exempt in the guard.`,
		Examples: []string{
			`bulwark ban add 203.0.113.7 --for 24h --reason "credential stuffing on /login"`,
			`bulwark ban add 2001:db8:66::/48 --for 168h --reason "scanner network"`,
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the ban as JSON")
			fs.DurationVar(&dur, "for", 0, "how long the ban lasts, e.g. 30m, 24h (required)")
			fs.StringVar(&reason, "reason", "", "why, in words (required)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("add takes one address or CIDR, got %d arguments", len(args))
			}
			net, err := config.ParseNet(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			if dur <= 0 {
				return usageError("--for DURATION is required and must be positive, e.g. --for 24h")
			}
			if dur > detect.MaxDuration {
				return usageError("--for %s is longer than the limit of %s", dur, detect.MaxDuration)
			}
			if strings.TrimSpace(reason) == "" {
				return usageError("--reason TEXT is required: say why, for whoever reads the list next")
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			ban, err := a.Bans.Add(ctx, detect.Ban{Net: net, Reason: reason, Origin: banActor()}, dur)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, ban)
			}
			fmt.Fprintf(e.Stdout, "banned %s until %s (ban %d)\n", ban.Net, ban.Expires.Local().Format(time.RFC3339), ban.ID)
			return nil
		},
	}
}

func banRemoveCommand() *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name: "remove", Summary: "lift the bans in force on exactly this address or network",
		Usage: "bulwark ban remove ADDR|CIDR [--json]",
		Long: `Lifts the active bans on exactly ADDR or CIDR (a ban of a wider or narrower
network is not touched: list them with 'bulwark ban list'). The decision
stays in the history, marked lifted, with who lifted it. Exit status 1 when
no ban in force matches.`,
		Examples: []string{"bulwark ban remove 203.0.113.7", "bulwark ban remove 2001:db8:66::/48 --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the lifted bans as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("remove takes one address or CIDR, got %d arguments", len(args))
			}
			net, err := config.ParseNet(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			lifted, err := a.Bans.Remove(ctx, net, banActor())
			if errors.Is(err, detect.ErrNotFound) {
				return &ExitError{Code: 1, Err: fmt.Errorf("no ban in force on exactly %s (see 'bulwark ban list')", net)}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, lifted)
			}
			for _, b := range lifted {
				fmt.Fprintf(e.Stdout, "lifted the ban of %s (ban %d: %s)\n", b.Net, b.ID, oneLine(b.Reason))
			}
			return nil
		},
	}
}
