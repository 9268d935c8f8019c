package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard"
)

// NewGuard builds the guard of a configuration with its access log
// (guard.access_log; "stdout" is stdout) and the options given. The
// returned closer closes the access log file.
func NewGuard(cfg config.Guard, opt guard.Options, stdout io.Writer) (*guard.Guard, io.Closer, error) {
	var w io.Writer
	var closer io.Closer = io.NopCloser(nil)
	switch cfg.AccessLog {
	case "off":
	case "stdout", "":
		w = stdout
	default:
		f, err := os.OpenFile(cfg.AccessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("guard.access_log: %w", err)
		}
		w, closer = f, f
	}
	opt.AccessLog = w
	g, err := guard.New(cfg, opt)
	if err != nil {
		closer.Close()
		return nil, nil, err
	}
	raiseGCForWAF(cfg)
	return g, closer, nil
}

// wafGCPercent is the collector's target (GOGC) of a process whose guard
// inspects requests. Coraza makes about 250 KB of garbage per inspected
// request around a live heap of a few tens of MB, so at Go's default of
// 100 the collector runs dozens of times a second and takes about a
// tenth of the CPU (internal/guard/waf). Twice the headroom halves that.
// Measured with scripts/bench-guard.sh (wrk -c50, CRS at paranoia 1, GET +
// small POST): 2,043 requests/s at 100 (peak RSS 93 MiB), 2,169 at 200
// (114 MiB), 2,349 at 400 (166 MiB), in runs where the naive wrapper made
// 1,073, 933 and 815. 200 buys most of it for 21 MiB.
const wafGCPercent = 200

// raiseGCForWAF sets the collector's target to wafGCPercent when a site
// inspects requests (waf: detect or block), unless GOGC is set or the
// target is higher already.
func raiseGCForWAF(cfg config.Guard) {
	if os.Getenv("GOGC") != "" {
		return
	}
	for _, s := range cfg.Sites {
		if s.Inspects() {
			if old := debug.SetGCPercent(wafGCPercent); old > wafGCPercent || old < 0 {
				debug.SetGCPercent(old)
			}
			return
		}
	}
}

// refreshEvery calls refresh every interval until ctx ends: the bans and
// the guard's runtime rules are reloaded so that changes made by another
// process sharing the store (the ban command, another replica) are
// enforced within that time.
func refreshEvery(ctx context.Context, interval time.Duration, logger *slog.Logger, what string, refresh func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := refresh(ctx); err != nil && ctx.Err() == nil {
				logger.Warn(what, "err", err)
			}
		}
	}
}
