package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/web/statuspage"
)

func statusCommand() *Command {
	return &Command{
		Name:    "status",
		Summary: "the public status pages",
		Usage:   "bulwark status export DIR [FLAGS]",
		Long: `bulwark up serves the status pages at /status without login (status.pages in
the configuration; by default one page of every check) and pushes them to
status.publish's destinations on every change, so they stay up while the
control plane is down (docs/monitor.md).`,
		Subs: []*Command{statusExportCommand()},
	}
}

func statusExportCommand() *Command {
	var f serverFlags
	return &Command{
		Name:    "export",
		Summary: "write the status pages as static files",
		Usage:   "bulwark status export DIR [--data DIR] [--config FILE]",
		Long: `Writes every status page from what the monitor recorded in the data
directory's store: DIR/index.html is the page "main", DIR/NAME/index.html
the others, each with status.json beside it, and DIR/status.css. Links are
relative, so any web server (or an S3 bucket) can serve the tree from any
path. Each file is replaced atomically.`,
		Examples: []string{"bulwark status export /var/www/status", "bulwark status export /mnt/mirror --config /etc/bulwark/bulwark.yaml"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs, false) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usageError("export takes one directory, e.g. bulwark status export /var/www/status")
			}
			a, err := openOffline(ctx, &f, e)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			defer a.Close()
			m, err := a.OpenMonitor(false)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := m.Load(ctx); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			pages, err := statuspage.Pages(ctx, m)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			files, err := statuspage.Files(pages)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := statuspage.Export(args[0], files); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			fmt.Fprintf(e.Stderr, "wrote %d pages (%d files) to %s\n", len(pages), len(files), args[0])
			return nil
		},
	}
}
