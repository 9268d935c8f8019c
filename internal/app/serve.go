package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/certs"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/web/console"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ServeOptions tune Serve.
type ServeOptions struct {
	// OnListen is called with the bound address once the listener is up
	// (tests listen on port 0).
	OnListen func(addr string)
	// Out receives the one-time bootstrap message (the generated admin
	// password). Defaults to stderr.
	Out io.Writer
	// Stdout receives the guard's access log when guard.access_log is
	// stdout. Defaults to os.Stdout.
	Stdout io.Writer
}

func (so ServeOptions) stdout() io.Writer {
	if so.Stdout == nil {
		return os.Stdout
	}
	return so.Stdout
}

// Bootstrap creates the built-in roles and, on an empty store, the admin
// account. The password comes from BULWARK_ADMIN_PASSWORD, then
// bootstrap.admin_password; otherwise one is generated and printed once.
func (a *App) Bootstrap(ctx context.Context, out io.Writer) error {
	pw := a.getenv("BULWARK_ADMIN_PASSWORD")
	if pw == "" && a.Config.Bootstrap.AdminPassword.IsSet() {
		v, err := a.Config.Bootstrap.AdminPassword.Resolve(a.getenv, os.ReadFile)
		if err != nil {
			return fmt.Errorf("bootstrap.admin_password: %w", err)
		}
		pw = v
	}
	created, generated, err := a.Identity.EnsureAdmin(ctx, pw)
	if err != nil {
		return err
	}
	if !created {
		return nil
	}
	details := map[string]any{"password_source": "BULWARK_ADMIN_PASSWORD or configuration"}
	if generated != "" {
		details["password_source"] = "generated"
		fmt.Fprintf(out, "\nCreated the first administrator account.\n  username: admin\n  password: %s\nThis password is shown once. Sign in and enrol two-factor authentication.\n\n", generated)
	}
	return a.auditSystem(ctx, "user.bootstrap", "user/admin", details)
}

func (a *App) auditSystem(ctx context.Context, action, resource string, details map[string]any) error {
	_, err := a.Audit.Append(ctx, auditEntry("system:bulwark", action, resource, details))
	return err
}

// Handler builds the API handler over the app's capabilities.
func (a *App) Handler(reg *prometheus.Registry) *api.Server {
	return api.New(api.Deps{
		Identity: a.Identity, Access: a.Access, Audit: a.Audit, Events: a.Events, Logger: a.Logger, Now: a.now,
		MaxBodyBytes: a.Config.API.MaxBodyBytes.Bytes(), PageSizeMax: a.Config.API.PageSizeMax,
		Ready:          func(ctx context.Context) error { return a.DB.PingContext(ctx) },
		Registry:       reg,
		MetricsPublic:  a.Config.API.MetricsPublic,
		TrustedProxies: a.Config.API.TrustedProxyNets(),
		Version:        a.version,
		Continuity:     a.Continuity,
		Scheduler:      a.Scheduler,
		Bans:           a.Bans,
		Integrity:      a.integrityIfEnabled(),
		Monitor:        a.Monitor,
		Notifier:       a.Notifier,
		StatusPages:    a.statusHandler(),
		Rules:          a.Rules,
		GuardHost:      a.Config.Guard.HasHost,
		Guard:          a.Config.Guard,
		Protection:     a.Protection,
		GuardMetrics:   a.guardRegistry(),
		Report:         a.reportForAPI,
		Trust:          &api.TrustPage{Publish: a.Config.Report.Publish},
	})
}

// Console is the web console in front of the API: the console's pages,
// and every other path served by the API.
func (a *App) Console(reg *prometheus.Registry) http.Handler {
	return console.New(console.Options{API: a.Handler(reg), Now: a.now, Logger: a.Logger, Key: a.consoleKey()})
}

// guardRegistry holds the guard's collector alone (startProtection adds
// it), for the API's guard status: the full registry would also take a
// host-metrics sample at every look.
func (a *App) guardRegistry() *prometheus.Registry {
	a.guardMetricsOnce.Do(func() { a.guardMetrics = prometheus.NewRegistry() })
	return a.guardMetrics
}

// consoleKey is the key the console signs its form tokens with: derived
// from the data directory's audit signing key, so that every process
// serving the same store (replicas, a restart) accepts the forms of the
// others, and nobody without the data directory can make one.
func (a *App) consoleKey() []byte {
	if len(a.AuditKey) == 0 {
		return nil // the console draws a random one
	}
	m := hmac.New(sha256.New, a.AuditKey.Seed())
	m.Write([]byte("bulwark console form key v1"))
	return m.Sum(nil)
}

// integrityIfEnabled is the integrity service when the configuration
// enables it, for the API (nil answers 503).
func (a *App) integrityIfEnabled() *integrity.Service {
	if !a.Config.Integrity.Enabled {
		return nil
	}
	return a.Integrity
}

// Serve runs the control plane until ctx is cancelled, then shuts down
// cleanly: in-flight requests get up to 10 s to finish.
func (a *App) Serve(ctx context.Context, so ServeOptions) error {
	if so.Out == nil {
		so.Out = a.stderr
	}
	if err := a.Bootstrap(ctx, so.Out); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	// The first administrator's password hash took argon2id's 64 MiB: give
	// it back now rather than when the scavenger gets round to it.
	debug.FreeOSMemory()
	if err := a.AuditConfigLoad(ctx); err != nil {
		return fmt.Errorf("audit configuration: %w", err)
	}
	certFile, keyFile := a.Config.TLS.CertFile, a.Config.TLS.KeyFile
	if certFile == "" {
		var err error
		if certFile, keyFile, err = certs.EnsureSelfSigned(a.DataDir, a.Config.Listen, a.now()); err != nil {
			return err
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	reg := NewRegistry(a.Events.Collector())
	// Supervision: host metrics at /metrics, checks, alert rules and the
	// status pages.
	if a.Config.Monitor.Enabled {
		m, err := a.OpenMonitor(true)
		if err != nil {
			return err
		}
		reg.MustRegister(m.Host(), m.Collector())
	}
	srv := &http.Server{
		Handler:           a.Console(reg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       a.Config.API.ReadTimeout.D(),
		WriteTimeout:      a.Config.API.WriteTimeout.D(),
		IdleTimeout:       a.Config.API.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		// Handshake failures (a client refusing the self-signed
		// certificate) are routine: keep them in slog, at debug level.
		ErrorLog: slog.NewLogLogger(a.Logger.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using it? choose another with --listen)", a.Config.Listen, err)
	}
	addr := ln.Addr().String()
	a.Logger.Info("bulwark is up", "url", "https://"+addr, "data", a.DataDir, "store", string(a.DB.Dialect), "config", a.ConfigFile)
	if so.OnListen != nil {
		so.OnListen(addr)
	}
	if _, err := a.Events.Publish(ctx, events.Event{Type: events.TypeSystemStarted, Severity: events.SeverityInfo, Module: events.ModuleSystem,
		Actor: events.SystemActor("bulwark"), Resource: "control-plane/" + addr, Message: "control plane started (" + a.version + ")"}); err != nil {
		a.Logger.Warn("publish start event", "err", err)
	}
	// The guard, detection and the firewall, as configured.
	stopProtection, err := a.startProtection(ctx, so, reg)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopProtection()
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go a.maintain(bg)
	go refreshEvery(bg, 5*time.Second, a.Logger, "guard: reload bans", a.Bans.Refresh)
	go refreshEvery(bg, 5*time.Second, a.Logger, "guard: reload runtime rules", a.Rules.Refresh)
	// The backup policies run on their schedules (see internal/continuity).
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		if err := a.Scheduler.Run(bg); err != nil {
			a.Logger.Warn("continuity scheduler", "err", err)
		}
	}()
	defer func() { stopBG(); <-schedDone }()
	if a.Monitor != nil {
		// The last results first, so the first export is not empty.
		if err := a.Monitor.Load(ctx); err != nil {
			a.Logger.Warn("monitor: restore state", "err", err)
		}
		monitorDone := a.runMonitor(bg)
		publishDone := a.publishStatus(bg)
		defer func() { stopBG(); <-monitorDone; <-publishDone }()
	}
	// File integrity: the baseline verified (or recorded) and watched.
	if a.Config.Integrity.Enabled {
		integrityDone := make(chan struct{})
		go func() {
			defer close(integrityDone)
			_ = a.Integrity.Run(bg) // it logs why it could not watch
		}()
		defer func() { stopBG(); <-integrityDone }()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.Logger.Info("shutting down")
	if _, err := a.Events.Publish(context.WithoutCancel(ctx), events.Event{Type: events.TypeSystemStopping, Severity: events.SeverityNotice, Module: events.ModuleSystem,
		Actor: events.SystemActor("bulwark"), Resource: "control-plane/" + addr, Message: "control plane stopping"}); err != nil {
		a.Logger.Warn("publish stop event", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewRegistry is a /metrics registry with the Go runtime and process
// collectors and the given ones.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// maintain runs retention and clean-up hourly.
func (a *App) maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := a.RunMaintenance(ctx); err != nil && ctx.Err() == nil {
			a.Logger.Warn("maintenance", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunMaintenance applies audit and event retention and removes expired
// sessions and challenges.
func (a *App) RunMaintenance(ctx context.Context) error {
	cutoff := a.now().Add(-a.Config.Audit.Retention.D())
	removed, err := a.Audit.Prune(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("audit retention: %w", err)
	}
	if removed > 0 {
		a.Logger.Info("audit retention", "removed", removed, "before", cutoff)
	}
	if _, err := a.Events.Prune(ctx, cutoff); err != nil {
		return fmt.Errorf("event retention: %w", err)
	}
	if a.Notifier != nil {
		// Delivery attempts are kept as long as the monitor's longest
		// history.
		if _, err := a.Notifier.Prune(ctx, a.now().Add(-a.Config.Monitor.History.Hour.D())); err != nil {
			return fmt.Errorf("notification retention: %w", err)
		}
	}
	return a.Identity.PruneExpired(ctx)
}
