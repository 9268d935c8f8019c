package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/notify"
)

func alertCommand() *Command {
	return &Command{
		Name:    "alert",
		Summary: "alerts and their notification channels",
		Usage:   "bulwark alert test CHANNEL [FLAGS]",
		Long: `Alert rules (alerts.rules) fire on checks and host metrics inside bulwark up and
notify the channels of alerts.channels: email over SMTP, webhooks signed with
HMAC-SHA-256, Slack or Mattermost (docs/monitor.md). Acknowledge alerts and
add silences through the API (/api/v1/monitor/alerts/ack, /silences).`,
		Subs: []*Command{alertTestCommand()},
	}
}

func alertTestCommand() *Command {
	var f serverFlags
	var attempts int
	var asJSON bool
	return &Command{
		Name:    "test",
		Summary: "send a test notification to a channel and say whether it arrived",
		Usage:   "bulwark alert test CHANNEL [--config FILE] [--attempts N] [--json]",
		Long: `Sends a test message (state "test") to CHANNEL of alerts.channels, the way
alerts are sent: the same sender, the channel's secrets resolved from the
environment or files, every attempt recorded in the data directory's store
(where bulwark up keeps the channel's last successful delivery, the evidence
that alerts reach people). --attempts retries a failed attempt with back-off
(default 1: say at once when it fails). Exit status 0 when delivered, 1 when
not, 2 on errors (no such channel, a bad configuration).`,
		Examples: []string{"bulwark alert test oncall-mail --config /etc/bulwark/bulwark.yaml", "bulwark alert test hook --attempts 3"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.IntVar(&attempts, "attempts", 1, "try at most `N` times, with back-off")
			fs.BoolVar(&asJSON, "json", false, "print the attempts as JSON")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("name one channel, e.g. bulwark alert test oncall-mail")
			}
			if attempts < 1 || attempts > notify.MaxAttemptsLimit {
				return usageError("--attempts must be between 1 and %d", notify.MaxAttemptsLimit)
			}
			name := args[0]
			cfg, path, _, err := app.LoadConfig(f.options(e))
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			i := slices.IndexFunc(cfg.Alerts.Channels, func(c config.Channel) bool { return c.Name == name })
			if i < 0 {
				names := make([]string, len(cfg.Alerts.Channels))
				for j, c := range cfg.Alerts.Channels {
					names[j] = c.Name
				}
				where := path
				if where == "" {
					where = "the built-in default configuration"
				}
				if len(names) == 0 {
					return &ExitError{Code: 2, Err: fmt.Errorf("%s has no alerts.channels; add one (docs/monitor.md)", where)}
				}
				return &ExitError{Code: 2, Err: fmt.Errorf("no channel %q in %s (configured: %s)", name, where, strings.Join(names, ", "))}
			}
			chs, err := notify.Channels(cfg.Alerts.Channels[i:i+1], e.Getenv, os.ReadFile)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			o := f.options(e)
			o.LogLevel = "error"
			a, err := app.Open(ctx, o)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			defer a.Close()
			n, err := notify.NewNotifier(a.DB, chs, notify.Options{Bus: a.Events, Logger: a.Logger, MaxAttempts: attempts})
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			start := time.Now()
			sendErr := n.Test(ctx, name)
			list, err := n.Attempts(ctx, notify.AttemptFilter{Channel: name, Since: start.Add(-time.Second)})
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(e.Stdout, list); err != nil {
					return err
				}
			} else {
				for i := len(list) - 1; i >= 0; i-- {
					at := list[i]
					res := "ok"
					if !at.OK {
						res = "failed: " + at.Error
					}
					fmt.Fprintf(e.Stdout, "attempt %d to %s (%s): %s, %s\n", at.Attempt, at.Channel, at.Kind, res, at.Duration.Round(time.Millisecond))
				}
			}
			if sendErr != nil {
				if errors.Is(sendErr, notify.ErrNotDelivered) {
					return &ExitError{Code: 1, Err: sendErr}
				}
				return &ExitError{Code: 2, Err: sendErr}
			}
			fmt.Fprintf(e.Stderr, "test notification delivered to %s in %s\n", name, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}
