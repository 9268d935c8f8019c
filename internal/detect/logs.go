package detect

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect/logparse"
	"github.com/bulwarkhq/bulwark/internal/detect/tail"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// LogFollower tails the configured log files and feeds what their parsers
// recognise to the engine, as signals from the parser's name.
type LogFollower struct {
	logs    []config.DetectLog
	parsers map[string]logparse.Parser
	offsets tail.Offsets
	engine  *Engine
	log     *slog.Logger
	poll    time.Duration
}

// NewLogFollower prepares the followers of cfg.Logs, positions saved in
// db (nil: not saved, for tests). It fails on a parser that does not
// compile.
func NewLogFollower(cfg config.Detect, db *store.DB, engine *Engine, logger *slog.Logger) (*LogFollower, error) {
	f := &LogFollower{logs: cfg.Logs, parsers: map[string]logparse.Parser{}, engine: engine, log: logger, poll: tail.DefaultPoll}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if db != nil {
		f.offsets = tail.NewStoreOffsets(db)
	}
	for i, p := range cfg.Parsers {
		rp, err := logparse.NewRegex(p.Name, p.Pattern, p.Kind)
		if err != nil {
			return nil, fmt.Errorf("detect.parsers[%d]: %w", i, err)
		}
		f.parsers[p.Name] = rp
	}
	for i, l := range cfg.Logs {
		if _, ok := f.parsers[l.Parser]; ok {
			continue
		}
		p, err := logparse.Builtin(l.Parser)
		if err != nil {
			return nil, fmt.Errorf("detect.logs[%d].parser: %w", i, err)
		}
		f.parsers[l.Parser] = p
	}
	return f, nil
}

// Run follows every log until ctx ends. A log that fails (its directory
// missing, say) is retried every ten seconds and reported once per
// failure.
func (f *LogFollower) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range f.logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.follow(ctx, l)
		}()
	}
	wg.Wait()
}

func (f *LogFollower) follow(ctx context.Context, l config.DetectLog) {
	p := f.parsers[l.Parser]
	opt := tail.Options{Path: l.Path, Offsets: f.offsets, Poll: f.poll, StartAtEnd: l.StartAt != "start", Logger: f.log}
	handle := func(line []byte) error {
		e, ok := p.Parse(line, time.Now())
		if !ok {
			return nil
		}
		return f.engine.ObserveWait(ctx, Signal{Time: e.Time, Source: e.Source, From: l.Parser, Kind: e.Kind,
			Status: e.Status, Path: e.Path, User: e.User})
	}
	for {
		err := tail.Follow(ctx, opt, handle)
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("detect: following a log failed; retrying in 10s", "path", l.Path, "parser", l.Parser, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}
