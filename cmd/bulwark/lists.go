package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
)

// The guard's runtime rules: allow and deny list entries and bandwidth
// (shaping) rules. Like the ban commands they work on the data directory's
// store; a running `bulwark up` applies a change within five seconds, and
// every change is an event and an audit entry naming the person.

func listCommand(list string) *Command {
	what := map[string]string{
		rules.Allow: "allow-listed sources skip every limit, ban and the deny list",
		rules.Deny:  "deny-listed sources are refused at accept and on every request",
	}[list]
	return &Command{
		Name:    list,
		Summary: fmt.Sprintf("list, add and remove the guard's %s-list entries added at run time", list),
		Usage:   fmt.Sprintf("bulwark %s list|add|remove [FLAGS]", list),
		Long: fmt.Sprintf(`The guard's %s list is the config's guard.%s plus the entries added with
these commands or the API (POST /api/v1/guard/lists); %s.
A running 'bulwark up' picks up a change within five seconds.`, list, list, what),
		Subs: []*Command{listListCommand(list), listAddCommand(list), listRemoveCommand(list)},
	}
}

func listListCommand(list string) *Command {
	var f serverFlags
	var asJSON, expired bool
	return &Command{
		Name: "list", Summary: fmt.Sprintf("list the %s-list entries added at run time", list),
		Usage:    fmt.Sprintf("bulwark %s list [--expired] [--json]", list),
		Examples: []string{fmt.Sprintf("bulwark %s list", list), fmt.Sprintf("bulwark %s list --json", list)},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.BoolVar(&expired, "expired", false, "include entries past their expiry")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("list takes no arguments, got %q", args)
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			out, err := a.Rules.Entries(ctx, list, expired)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, out)
			}
			static := a.Config.Guard.Allow
			if list == rules.Deny {
				static = a.Config.Guard.Deny
			}
			defer printStatic(e, list, static)
			if len(out) == 0 {
				fmt.Fprintf(e.Stdout, "no %s-list entries added at run time\n", list)
				return nil
			}
			now := time.Now()
			rows := make([][]string, 0, len(out))
			for _, en := range out {
				expires := "never"
				if !en.Expires.IsZero() {
					expires = en.Expires.Local().Format("2006-01-02 15:04:05")
					if !en.Active(now) {
						expires += " (expired)"
					}
				}
				rows = append(rows, []string{en.Net.String(), en.Origin, en.Created.Local().Format("2006-01-02 15:04:05"), expires, oneLine(en.Reason)})
			}
			return table(e.Stdout, []string{"NETWORK", "BY", "ADDED", "EXPIRES", "REASON"}, rows)
		},
	}
}

// printStatic mentions the config's own entries, which the store does
// not hold.
func printStatic(e *Env, list string, static []string) {
	if len(static) > 0 {
		fmt.Fprintf(e.Stdout, "(and %d entries in the config's guard.%s)\n", len(static), list)
	}
}

func listAddCommand(list string) *Command {
	var f serverFlags
	var asJSON bool
	var dur time.Duration
	var reason string
	return &Command{
		Name: "add", Summary: fmt.Sprintf("add an address or network to the %s list", list),
		Usage: fmt.Sprintf("bulwark %s add ADDR|CIDR --reason TEXT [--for DURATION] [--json]", list),
		Long: fmt.Sprintf(`Adds ADDR (one address) or CIDR (a network) to the %s list, until removed
or, with --for, for DURATION from now. An entry for the same network is
replaced.`, list),
		Examples: []string{
			fmt.Sprintf(`bulwark %s add 198.51.100.0/24 --reason "office network"`, list),
			fmt.Sprintf(`bulwark %s add 2001:db8:7::/48 --for 72h --reason "partner's load test"`, list),
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the entry as JSON")
			fs.DurationVar(&dur, "for", 0, "how long the entry lasts, e.g. 24h (default: until removed)")
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
			if dur < 0 || dur > rules.MaxDuration {
				return usageError("--for %s: must be positive and at most %s (leave it out for an entry until removed)", dur, rules.MaxDuration)
			}
			if strings.TrimSpace(reason) == "" {
				return usageError("--reason TEXT is required: say why, for whoever reads the list next")
			}
			if len(reason) > rules.MaxReasonBytes {
				return usageError("--reason is %d bytes, the limit is %d", len(reason), rules.MaxReasonBytes)
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			en, err := a.Rules.AddEntry(ctx, rules.Entry{List: list, Net: net, Reason: reason, Origin: banActor()}, dur)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, en)
			}
			until := "until removed"
			if !en.Expires.IsZero() {
				until = "until " + en.Expires.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(e.Stdout, "added %s to the %s list %s\n", en.Net, list, until)
			return nil
		},
	}
}

func listRemoveCommand(list string) *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name: "remove", Summary: fmt.Sprintf("remove exactly this address or network from the %s list", list),
		Usage: fmt.Sprintf("bulwark %s remove ADDR|CIDR [--json]", list),
		Long: `Removes the runtime entry for exactly ADDR or CIDR (wider or narrower
entries are not touched; the config's entries cannot be removed here).
Exit status 1 when there is no such entry.`,
		Examples: []string{fmt.Sprintf("bulwark %s remove 198.51.100.0/24", list)},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the removed entry as JSON")
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
			en, err := a.Rules.RemoveEntry(ctx, list, net, banActor())
			if errors.Is(err, rules.ErrNotFound) {
				return &ExitError{Code: 1, Err: fmt.Errorf("no runtime %s-list entry for exactly %s (see 'bulwark %s list')", list, net, list)}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, en)
			}
			fmt.Fprintf(e.Stdout, "removed %s from the %s list\n", en.Net, list)
			return nil
		},
	}
}

func shapeCommand() *Command {
	return &Command{
		Name:    "shape",
		Summary: "list, set and remove bandwidth rules (traffic shaping) at run time",
		Usage:   "bulwark shape list|set|remove [FLAGS]",
		Long: `A bandwidth rule caps the bytes per second the guard sends, all matching
responses together: to a client (--net networks and/or --account names, as
the upstream names them in the site's account header) or, with neither, to
whole sites. A client rule replaces the config's client_bandwidth for that
client; a site rule replaces the site's bandwidth. Responses in progress
follow a change at once; a running 'bulwark up' picks it up within five
seconds. docs/guard.md#shaping has the details.`,
		Subs: []*Command{shapeListCommand(), shapeSetCommand(), shapeRemoveCommand()},
	}
}

func shapeListCommand() *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name: "list", Summary: "list the bandwidth rules",
		Usage:    "bulwark shape list [--json]",
		Examples: []string{"bulwark shape list", "bulwark shape list --json"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("list takes no arguments, got %q", args)
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			out := a.Rules.Shapes()
			if asJSON {
				return writeJSON(e.Stdout, out)
			}
			if len(out) == 0 {
				fmt.Fprintln(e.Stdout, "no bandwidth rules")
				return nil
			}
			rows := make([][]string, 0, len(out))
			for _, s := range out {
				sites := "all"
				if len(s.Sites) > 0 {
					sites = strings.Join(s.Sites, ",")
				}
				who := "whole site"
				if !s.SiteWide() {
					var parts []string
					for _, p := range s.Nets {
						parts = append(parts, p.String())
					}
					parts = append(parts, s.Accounts...)
					who = truncateRunes(strings.Join(parts, ","), 60)
				}
				rows = append(rows, []string{s.Name, config.Size(s.Bandwidth).String() + "/s", sites, who, s.Origin, oneLine(s.Reason)})
			}
			return table(e.Stdout, []string{"NAME", "CAP", "SITES", "CLIENT", "BY", "REASON"}, rows)
		},
	}
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func shapeSetCommand() *Command {
	var f serverFlags
	var asJSON bool
	var sites, nets, accounts multiFlag
	var bw config.Size
	var reason string
	return &Command{
		Name: "set", Summary: "create or replace a bandwidth rule",
		Usage: "bulwark shape set NAME --bandwidth SIZE [--site HOST]... [--net ADDR|CIDR]... [--account NAME]... [--reason TEXT] [--json]",
		Long: `Creates the rule NAME, or replaces it whole (give every field again).
--bandwidth is per second, such as 512KiB or 10MiB. --site names a host of a
configured site (repeat for several; none: every site). --net and --account
say whose responses are capped; with neither, the rule caps its sites as a
whole.`,
		Examples: []string{
			`bulwark shape set office --net 198.51.100.0/24 --net 2001:db8:7::/48 --bandwidth 5MiB --reason "contract: 40 Mbit/s"`,
			`bulwark shape set reseller-42 --account acme --site shop.example --bandwidth 2MiB`,
			`bulwark shape set shop-cap --site shop.example --bandwidth 50MiB --reason "upstream link"`,
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the rule as JSON")
			fs.Var(&sites, "site", "a `HOST` of the site the rule applies to (repeatable; none: every site)")
			fs.Var(&nets, "net", "an `ADDR|CIDR` of the client (repeatable)")
			fs.Var(&accounts, "account", "an account `NAME` of the client (repeatable)")
			fs.TextVar(&bw, "bandwidth", config.Size(0), "the cap per second, such as 10MiB (required)")
			fs.StringVar(&reason, "reason", "", "why, in words")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("set takes the rule's NAME, got %d arguments", len(args))
			}
			s := rules.Shape{Name: args[0], Sites: sites, Accounts: accounts, Bandwidth: bw.Bytes(), Reason: reason, Origin: banActor()}
			for _, n := range nets {
				p, err := config.ParseNet(n)
				if err != nil {
					return usageError("--net: %v", err)
				}
				s.Nets = append(s.Nets, p)
			}
			if err := rules.CheckShape(s); err != nil {
				return usageError("%v", err)
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := checkShapeSites(a.Config.Guard, s.Sites); err != nil {
				return usageError("%v", err)
			}
			stored, created, err := a.Rules.PutShape(ctx, s)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, stored)
			}
			verb := "replaced"
			if created {
				verb = "created"
			}
			fmt.Fprintf(e.Stdout, "%s bandwidth rule %s: %s/s\n", verb, stored.Name, config.Size(stored.Bandwidth))
			return nil
		},
	}
}

// checkShapeSites refuses host names no configured site answers.
func checkShapeSites(g config.Guard, sites []string) error {
	for _, h := range sites {
		if !g.HasHost(h) {
			return fmt.Errorf("--site %q: no site in the config answers this host (guard.sites[].hosts)", h)
		}
	}
	return nil
}

func shapeRemoveCommand() *Command {
	var f serverFlags
	var asJSON bool
	return &Command{
		Name: "remove", Summary: "remove a bandwidth rule",
		Usage:    "bulwark shape remove NAME [--json]",
		Long:     `Removes the rule NAME; what it matched falls back to the config's caps. Exit status 1 when there is no such rule.`,
		Examples: []string{"bulwark shape remove office"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the removed rule as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("remove takes the rule's NAME, got %d arguments", len(args))
			}
			a, err := openLocal(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			s, err := a.Rules.RemoveShape(ctx, args[0], banActor())
			if errors.Is(err, rules.ErrNotFound) {
				return &ExitError{Code: 1, Err: fmt.Errorf("no bandwidth rule named %q (see 'bulwark shape list')", args[0])}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, s)
			}
			fmt.Fprintf(e.Stdout, "removed bandwidth rule %s\n", s.Name)
			return nil
		},
	}
}
