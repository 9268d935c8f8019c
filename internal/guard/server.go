package guard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Start opens the configured listeners and serves on them in the
// background. Addrs tells where (useful with port 0).
func (g *Guard) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.servers) > 0 {
		return errors.New("guard: already started")
	}
	type lst struct {
		addr string
		tls  bool
	}
	var want []lst
	if g.cfg.Listen != "" {
		want = append(want, lst{g.cfg.Listen, false})
	}
	if g.cfg.ListenTLS != "" {
		want = append(want, lst{g.cfg.ListenTLS, true})
	}
	for _, w := range want {
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			g.closeListenersLocked()
			return fmt.Errorf("guard: listen on %s: %w", w.addr, err)
		}
		g.lns = append(g.lns, ln)
		srv := g.newServer(w.tls)
		g.servers = append(g.servers, srv)
		var wrapped net.Listener = &listener{Listener: ln, g: g}
		var fs *fastServer
		if !w.tls && !g.noFast {
			// The fast path accepts; the server gets what it hands off.
			fs = &fastServer{g: g, handoff: newHandoff(ln.Addr()), conns: map[*fastConn]struct{}{}}
			g.fast = append(g.fast, fs)
			admitting := wrapped
			g.serveWG.Add(1)
			go func() {
				defer g.serveWG.Done()
				// With its listener closed (shutdown, or a failed
				// Start), the server behind has nothing more to serve.
				defer fs.handoff.Close()
				if err := fs.serve(admitting); err != nil && !errors.Is(err, net.ErrClosed) {
					g.log.Error("guard: listener stopped", "addr", ln.Addr().String(), "error", err)
				}
			}()
			wrapped = fs.handoff
		}
		g.serveWG.Add(1)
		go func() {
			defer g.serveWG.Done()
			var err error
			if w.tls {
				err = srv.ServeTLS(wrapped, "", "")
			} else {
				err = srv.Serve(wrapped)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("guard: listener stopped", "addr", ln.Addr().String(), "error", err)
			}
		}()
		g.log.Info("guard: listening", "addr", ln.Addr().String(), "tls", w.tls, "sites", len(g.sites))
	}
	if len(g.fast) > 0 {
		g.serveWG.Go(g.sweepIdle)
	}
	return nil
}

// sweepIdle closes the fast path's upstream connections idle too long,
// until the guard shuts down.
func (g *Guard) sweepIdle() {
	t := time.NewTicker(upIdleMax / 2)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-t.C:
			now := g.now()
			for _, s := range g.sites {
				for _, u := range s.pool.ups {
					u.idle.sweep(now)
				}
			}
		}
	}
}

func (g *Guard) closeListenersLocked() {
	for _, ln := range g.lns {
		ln.Close()
	}
	g.lns = nil
}

func (g *Guard) newServer(useTLS bool) *http.Server {
	t := g.cfg.Timeouts
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: t.Header.D(), // also bounds the TLS handshake
		IdleTimeout:       t.Idle.D(),
		MaxHeaderBytes:    int(t.MaxHeaderBytes.Bytes()),
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	if useTLS {
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: g.getCertificate,
			NextProtos:     []string{"h2", "http/1.1"},
		}
	}
	return srv
}

// Addrs returns the addresses of the plain and TLS listeners ("" when
// not configured or not started).
func (g *Guard) Addrs() (plain, secure string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := 0
	if g.cfg.Listen != "" && i < len(g.lns) {
		plain = g.lns[i].Addr().String()
		i++
	}
	if g.cfg.ListenTLS != "" && i < len(g.lns) {
		secure = g.lns[i].Addr().String()
	}
	return plain, secure
}

// Shutdown stops accepting, lets requests in progress finish until ctx
// ends, then closes what is left.
func (g *Guard) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	servers, fast := g.servers, g.fast
	// The fast path's accept loops end when their listeners close (the
	// servers close only the hand-off listeners).
	g.closeListenersLocked()
	g.mu.Unlock()
	var fastWG sync.WaitGroup
	for _, fs := range fast {
		fastWG.Go(func() { fs.shutdown(ctx.Done()) })
	}
	var first error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
			if first == nil {
				first = err
			}
		}
	}
	fastWG.Wait()
	g.doneOnce.Do(func() { close(g.done) })
	g.serveWG.Wait()
	for _, s := range g.sites {
		for _, u := range s.pool.ups {
			u.idle.closeAll()
		}
	}
	if g.unsubscribe != nil {
		g.unsubscribe()
	}
	return first
}

// Run starts the guard and serves until ctx ends, then shuts down within
// grace.
func (g *Guard) Run(ctx context.Context, grace time.Duration) error {
	if err := g.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return g.Shutdown(sctx)
}
