package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	return g, closer, nil
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
