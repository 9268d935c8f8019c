// Package app is Bulwark's composition root: it reads the configuration,
// opens and migrates the store, builds every capability and wires them
// together (events to the audit log, the API over them), then serves. It is
// the only package besides cmd that knows all the others; the capabilities
// themselves know only what they consume.
package app

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/detect/tail"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Migrations lists every capability's schema in dependency order.
func Migrations() []store.Migrations {
	return []store.Migrations{identity.Migrations, access.Migrations, audit.Migrations, events.Migrations, continuity.Migrations, detect.Migrations, rules.Migrations, monitor.Migrations, notify.Migrations}
}

// Options locate the configuration and data.
type Options struct {
	// ConfigPath is --config; empty means DATA/bulwark.yaml when present.
	ConfigPath string
	// DataDir is --data; it overrides the file's data_dir.
	DataDir string
	// Listen is --listen; it overrides the file's listen.
	Listen string
	// LogFormat and LogLevel override the file's log settings when set.
	LogFormat, LogLevel string
	// MustExist refuses to create a new database (for offline commands such
	// as `audit verify`, which must not invent an empty log).
	MustExist bool
	Getenv    func(string) string
	Stderr    io.Writer
	Now       func() time.Time
	Version   string
	// FirewallNetNS is a network namespace's file descriptor for the
	// firewall to work in (tests); 0: this process's namespace.
	FirewallNetNS int
}

// App holds the opened capabilities.
type App struct {
	Config     config.Config
	ConfigFile string
	DataDir    string
	Logger     *slog.Logger
	DB         *store.DB
	Access     *access.Store
	Identity   *identity.Service
	Audit      *audit.Log
	AuditKey   ed25519.PrivateKey
	Events     *events.Bus
	WebAuthn   *identity.WebAuthn
	// Continuity runs the backup policies of the configuration, and
	// Scheduler runs them on their schedules inside Serve (and starts
	// them on demand for the API).
	Continuity *continuity.Service
	Scheduler  *continuity.Scheduler
	// Bans are the ban decisions the guard (and the firewall) enforce.
	Bans *detect.Bans
	// Rules are the guard's list entries and shaping rules added at run
	// time.
	Rules *rules.Rules
	// Integrity watches the system's files inside Serve
	// (integrity.enabled).
	Integrity *integrity.Service
	// Notifier delivers notifications and Monitor runs supervision; both
	// are built by OpenMonitor (Serve, `bulwark alert test`), because
	// they resolve the channels' secrets.
	Notifier *notify.Notifier
	Monitor  *monitor.Service
	netns    int // network namespace of the firewall (tests); 0: this one
	now      func() time.Time
	getenv   func(string) string
	stderr   io.Writer
	version  string

	// protection is the edge's enforcement, for the report (report.go).
	protection protectionState
	// reportCache is the API's last report (report.go).
	reportCache reportCache
	// guardMetrics is the guard's collector alone (serve.go).
	guardMetrics     *prometheus.Registry
	guardMetricsOnce sync.Once
}

// DefaultDataDir is used when neither --data nor data_dir is given.
func DefaultDataDir() string {
	if d := os.Getenv("BULWARK_DATA"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/bulwark"
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "bulwark")
	}
	return "bulwark-data"
}

// LoadConfig finds and validates the configuration as Open would.
func LoadConfig(o Options) (config.Config, string, string, error) {
	dataDir := o.DataDir
	cfg, path, err := config.Discover(o.ConfigPath, firstNonEmpty(dataDir, DefaultDataDir()))
	if err != nil {
		return cfg, path, "", err
	}
	if dataDir == "" {
		dataDir = firstNonEmpty(cfg.DataDir, DefaultDataDir())
		if o.ConfigPath == "" && cfg.DataDir != "" {
			// data_dir came from the default location's file: fine.
		}
	}
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}
	if o.LogFormat != "" {
		cfg.Log.Format = o.LogFormat
	}
	if o.LogLevel != "" {
		cfg.Log.Level = o.LogLevel
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return cfg, path, "", fmt.Errorf("data directory %q: %w", dataDir, err)
	}
	return cfg, path, abs, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// NewLogger builds the slog logger the configuration asks for.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Open loads the configuration, opens and migrates the store and builds the
// capabilities. It does not listen.
func Open(ctx context.Context, o Options) (*App, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg, cfgPath, dataDir, err := LoadConfig(o)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, ConfigFile: cfgPath, DataDir: dataDir, now: o.Now, getenv: o.Getenv, stderr: o.Stderr, version: o.Version, netns: o.FirewallNetNS}
	a.Logger = NewLogger(o.Stderr, cfg.Log.Format, cfg.Log.Level)

	dsn := ""
	if cfg.Store.Driver == "postgres" {
		if dsn, err = cfg.Store.DSN.Resolve(o.Getenv, os.ReadFile); err != nil {
			return nil, fmt.Errorf("store.dsn: %w", err)
		}
	} else if o.MustExist {
		if _, err := os.Stat(filepath.Join(dataDir, "bulwark.db")); err != nil {
			return nil, fmt.Errorf("no Bulwark database in %s (give --data DIR of a server that has run): %w", dataDir, err)
		}
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	db, err := store.Open(ctx, store.Options{Driver: cfg.Store.Driver, DSN: dsn, DataDir: dataDir, MaxOpenConns: cfg.Store.MaxOpenConns})
	if err != nil {
		return nil, err
	}
	a.DB = db
	if err := db.Migrate(ctx, Migrations()...); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.build(); err != nil {
		db.Close()
		return nil, err
	}
	if a.Bans, err = detect.Open(ctx, db, detect.Options{Bus: a.Events, Now: a.now}); err != nil {
		db.Close()
		return nil, err
	}
	if a.Rules, err = rules.Open(ctx, db, rules.Options{Bus: a.Events, Now: a.now}); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build() error {
	cfg := a.Config
	key, err := audit.LoadOrCreateKey(a.DataDir)
	if err != nil {
		return fmt.Errorf("audit signing key: %w", err)
	}
	a.AuditKey = key
	a.Audit = audit.New(a.DB, key, audit.Options{CheckpointEvery: cfg.Audit.CheckpointEvery, Now: a.now})
	a.Access = access.NewStore(a.DB, a.now)
	a.Events = events.NewBus(a.DB, events.Options{Now: a.now, Logger: a.Logger})
	a.WebAuthn, err = identity.NewWebAuthn(identity.WebAuthnConfig{
		RPID: cfg.Auth.WebAuthn.RPID, RPName: cfg.Auth.WebAuthn.RPName, Origins: cfg.Auth.WebAuthn.Origins, Timeout: 5 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("auth.webauthn: %w", err)
	}
	ic := identity.DefaultConfig()
	ic.Policy.MinLength = cfg.Auth.PasswordMinLength
	ic.SessionIdle = cfg.Auth.SessionIdleTimeout.D()
	ic.SessionMaxAge = cfg.Auth.SessionMaxAge.D()
	ic.TokenMaxAge = cfg.Auth.TokenMaxAge.D()
	ic.Require2FA = cfg.Auth.Require2FA
	ic.Require2FARoles = cfg.Auth.Require2FARoles
	ic.Throttle.BaseDelay = cfg.Auth.Throttle.BaseDelay.D()
	ic.Throttle.MaxDelay = cfg.Auth.Throttle.MaxDelay.D()
	ic.Throttle.FreeAttempts = cfg.Auth.Throttle.FreeAttempts
	ic.Throttle.LockoutAfter = cfg.Auth.Throttle.LockoutAfter
	ic.WebAuthn = a.WebAuthn
	ic.Now = a.now
	a.Identity, err = identity.New(a.DB, a.Access, ic)
	if err != nil {
		return err
	}
	a.Continuity = &continuity.Service{
		Config:   cfg.Continuity,
		Open:     continuity.RepositoryOpener(a.getenv, os.ReadFile, filepath.Join(a.DataDir, "cache")),
		OpenList: continuity.RepositoryLister(a.getenv, os.ReadFile, filepath.Join(a.DataDir, "cache")),
		History:  continuity.NewHistory(a.DB),
		Bus:      a.Events,
		Logger:   a.Logger,
		Now:      a.now,
		Getenv:   a.getenv,
	}
	a.Scheduler = &continuity.Scheduler{Service: a.Continuity}
	if _, err := integrity.PolicyFromConfig(cfg.Integrity); err != nil {
		return err // an attribute name config cannot check (integrity owns them)
	}
	a.Integrity = &integrity.Service{Config: cfg.Integrity, DataDir: a.DataDir, Bus: a.Events, Logger: a.Logger,
		Offsets: tail.NewStoreOffsets(a.DB)}
	// Every event is also an audit entry: the audit log is the one
	// tamper-evident record of what happened.
	a.Events.Subscribe("audit", events.SinkFunc(func(ctx context.Context, e events.Event) error {
		_, err := a.Audit.Append(ctx, audit.Entry{
			Time: e.Time, Actor: e.Actor, Source: "", Action: "event." + string(e.Type), Resource: e.Resource, Result: "ok",
			Details: map[string]any{"event_id": e.ID, "module": e.Module, "severity": string(e.Severity), "message": e.Message},
		})
		return err
	}), events.Filter{})
	return nil
}

// Close releases the store and stops background delivery.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if a.Events != nil {
		errs = append(errs, a.Events.Close(ctx))
	}
	if a.Audit != nil {
		errs = append(errs, a.Audit.Close())
	}
	if a.Continuity != nil {
		a.Continuity.CloseReaders()
	}
	if a.DB != nil {
		errs = append(errs, a.DB.Close())
	}
	return errors.Join(errs...)
}

// AuditConfigLoad records which configuration is in effect, so every change
// of configuration between starts appears in the audit log.
func (a *App) AuditConfigLoad(ctx context.Context) error {
	details := map[string]any{"file": a.ConfigFile, "data_dir": a.DataDir, "version": a.version}
	if a.ConfigFile != "" {
		b, err := os.ReadFile(a.ConfigFile)
		if err != nil {
			return fmt.Errorf("read %s: %w", a.ConfigFile, err)
		}
		sum := sha256.Sum256(b)
		details["sha256"] = hex.EncodeToString(sum[:])
	}
	if lit := a.Config.LiteralSecrets(); len(lit) > 0 {
		a.Logger.Warn("secrets written in the configuration file; prefer {env: NAME} or {file: PATH}", "fields", lit)
		details["literal_secrets"] = lit
	}
	prev, err := a.Audit.Query(ctx, audit.Filter{Action: "config.load", Limit: 1, Desc: true})
	if err != nil {
		return err
	}
	action := "config.load"
	if len(prev) == 1 && fmt.Sprint(prev[0].Details["sha256"]) != fmt.Sprint(details["sha256"]) {
		details["previous_sha256"] = prev[0].Details["sha256"]
		details["changed"] = true
	}
	_, err = a.Audit.Append(ctx, audit.Entry{Actor: "system:bulwark", Action: action, Resource: "config", Result: "ok", Details: details})
	return err
}
