package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard"
)

func guardCommand() *Command {
	var configFile, metricsAddr, logFormat, logLevel string
	return &Command{
		Name:    "guard",
		Summary: "run the protecting reverse proxy alone (limits, lists, slow-attack defence)",
		Usage:   "bulwark guard --config FILE [--metrics ADDR]",
		Long: `Runs the guard section of FILE in the foreground until SIGINT or SIGTERM,
then lets requests in progress finish (up to 10 s). 'bulwark up' runs the same
guard next to the control plane when the configuration has guard.sites.
The access log (JSON lines) goes to guard.access_log, stdout by default; this
command's own messages go to stderr. Check a file first with
'bulwark config check FILE'. See docs/guard.md.`,
		Examples: []string{
			"bulwark guard --config /etc/bulwark/guard.yaml",
			"bulwark guard --config guard.yaml --metrics 127.0.0.1:9180",
		},
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&configFile, "config", "", "configuration `FILE` with a guard section (required)")
			fs.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (keep it on loopback)")
			fs.StringVar(&logFormat, "log-format", "", "log format: text or json (default from the configuration)")
			fs.StringVar(&logLevel, "log-level", "", "log level: debug, info, warn or error")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("guard takes no arguments, got %q", args)
			}
			if configFile == "" {
				return usageError("guard needs --config FILE (a configuration with a guard section)")
			}
			cfg, err := config.Load(configFile)
			if err != nil {
				return err
			}
			if !cfg.Guard.Enabled() {
				return fmt.Errorf("%s: no guard.sites: nothing to protect (see docs/guard.md)", configFile)
			}
			logger := app.NewLogger(e.Stderr, cmp.Or(logFormat, cfg.Log.Format), cmp.Or(logLevel, cfg.Log.Level))
			g, closer, err := app.NewGuard(cfg.Guard, guard.Options{Logger: logger}, e.Stdout)
			if err != nil {
				return err
			}
			defer closer.Close()
			if metricsAddr != "" {
				reg := app.NewRegistry(g.Collector())
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return fmt.Errorf("--metrics %s: %w", metricsAddr, err)
				}
				mux := http.NewServeMux()
				mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
				go func() {
					if err := msrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						logger.Error("guard: metrics listener stopped", "error", err)
					}
				}()
				defer msrv.Close()
				logger.Info("guard: metrics", "url", "http://"+ln.Addr().String()+"/metrics")
			}
			return g.Run(ctx, 10*time.Second)
		},
	}
}
