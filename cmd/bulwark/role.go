package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
)

func roleCommand() *Command {
	return &Command{
		Name:    "role",
		Summary: "list, create, change and delete roles",
		Usage:   "bulwark role list|show|add|set|delete [FLAGS] [NAME]",
		Long: `A role is a named set of grants (see 'bulwark grant'); accounts hold roles.
Built-in roles cannot be changed or deleted. Needs the access module: read to
list and show, write to change.`,
		Subs: []*Command{roleListCommand(), roleShowCommand(), roleAddCommand(), roleSetCommand(), roleDeleteCommand()},
	}
}

func rolePath(name string) string { return "/api/v1/roles/" + url.PathEscape(name) }

func roleListCommand() *Command {
	var f clientFlags
	var asJSON bool
	return &Command{
		Name:     "list",
		Summary:  "list roles with their number of grants",
		Usage:    "bulwark role list [--json]",
		Examples: []string{"bulwark role list", "bulwark role list --json | jq '.items[] | {name, grants}'"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("role list takes no arguments")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var list struct {
				Items []access.Role `json:"items"`
			}
			raw, err := c.call(ctx, http.MethodGet, "/api/v1/roles", nil, nil, &list)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			var rows [][]string
			for _, r := range list.Items {
				rows = append(rows, []string{r.Name, yesNo(r.Builtin, "yes", "no"), yesNo(r.Require2FA, "yes", "no"), strconv.Itoa(len(r.Grants)), truncateRunes(r.Description, 60)})
			}
			return table(e.Stdout, []string{"NAME", "BUILTIN", "2FA", "GRANTS", "DESCRIPTION"}, rows)
		},
	}
}

func showRole(e *Env, r access.Role) error {
	fmt.Fprintf(e.Stdout, "name:          %s\n", clean(r.Name))
	fmt.Fprintf(e.Stdout, "description:   %s\n", clean(orDash(r.Description)))
	fmt.Fprintf(e.Stdout, "built-in:      %s\n", yesNo(r.Builtin, "yes", "no"))
	fmt.Fprintf(e.Stdout, "requires 2FA:  %s\n\n", yesNo(r.Require2FA, "yes", "no"))
	return grantTable(e, r.Grants, false)
}

func roleShowCommand() *Command {
	var f clientFlags
	var asJSON bool
	return &Command{
		Name:     "show",
		Summary:  "show a role and its grants",
		Usage:    "bulwark role show NAME [--json]",
		Examples: []string{"bulwark role show operator"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("role show needs exactly one NAME")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var r access.Role
			raw, err := c.call(ctx, http.MethodGet, rolePath(args[0]), nil, nil, &r)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			return showRole(e, r)
		},
	}
}

func roleAddCommand() *Command {
	var f clientFlags
	var description string
	var require2FA, asJSON bool
	return &Command{
		Name:    "add",
		Summary: "create a role without grants (add them with 'bulwark grant add')",
		Usage:   "bulwark role add NAME [--description TEXT] [--require-2fa] [--json]",
		Examples: []string{
			"bulwark role add backup-operators --description 'run and restore backups' --require-2fa",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&description, "description", "", "what the role is for, as `TEXT`")
			fs.BoolVar(&require2FA, "require-2fa", false, "accounts holding the role must have a second factor")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("role add needs exactly one NAME")
			}
			if !access.ValidRoleName(args[0]) {
				return usageError("role name %q: use 1-63 characters, a lowercase letter first, then lowercase letters, digits, '_' or '-'", args[0])
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var r access.Role
			raw, err := c.call(ctx, http.MethodPost, "/api/v1/roles", nil,
				map[string]any{"name": args[0], "description": description, "require_2fa": require2FA}, &r)
			if err != nil {
				return fmt.Errorf("create role %s: %w", args[0], err)
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			fmt.Fprintf(e.Stdout, "Created role %s; give it grants with 'bulwark grant add %s MODULE LEVEL'.\n", clean(r.Name), clean(r.Name))
			return nil
		},
	}
}

func roleSetCommand() *Command {
	var f clientFlags
	var description string
	var require2FA, asJSON bool
	return &Command{
		Name:    "set",
		Summary: "change a role's description or 2FA requirement",
		Usage:   "bulwark role set NAME [--description TEXT] [--require-2fa=true|false] [--json]",
		Examples: []string{
			"bulwark role set operators --require-2fa=true",
			"bulwark role set operators --description 'day-to-day operations'",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&description, "description", "", "new description `TEXT`")
			fs.BoolVar(&require2FA, "require-2fa", false, "require a second factor of holders (--require-2fa=false lifts it)")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("role set needs exactly one NAME")
			}
			patch := map[string]any{}
			if flagSet(fs, "description") {
				patch["description"] = description
			}
			if flagSet(fs, "require-2fa") {
				patch["require_2fa"] = require2FA
			}
			if len(patch) == 0 {
				return usageError("nothing to change: give --description or --require-2fa=true|false")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var r access.Role
			raw, err := c.call(ctx, http.MethodPatch, rolePath(args[0]), nil, patch, &r)
			if err != nil {
				return fmt.Errorf("change role %s: %w", args[0], err)
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			fmt.Fprintf(e.Stdout, "Updated role %s.\n", clean(r.Name))
			return showRole(e, r)
		},
	}
}

func roleDeleteCommand() *Command {
	var f clientFlags
	var yes bool
	return &Command{
		Name:     "delete",
		Summary:  "delete a role; accounts holding it lose it",
		Usage:    "bulwark role delete NAME [--yes]",
		Long:     "Asks for confirmation on a terminal; elsewhere --yes is required.",
		Examples: []string{"bulwark role delete contractors --yes"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("role delete needs exactly one NAME")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			if err := confirm(ctx, e, yes, "delete role "+clean(args[0])+" and remove it from every account"); err != nil {
				return err
			}
			if _, err := c.call(ctx, http.MethodDelete, rolePath(args[0]), nil, nil, nil); err != nil {
				return fmt.Errorf("delete role %s: %w", args[0], err)
			}
			fmt.Fprintf(e.Stdout, "Deleted role %s.\n", clean(args[0]))
			return nil
		},
	}
}

func grantCommand() *Command {
	return &Command{
		Name:    "grant",
		Summary: "add, list and remove the grants of a role",
		Usage:   "bulwark grant add|list|remove ROLE ...",
		Long: `A grant allows (or, with --deny, forbids) a LEVEL on a MODULE:
  modules: backups, continuity, guard, integrity, monitoring, posture, access, audit, billing, or * for all
  levels:  read < operate < write; an allow includes the lower levels, a deny forbids the level and above
A --scope limits the grant to resources whose tags match: comma-separated terms
that must all hold, each key=value, key!=value, key (has the tag) or !key
(lacks it), e.g. 'team=blue,env!=prod'. An explicit deny always beats an allow.`,
		Subs: []*Command{grantAddCommand(), grantListCommand(), grantRemoveCommand()},
	}
}

func grantAddCommand() *Command {
	var f clientFlags
	var deny, asJSON bool
	var scope, expires string
	return &Command{
		Name:    "add",
		Summary: "add a grant to a role",
		Usage:   "bulwark grant add ROLE MODULE LEVEL [--deny] [--scope SELECTOR] [--expires 2026-12-31|72h] [--json]",
		Examples: []string{
			"bulwark grant add operators backups operate --scope 'team=blue,env!=prod'",
			"bulwark grant add contractors '*' read --expires 720h",
			"bulwark grant add support billing read --deny",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&deny, "deny", false, "forbid instead of allow")
			fs.StringVar(&scope, "scope", "", "limit to resources whose tags match `SELECTOR` (team=blue,env!=prod; see 'bulwark grant --help')")
			fs.StringVar(&expires, "expires", "", "the grant stops counting at `WHEN`: a date (00:00 UTC), RFC 3339 time or duration from now")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 3 {
				return usageError("grant add needs ROLE MODULE LEVEL, e.g. 'grant add operators backups operate'")
			}
			role := args[0]
			if _, err := access.ParseModule(args[1]); err != nil {
				return usageError("%v", err)
			}
			if _, err := access.ParseLevel(args[2]); err != nil {
				return usageError("%v", err)
			}
			body := map[string]any{"module": args[1], "level": args[2], "effect": "allow"}
			if deny {
				body["effect"] = "deny"
			}
			if scope != "" {
				if _, err := access.ParseSelector(scope); err != nil {
					return usageError("--scope %q: %v", scope, err)
				}
				body["scope"] = scope
			}
			if expires != "" {
				t, err := parseExpiry(expires, time.Now())
				if err != nil {
					return usageError("--expires: %v", err)
				}
				body["expires_at"] = t
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var g access.Grant
			raw, err := c.call(ctx, http.MethodPost, rolePath(role)+"/grants", nil, body, &g)
			if err != nil {
				return fmt.Errorf("add grant to role %s: %w", role, err)
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			fmt.Fprintf(e.Stdout, "Added grant %d to role %s: %s\n", g.ID, clean(role), clean(g.String()))
			return nil
		},
	}
}

func grantListCommand() *Command {
	var f clientFlags
	var asJSON bool
	return &Command{
		Name:     "list",
		Summary:  "list a role's grants",
		Usage:    "bulwark grant list ROLE [--json]",
		Examples: []string{"bulwark grant list operators"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print the grants as JSON ({\"items\": [...]})")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("grant list needs exactly one ROLE")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var r struct {
				Grants []json.RawMessage `json:"grants"`
			}
			raw, err := c.call(ctx, http.MethodGet, rolePath(args[0]), nil, nil, &r)
			if err != nil {
				return err
			}
			if asJSON {
				return printItems(e.Stdout, r.Grants)
			}
			var role access.Role
			if err := json.Unmarshal(raw, &role); err != nil {
				return fmt.Errorf("unexpected role in the answer: %w", err)
			}
			return grantTable(e, role.Grants, false)
		},
	}
}

func grantRemoveCommand() *Command {
	var f clientFlags
	return &Command{
		Name:     "remove",
		Summary:  "remove a grant from a role, by the ID 'grant list' shows",
		Usage:    "bulwark grant remove ROLE ID",
		Examples: []string{"bulwark grant remove operators 12"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 2 {
				return usageError("grant remove needs ROLE ID")
			}
			if id, err := strconv.ParseInt(args[1], 10, 64); err != nil || id <= 0 {
				return usageError("grant ID %q: give the number 'bulwark grant list %s' shows", args[1], args[0])
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			if _, err := c.call(ctx, http.MethodDelete, rolePath(args[0])+"/grants/"+args[1], nil, nil, nil); err != nil {
				return fmt.Errorf("remove grant %s from role %s: %w", args[1], args[0], err)
			}
			fmt.Fprintf(e.Stdout, "Removed grant %s from role %s.\n", args[1], clean(args[0]))
			return nil
		},
	}
}
