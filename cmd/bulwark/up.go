package main

import (
	"context"
	"flag"

	"github.com/bulwarkhq/bulwark/internal/app"
)

// serverFlags are the flags that locate a server's configuration and data.
type serverFlags struct {
	data, config, listen, logFormat, logLevel string
}

func (f *serverFlags) register(fs *flag.FlagSet, listen bool) {
	fs.StringVar(&f.data, "data", "", "data `DIR` (database, keys, certificates); default $BULWARK_DATA, /var/lib/bulwark as root, else ~/.config/bulwark")
	fs.StringVar(&f.config, "config", "", "configuration `FILE` (default DIR/bulwark.yaml when present)")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json (default from the configuration, text)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn or error")
	if listen {
		fs.StringVar(&f.listen, "listen", "", "HTTPS listen `ADDR` (default 127.0.0.1:8443)")
	}
}

func (f *serverFlags) options(e *Env) app.Options {
	return app.Options{ConfigPath: f.config, DataDir: f.data, Listen: f.listen, LogFormat: f.logFormat, LogLevel: f.logLevel,
		Getenv: e.Getenv, Stderr: e.Stderr, Version: version}
}

func upCommand() *Command {
	var f serverFlags
	return &Command{
		Name:    "up",
		Summary: "run the control plane (API, accounts, audit) until interrupted",
		Usage:   "bulwark up [--data DIR] [--config FILE] [--listen ADDR]",
		Long: `Runs in the foreground until SIGINT or SIGTERM, then shuts down cleanly.
On first start with an empty store it creates the 'admin' account, with the
password from BULWARK_ADMIN_PASSWORD or a generated one printed once. Without
a configured certificate a self-signed one is generated in DIR/tls.`,
		Examples: []string{
			"bulwark up",
			"bulwark up --data /var/lib/bulwark --listen 127.0.0.1:8443",
			"BULWARK_ADMIN_PASSWORD=... bulwark up --data ./data --log-format json",
		},
		Flags: func(fs *flag.FlagSet) { f.register(fs, true) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("up takes no arguments, got %q", args)
			}
			a, err := app.Open(ctx, f.options(e))
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Serve(ctx, app.ServeOptions{Out: e.Stderr, Stdout: e.Stdout})
		},
	}
}
