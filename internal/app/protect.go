package app

import (
	"context"
	"io"
	"net/netip"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/guard"
	"github.com/bulwarkhq/bulwark/internal/netindex"
)

// protection is what `bulwark up` runs at the edge: the guard, the
// detection engine that turns its refusals and tailed log lines into
// bans, and the firewall that enforces those bans in the kernel. Each part
// runs when the configuration asks for it (guard.sites, detect.logs,
// firewall.enabled).
type protection struct {
	guard  *guard.Guard
	closer io.Closer
	engine *detect.Engine
}

// wantsDetection reports whether the engine has anything to watch.
func wantsDetection(cfg config.Config) bool {
	return cfg.Guard.Enabled() || len(cfg.Detect.Logs) > 0
}

// exemptFunc is the set of sources detection must never ban: the guard's
// allow list (the config's and the runtime rules') and every trusted
// proxy (banning a proxy would ban everyone behind it).
func (a *App) exemptFunc() func(netip.Addr) bool {
	type compiled struct {
		version uint64
		ix      *netindex.Index[struct{}]
	}
	var cur atomic.Pointer[compiled]
	return func(addr netip.Addr) bool {
		snap := a.Rules.Snapshot()
		c := cur.Load()
		if c == nil || c.version != snap.Version {
			c = &compiled{version: snap.Version, ix: netindex.New[struct{}]()}
			for _, p := range a.exemptNets() {
				c.ix.Add(p, struct{}{}, nil)
			}
			cur.Store(c)
		}
		_, _, ok := c.ix.Match(addr, nil)
		return ok
	}
}

// exemptNets lists the networks never banned (see exemptFunc).
func (a *App) exemptNets() []netip.Prefix {
	var out []netip.Prefix
	for _, list := range [][]string{a.Config.Guard.Allow, a.Config.Guard.TrustedProxies, a.Config.API.TrustedProxies} {
		out = append(out, config.Nets(list)...)
	}
	return append(out, a.Rules.Snapshot().Allow...)
}

// startProtection starts the edge parts the configuration asks for; the
// returned stop undoes it in reverse order.
func (a *App) startProtection(ctx context.Context, so ServeOptions, reg *prometheus.Registry) (stop func(), err error) {
	var p protection
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stops = append(stops, cancel)
	// The edge's state, for the report: in memory and in the data
	// directory, until everything below has stopped.
	rctx, stopRecord := context.WithCancel(context.WithoutCancel(ctx))
	recorded := a.recordProtection(rctx)
	stops = append(stops, func() { stopRecord(); <-recorded })
	if wantsDetection(a.Config) {
		p.engine, err = detect.NewEngine(a.Config.Detect, a.Bans, detect.EngineOptions{Logger: a.Logger, Exempt: a.exemptFunc(), Now: a.now})
		if err != nil {
			return nil, err
		}
		reg.MustRegister(p.engine)
		done := make(chan struct{})
		go func() { defer close(done); p.engine.Run(ectx) }()
		a.detectStarted(true)
		stops = append(stops, func() { cancel(); <-done; a.detectStarted(false) })
		if len(a.Config.Detect.Logs) > 0 {
			lf, err := detect.NewLogFollower(a.Config.Detect, a.DB, p.engine, a.Logger)
			if err != nil {
				return nil, err
			}
			ldone := make(chan struct{})
			go func() { defer close(ldone); lf.Run(ectx) }()
			stops = append(stops, func() { cancel(); <-ldone })
		}
	}
	if a.Config.Firewall.Enabled {
		fw, err := openFirewall(a.Config.Firewall, a.netns)
		if err != nil {
			return nil, err
		}
		reg.MustRegister(firewallCollector{fw})
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.mirrorBans(ectx, fw, a.Config.Firewall.Reconcile.D())
		}()
		stops = append(stops, func() { cancel(); <-done; fw.Close() })
	}
	if a.Config.Guard.Enabled() {
		opt := guard.Options{Logger: a.Logger, Bans: a.Bans, Rules: a.Rules, Accounts: detect.OpenAccounts(a.DB, a.Logger)}
		if p.engine != nil {
			eng := p.engine
			opt.Signals = func(s detect.Signal) { eng.Observe(s) }
		}
		g, closer, err := NewGuard(a.Config.Guard, opt, so.stdout())
		if err != nil {
			return nil, err
		}
		stops = append(stops, func() { closer.Close() })
		reg.MustRegister(g.Collector())
		gc := g.Collector()
		a.guardRegistry().MustRegister(gc)
		stops = append(stops, func() { a.guardRegistry().Unregister(gc) })
		if err := g.Start(); err != nil {
			return nil, err
		}
		a.guardStarted(true)
		stops = append(stops, func() {
			defer a.guardStarted(false)
			gctx, cancel := context.WithTimeout(context.Background(), 10e9)
			defer cancel()
			if err := g.Shutdown(gctx); err != nil {
				a.Logger.Warn("guard shutdown", "err", err)
			}
		})
	}
	return stop, nil
}
