package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/config"
)

func configCommand() *Command {
	return &Command{
		Name:    "config",
		Summary: "check or show configuration files",
		Usage:   "bulwark config check FILE",
		Subs:    []*Command{configCheckCommand(), configDefaultsCommand()},
	}
}

func configCheckCommand() *Command {
	var asJSON bool
	return &Command{
		Name:    "check",
		Summary: "validate a configuration file; errors name the line and field",
		Usage:   "bulwark config check [--json] FILE",
		Long:    "Exit status 0 when the file is valid, 1 when it has errors (all are listed), 2 when it cannot be read.",
		Examples: []string{
			"bulwark config check /etc/bulwark/bulwark.yaml",
			"bulwark config check --json bulwark.yaml | jq .errors",
		},
		Flags: func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print the result as JSON") },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("config check needs exactly one FILE")
			}
			cfg, err := config.Load(args[0])
			var errs config.Errors
			if err != nil && !asErrors(err, &errs) {
				return &ExitError{Code: 2, Err: err}
			}
			if asJSON {
				out := map[string]any{"file": args[0], "valid": err == nil, "errors": []*config.FieldError(errs), "literal_secrets": cfg.LiteralSecrets()}
				if errs == nil {
					out["errors"] = []any{}
				}
				if jerr := json.NewEncoder(e.Stdout).Encode(out); jerr != nil {
					return jerr
				}
				if err != nil {
					return &ExitError{Code: 1}
				}
				return nil
			}
			if err != nil {
				fmt.Fprintln(e.Stderr, err)
				return &ExitError{Code: 1, Err: fmt.Errorf("%s: %d error(s)", args[0], len(errs))}
			}
			for _, f := range cfg.LiteralSecrets() {
				fmt.Fprintf(e.Stderr, "warning: %s: %s is written in the file; prefer {env: NAME} or {file: PATH}\n", args[0], f)
			}
			fmt.Fprintf(e.Stdout, "%s: ok\n", args[0])
			return nil
		},
	}
}

func asErrors(err error, out *config.Errors) bool {
	for err != nil {
		if es, ok := err.(config.Errors); ok {
			*out = es
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func configDefaultsCommand() *Command {
	return &Command{
		Name:     "defaults",
		Summary:  "print the built-in defaults as JSON",
		Usage:    "bulwark config defaults",
		Examples: []string{"bulwark config defaults"},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			enc := json.NewEncoder(e.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(config.Default())
		},
	}
}
