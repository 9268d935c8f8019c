package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard"
)

// NewGuard builds the guard of a configuration with its access log
// (guard.access_log). The returned closer closes the access log file.
func NewGuard(cfg config.Guard, logger *slog.Logger, stdout io.Writer) (*guard.Guard, io.Closer, error) {
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
	g, err := guard.New(cfg, guard.Options{Logger: logger, AccessLog: w})
	if err != nil {
		closer.Close()
		return nil, nil, err
	}
	return g, closer, nil
}
