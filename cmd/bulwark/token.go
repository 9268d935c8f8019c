package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/identity"
)

func tokenCommand() *Command {
	return &Command{
		Name:    "token",
		Summary: "create, list and revoke API tokens for scripts and CI",
		Usage:   "bulwark token list|create|revoke [FLAGS]",
		Long: `An API token acts as you, limited to the roles you pick among yours, until it
expires or is revoked. Use it with BULWARK_TOKEN (and BULWARK_SERVER) or as
"Authorization: Bearer TOKEN". Only a password session can create tokens.`,
		Subs: []*Command{tokenListCommand(), tokenCreateCommand(), tokenRevokeCommand()},
	}
}

func tokenListCommand() *Command {
	var f clientFlags
	var all, asJSON bool
	return &Command{
		Name:     "list",
		Summary:  "list your API tokens, or everyone's with --all",
		Usage:    "bulwark token list [--all] [--json]",
		Examples: []string{"bulwark token list", "bulwark token list --all"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&all, "all", false, "every user's tokens (needs access read)")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("token list takes no arguments")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			path := "/api/v1/me/tokens"
			if all {
				path = "/api/v1/tokens"
			}
			var list struct {
				Items []identity.APIToken `json:"items"`
			}
			raw, err := c.call(ctx, http.MethodGet, path, nil, nil, &list)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			now := time.Now()
			var rows [][]string
			for _, t := range list.Items {
				state := "active"
				switch {
				case t.Revoked:
					state = "revoked"
				case !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now):
					state = "expired"
				}
				rows = append(rows, []string{t.ID, t.Username, t.Name, orDash(strings.Join(t.Roles, ",")), state, fmtTime(t.ExpiresAt), fmtTime(t.LastUsedAt)})
			}
			return table(e.Stdout, []string{"ID", "USER", "NAME", "ROLES", "STATE", "EXPIRES", "LAST USED"}, rows)
		},
	}
}

// tokenCreated is POST /api/v1/me/tokens.
type tokenCreated struct {
	Token string            `json:"token"`
	Info  identity.APIToken `json:"info"`
}

func tokenCreateCommand() *Command {
	var f clientFlags
	var roles stringList
	var ttl, expires string
	var asJSON bool
	return &Command{
		Name:    "create",
		Summary: "create an API token; the secret is printed once",
		Usage:   "bulwark token create NAME [--role R]... [--ttl 720h | --expires DATE] [--json]",
		Long: `Without --role the token carries all your current roles. The expiry defaults
to the server's maximum token age. The secret goes to standard output alone on
a line (so 'TOKEN=$(bulwark token create ci)' works); keep it like a password.`,
		Examples: []string{
			"bulwark token create ci-backups --role backup-operators --ttl 720h",
			"export BULWARK_TOKEN=$(bulwark token create nightly --expires 2026-12-31)",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Var(&roles, "role", "limit the token to role `R` (one of yours); repeatable")
			fs.StringVar(&ttl, "ttl", "", "lifetime as a `DURATION` such as 720h")
			fs.StringVar(&expires, "expires", "", "expiry `WHEN`: a date (00:00 UTC) or an RFC 3339 time")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer (it contains the secret)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("token create needs exactly one NAME")
			}
			if ttl != "" && expires != "" {
				return usageError("give --ttl or --expires, not both")
			}
			body := map[string]any{"name": args[0]}
			if len(roles) > 0 {
				body["roles"] = []string(roles)
			}
			if ttl != "" {
				if d, err := time.ParseDuration(ttl); err != nil || d <= 0 {
					return usageError("--ttl %q: give a positive duration such as 720h or 90m", ttl)
				}
				body["ttl"] = ttl
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
			var tc tokenCreated
			raw, err := c.call(ctx, http.MethodPost, "/api/v1/me/tokens", nil, body, &tc)
			if err != nil {
				return fmt.Errorf("create token %s: %w", args[0], err)
			}
			fmt.Fprintf(e.Stderr, "warning: token %s (id %s, roles %s, expires %s) is shown once; store it as a secret now\n",
				clean(tc.Info.Name), clean(tc.Info.ID), clean(orDash(strings.Join(tc.Info.Roles, ","))), fmtTime(tc.Info.ExpiresAt))
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			_, err = fmt.Fprintln(e.Stdout, tc.Token)
			return err
		},
	}
}

func tokenRevokeCommand() *Command {
	var f clientFlags
	var anyUser bool
	return &Command{
		Name:    "revoke",
		Summary: "revoke an API token by ID",
		Usage:   "bulwark token revoke ID [--any]",
		Examples: []string{
			"bulwark token revoke tok_2f8c",
			"bulwark token revoke tok_2f8c --any",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&anyUser, "any", false, "revoke another user's token (needs access write)")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("token revoke needs exactly one ID ('bulwark token list' shows them)")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			path := "/api/v1/me/tokens/" + url.PathEscape(args[0])
			if anyUser {
				path = "/api/v1/tokens/" + url.PathEscape(args[0])
			}
			if _, err := c.call(ctx, http.MethodDelete, path, nil, nil, nil); err != nil {
				return fmt.Errorf("revoke token %s: %w", args[0], err)
			}
			fmt.Fprintf(e.Stdout, "Revoked token %s.\n", clean(args[0]))
			return nil
		},
	}
}
