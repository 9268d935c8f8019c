package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/identity"
)

// recoverCommand holds break-glass operations that work on the store
// directly (--data DIR, or the configuration's PostgreSQL DSN), for when no
// administrator can sign in: the only admin locked out by a password
// guesser, or its password lost. Whoever can run them already holds the
// data directory; each use is audited.
func recoverCommand() *Command {
	return &Command{
		Name:    "recover",
		Summary: "break-glass account recovery on the server's store (no API needed)",
		Usage:   "bulwark recover unlock|password --data DIR USER",
		Subs:    []*Command{recoverUnlockCommand(), recoverPasswordCommand()},
	}
}

func recoverUnlockCommand() *Command {
	var f serverFlags
	return &Command{
		Name:     "unlock",
		Summary:  "lift a user's lockout and clear its failed-login counters",
		Usage:    "bulwark recover unlock --data DIR USER",
		Examples: []string{"bulwark recover unlock --data /var/lib/bulwark admin"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs, false) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("recover unlock needs exactly one USER")
			}
			a, err := openOffline(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.Identity.Unlock(ctx, args[0]); err != nil {
				return err
			}
			if _, err := a.Audit.Append(ctx, audit.Entry{Actor: cliActor(), Action: "user.unlock", Resource: "user/" + args[0], Result: "ok",
				Details: map[string]any{"offline": true}}); err != nil {
				return fmt.Errorf("record unlock: %w", err)
			}
			fmt.Fprintf(e.Stdout, "Unlocked %s.\n", args[0])
			return nil
		},
	}
}

func recoverPasswordCommand() *Command {
	var f serverFlags
	var fromStdin bool
	return &Command{
		Name:    "password",
		Summary: "set a new password for a user (generated unless --password-stdin); ends its sessions and tokens",
		Usage:   "bulwark recover password --data DIR USER [--password-stdin]",
		Examples: []string{
			"bulwark recover password --data /var/lib/bulwark admin",
			"printf '%s\\n' \"$NEWPW\" | bulwark recover password --data ./data admin --password-stdin",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.BoolVar(&fromStdin, "password-stdin", false, "read the new password from the first line of standard input")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("recover password needs exactly one USER")
			}
			pw := ""
			if fromStdin {
				s, err := newLineReader(e).secret(ctx, "")
				if err != nil {
					return err
				}
				pw = s
			} else {
				g, err := identity.GeneratePassword(rand.Reader)
				if err != nil {
					return err
				}
				pw = g
			}
			a, err := openOffline(ctx, &f, e)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.Identity.SetPassword(ctx, args[0], pw); err != nil {
				return err
			}
			if err := a.Identity.Unlock(ctx, args[0]); err != nil {
				return err
			}
			if _, err := a.Audit.Append(ctx, audit.Entry{Actor: cliActor(), Action: "user.password", Resource: "user/" + args[0], Result: "ok",
				Details: map[string]any{"offline": true, "generated": !fromStdin}}); err != nil {
				return fmt.Errorf("record password reset: %w", err)
			}
			if fromStdin {
				fmt.Fprintf(e.Stdout, "Password of %s set; its sessions and API tokens ended.\n", args[0])
			} else {
				fmt.Fprintf(e.Stdout, "New password of %s (shown once): %s\nIts sessions and API tokens ended.\n", args[0], pw)
			}
			return nil
		},
	}
}
