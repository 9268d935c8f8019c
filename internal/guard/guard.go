// Package guard is Bulwark's protecting reverse proxy: it terminates HTTP
// and HTTPS for the configured sites and passes requests to their
// upstreams, after the checks that keep a site up under attack.
//
// The order of the checks is the order of their cost. At accept, before a
// TLS handshake or a byte of HTTP is read: the deny list, the global
// connection cap and the per-source connection cap (listener.go), so a
// flood of connections costs one accept and one close each. Then the
// server's own deadlines bound the headers (slowloris) and their size.
// Per request (ServeHTTP): the client address, believed from forwarding
// headers only when the peer is a trusted proxy (clientip); the allow list,
// whose entries skip every limit; the deny list again for clients behind
// trusted proxies; the site, by host name; the per-source request rate
// (429 with Retry-After) and requests in progress; the body size (413) and
// the body's minimum average rate (408: slow POST, body.go); request
// inspection with the OWASP Core Rule Set, the most expensive check, last
// (internal/guard/waf); bandwidth shaping of the response (shaping.go);
// and finally the upstream, chosen round robin with passive health
// (upstream.go).
//
// Plain HTTP/1.1 connections are served by the fast path (fastpath.go),
// which runs the same checks without net/http's server and Transport and
// hands a connection to them when a request needs more than it does.
//
// Limit tables are keyed by source: the client address cut to a prefix
// (IPv4 /32, IPv6 /64 by default) and are bounded (internal/guard/limit),
// so an attacker cycling addresses costs memory up to a cap, not beyond.
package guard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/guard/clientip"
	"github.com/bulwarkhq/bulwark/internal/guard/limit"
	"github.com/bulwarkhq/bulwark/internal/guard/waf"
)

// Options are what the guard takes from its host process.
type Options struct {
	// Logger receives operational messages (not the access log).
	Logger *slog.Logger
	// AccessLog receives one JSON object per request; nil: none. It is
	// written from many goroutines, one whole line per Write.
	AccessLog io.Writer
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Bans are the ban decisions to enforce (detect.Bans); nil: none.
	Bans Bans
	// Signals receives what detection scenarios count (detect.Engine's
	// Observe): responses with status 400 and above, WAF blocks and limit
	// refusals, never bans and deny-list refusals. It must not block.
	// Nil: none.
	Signals func(detect.Signal)
	// Accounts remembers first successful logins, for the login
	// endpoints' new-account limit (detect.Accounts); nil: in memory.
	Accounts Accounts
	// Rules are the list entries and shaping rules added at run time
	// (rules.Rules); nil: only the config's.
	Rules RuleSource
}

// Bans answers whether an address is banned; detect.Bans implements it
// from memory, without touching the database.
type Bans interface {
	Match(a netip.Addr) (detect.Ban, bool)
	Active() []detect.Ban
}

// Guard is a running (or ready to run) protecting reverse proxy.
type Guard struct {
	cfg      config.Guard
	log      *slog.Logger
	now      func() time.Time
	resolver clientip.Resolver
	allow    *netSet
	deny     *netSet
	bans     Bans
	signals  func(detect.Signal)
	accounts Accounts
	sites    []*site
	sitesBy  hostTable[*site]
	conns    *limit.Conns[netip.Prefix]
	open     atomic.Int64
	access   *accessLog
	metrics  *metrics
	certs    hostTable[*tls.Certificate]

	// The runtime rules (runtime.go).
	shapes       atomic.Pointer[shapeSet]
	rulesMu      sync.Mutex
	rulesVersion uint64                  // of the snapshot installed; 0: none
	buckets      map[string]*limit.Bytes // shaping rules' buckets, by rule name
	unsubscribe  func()

	// The fast path (fastpath.go): its upstream dialer, its servers (one
	// per plain listener), and noFast to turn it off (tests).
	dialer *net.Dialer
	fast   []*fastServer
	noFast bool

	mu       sync.Mutex
	servers  []*http.Server
	lns      []net.Listener
	done     chan struct{} // closed by Shutdown
	doneOnce sync.Once
	serveWG  sync.WaitGroup
}

// site is one configured site with its limit tables.
type site struct {
	name      string
	hosts     []string
	pool      *pool
	proxy     *httputil.ReverseProxy
	rate      *limit.Rate[netip.Prefix] // nil: unlimited
	inflight  *limit.Conns[netip.Prefix]
	maxBody   int64
	bandwidth *limit.Bytes // nil: unlimited
	clients   *shaperTable // nil: unlimited
	waf       *waf.WAF     // nil: no inspection
	account   string       // the response header naming the account; "": none
	handler   http.Handler // the proxy, behind the WAF when there is one
	logins    []*login
	fast      bool // the HTTP/1.1 fast path may serve it (fastpath.go)
}

// New builds a guard from a validated configuration. It loads the sites'
// certificates; it does not listen yet (Start does).
func New(cfg config.Guard, opt Options) (*Guard, error) {
	if !cfg.Enabled() {
		return nil, errors.New("guard: no sites configured (guard.sites)")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Guard{
		cfg:      cfg,
		log:      opt.Logger,
		now:      opt.Now,
		resolver: clientip.Resolver{Trusted: config.Nets(cfg.TrustedProxies), Header: strings.TrimPrefix(cfg.ForwardedHeader, "auto")},
		allow:    newNetSet(config.Nets(cfg.Allow)),
		deny:     newNetSet(config.Nets(cfg.Deny)),
		bans:     opt.Bans,
		signals:  opt.Signals,
		accounts: opt.Accounts,
		done:     make(chan struct{}),
	}
	if g.accounts == nil {
		g.accounts = &memAccounts{}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if opt.AccessLog != nil {
		g.access = &accessLog{w: opt.AccessLog}
	}
	g.metrics = newMetrics()
	tableOpts := limit.Options{MaxKeys: cfg.Limits.MaxSources, IdleAfter: 10 * time.Minute, Now: g.now}
	if cfg.Limits.Connections > 0 {
		g.conns = limit.NewConns[netip.Prefix](cfg.Limits.Connections, tableOpts)
	}
	transport := newTransport(cfg.Upstreams.DialTimeout.D(), cfg.Upstreams.ResponseHeaderTimeout.D(), cfg.Upstreams.IdleConnections)
	g.dialer = &net.Dialer{Timeout: cfg.Upstreams.DialTimeout.D(), KeepAlive: 30 * time.Second}
	buffers := &bufferPool{}
	for i, sc := range cfg.Sites {
		s, err := g.newSite(sc, transport, buffers, tableOpts)
		if err != nil {
			return nil, fmt.Errorf("guard.sites[%d]: %w", i, err)
		}
		g.sites = append(g.sites, s)
		var cert *tls.Certificate
		if sc.TLS.CertFile != "" {
			c, err := tls.LoadX509KeyPair(sc.TLS.CertFile, sc.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("guard.sites[%d].tls: %w", i, err)
			}
			cert = &c
		}
		for _, h := range sc.Hosts {
			g.sitesBy.add(h, s)
			if cert != nil {
				g.certs.add(h, cert)
			}
		}
	}
	if opt.Rules != nil {
		g.unsubscribe = opt.Rules.Subscribe(g.applyRules)
		g.applyRules(opt.Rules.Snapshot())
	}
	return g, nil
}

func (g *Guard) newSite(sc config.GuardSite, transport http.RoundTripper, buffers httputil.BufferPool, opts limit.Options) (*site, error) {
	s := &site{name: sc.Name(), hosts: sc.Hosts, account: sc.AccountHeaderName()}
	p, err := newPool(sc.Upstreams, g.cfg.Upstreams.FailAfter, g.cfg.Upstreams.FailTimeout.D(), g.now, transport)
	if err != nil {
		return nil, err
	}
	p.onChange = func(u *upstream, up bool) {
		state := "down"
		if up {
			state = "up"
		}
		g.log.Warn("guard: upstream "+state, "site", s.name, "upstream", u.url.Host)
		g.metrics.upstreamState(s.name, u.url.Host, up)
	}
	for _, u := range p.ups {
		g.metrics.upstreamState(s.name, u.url.Host, true)
	}
	s.pool = p
	rate, burst := g.cfg.Limits.Rate, g.cfg.Limits.Burst
	if sc.Limits.Rate > 0 {
		rate, burst = sc.Limits.Rate, sc.Limits.Burst
		if burst == 0 {
			burst = rate
		}
	}
	if rate > 0 {
		s.rate = limit.NewRate[netip.Prefix](float64(rate), burst, opts)
	}
	// Requests in progress per source: the site's cap, else the guard's
	// per-source connection cap, which then also bounds what one HTTP/2
	// connection multiplexes (an HTTP/1.1 connection carries one at a
	// time).
	inflight := sc.Limits.Connections
	if inflight == 0 {
		inflight = g.cfg.Limits.Connections
	}
	if inflight > 0 {
		s.inflight = limit.NewConns[netip.Prefix](inflight, opts)
	}
	s.maxBody = g.cfg.Timeouts.MaxBodyBytes.Bytes()
	if sc.MaxBodyBytes > 0 {
		s.maxBody = sc.MaxBodyBytes.Bytes()
	}
	if sc.Bandwidth > 0 {
		s.bandwidth = limit.NewBytes(sc.Bandwidth.Bytes(), burstFor(sc.Bandwidth.Bytes()))
	}
	if sc.ClientBandwidth > 0 {
		s.clients = newShaperTable(sc.ClientBandwidth.Bytes())
	}
	for _, lc := range sc.Logins {
		s.logins = append(s.logins, newLogin(lc, opts))
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:      g.rewrite,
		Transport:    p,
		BufferPool:   buffers,
		ErrorHandler: g.proxyError,
		ErrorLog:     slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	s.handler = s.proxy
	if sc.Inspects() {
		wc := waf.Config{
			Mode:             waf.Mode(sc.WAF),
			Paranoia:         sc.WAFOptions.Paranoia,
			AnomalyThreshold: sc.WAFOptions.AnomalyThreshold,
			BodyLimit:        sc.WAFOptions.BodyLimit.Bytes(),
			SkipExtensions:   sc.WAFOptions.SkipExtensions,
		}
		for _, e := range sc.WAFOptions.Exclusions {
			wc.Exclusions = append(wc.Exclusions, waf.Exclusion{IDs: e.IDs, PathPrefix: e.Path})
		}
		w, err := waf.New(wc)
		if err != nil {
			return nil, fmt.Errorf("waf: %w", err)
		}
		s.waf = w
		s.handler = w.Handler(s.proxy, g.wafVerdict)
	}
	s.fast = s.waf == nil && len(s.logins) == 0 && s.bandwidth == nil && s.clients == nil
	for _, u := range p.ups {
		s.fast = s.fast && u.url.Scheme == "http"
	}
	return s, nil
}

// wafVerdict records what the request inspection found.
func (g *Guard) wafVerdict(r *http.Request, v waf.Verdict) {
	st := stateOf(r.Context())
	if st == nil || len(v.Matches) == 0 {
		return
	}
	ids := make([]int, 0, len(v.Matches))
	for _, m := range v.Matches {
		ids = append(ids, m.RuleID)
	}
	st.wafRules = ids
	// Status is what block mode answers (or would, in detect mode).
	g.metrics.wafMatch(siteName(st), v.Status != 0)
	if v.Blocked {
		st.blocked = "waf"
		g.metrics.blocked("waf")
	}
}

// burstFor is the bucket size for a bandwidth cap: a tenth of a second of
// traffic, at least 16 KiB so that one write need not be split.
func burstFor(rate int64) int64 { return max(rate/10, 16<<10) }

func normalHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// route returns the site for a request's Host, or nil.
func (g *Guard) route(hostport string) *site {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	s, _ := g.sitesBy.lookup(h)
	return s
}

// getCertificate picks a site's certificate by SNI.
func (g *Guard) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c, ok := g.certs.lookup(hello.ServerName); ok {
		return c, nil
	}
	return nil, fmt.Errorf("guard: no certificate for %q", hello.ServerName)
}

// hostTable maps host names, exact or "*.domain" (any subdomain, not the
// domain itself), to values; an exact name wins, then the nearest
// wildcard.
type hostTable[V any] struct {
	exact map[string]V
	wild  map[string]V // "*.example.com" stored as "example.com"
}

func (t *hostTable[V]) add(host string, v V) {
	if t.exact == nil {
		t.exact, t.wild = map[string]V{}, map[string]V{}
	}
	h := normalHost(host)
	if parent, ok := strings.CutPrefix(h, "*."); ok {
		t.wild[parent] = v
	} else {
		t.exact[h] = v
	}
}

func (t *hostTable[V]) lookup(host string) (V, bool) {
	h := normalHost(host)
	if v, ok := t.exact[h]; ok {
		return v, true
	}
	for parent := h; ; {
		_, rest, ok := strings.Cut(parent, ".")
		if !ok {
			var zero V
			return zero, false
		}
		if v, ok := t.wild[rest]; ok {
			return v, true
		}
		parent = rest
	}
}

// source is the limit-table key of a client address.
func (g *Guard) source(a netip.Addr) netip.Prefix {
	return clientip.Prefix(a, g.cfg.Limits.IPv4Prefix, g.cfg.Limits.IPv6Prefix)
}

type stateKey struct{}

// reqState follows a request through the guard, for the error handler,
// the access log and metrics.
type reqState struct {
	start    time.Time
	peer     netip.Addr
	client   netip.Addr
	site     *site
	upstream string
	blocked  string                // the reason a request was refused by the guard
	bodyErr  atomic.Pointer[error] // the first error reading the client's body (set by the transport's goroutine)
	wafRules []int                 // CRS rules that matched
	login    *login                // the login endpoint tried, if any
	account  string                // the account it names
	user     string                // the account the upstream named in the site's account header
}

func (st *reqState) setBodyErr(err error) { st.bodyErr.CompareAndSwap(nil, &err) }

// clientBodyErr is the error reading the client's body, or nil.
func (st *reqState) clientBodyErr() error {
	if st == nil {
		return nil
	}
	if p := st.bodyErr.Load(); p != nil {
		return *p
	}
	return nil
}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// ServeHTTP applies the per-request checks and proxies the request.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{start: g.now(), peer: peerAddr(r.RemoteAddr)}
	st.client = g.resolver.Client(st.peer, r.Header)
	lw := &logWriter{ResponseWriter: w, stall: g.cfg.Timeouts.Idle.D(), ctl: http.NewResponseController(w), st: st,
		upgradeIdle: g.cfg.Timeouts.UpgradeIdle.D()}
	defer g.finish(lw, r, st)
	defer lw.endStall()

	allowed := g.allow.Contains(st.client)
	if !allowed {
		// The accept-time checks again, on every request: for a client
		// behind a trusted proxy they are the first, and a ban decided
		// after a connection was accepted must end its keep-alive and
		// HTTP/2 requests too (the connection is closed after the 403).
		if g.deny.Contains(st.client) {
			g.refuseClose(lw, st, "deny")
			return
		}
		if g.banned(st.client) {
			g.refuseClose(lw, st, "ban")
			return
		}
	}
	if !validHost(r.Host) {
		g.refuse(lw, st, "bad_request", http.StatusBadRequest, 0)
		return
	}
	if hasDotSegment(r.URL.Path) {
		// Clients normalise "." and ".." before sending; a raw one could
		// climb out of an upstream's path prefix.
		g.refuse(lw, st, "bad_request", http.StatusBadRequest, 0)
		return
	}
	s := g.route(r.Host)
	if s == nil {
		g.refuse(lw, st, "unknown_site", http.StatusNotFound, 0)
		return
	}
	st.site = s
	lw.account = s.account
	key := g.source(st.client)
	if !allowed {
		if s.rate != nil {
			if ok, wait := s.rate.Allow(key, st.start); !ok {
				g.refuse(lw, st, "rate", http.StatusTooManyRequests, wait)
				return
			}
		}
		if s.inflight != nil {
			if !s.inflight.Acquire(key) {
				g.refuse(lw, st, "requests_in_progress", http.StatusTooManyRequests, time.Second)
				return
			}
			defer s.inflight.Release(key)
		}
	}
	if r.ContentLength > s.maxBody {
		g.refuse(lw, st, "body_size", http.StatusRequestEntityTooLarge, 0)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = g.newBody(w, r.Body, s.maxBody, st)
	}
	if l := s.loginFor(r); l != nil {
		if !g.loginTry(lw, r, st, l, allowed) {
			return
		}
	}
	var out http.ResponseWriter = lw
	if sw := g.shaper(lw, r, s, key); sw != nil {
		if sw.source != nil {
			defer s.clients.release(key)
		}
		out = sw
	}
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	if s.waf != nil {
		ctx = waf.WithClient(ctx, st.client)
	}
	s.handler.ServeHTTP(out, r.WithContext(ctx))
}

// loginTry reads the account of a try at a login endpoint and counts it,
// answering the request itself (and returning false) when it may not go on.
func (g *Guard) loginTry(w http.ResponseWriter, r *http.Request, st *reqState, l *login, allowed bool) bool {
	account, err := l.account(r)
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errSlowBody):
		g.refuse(w, st, "slow_body", http.StatusRequestTimeout, 0)
		return false
	case errors.Is(err, errLoginBody), errors.As(err, &tooBig):
		g.refuse(w, st, "body_size", http.StatusRequestEntityTooLarge, 0)
		return false
	case err != nil:
		// The client went away or broke the body: nothing to answer.
		st.blocked = "bad_request"
		w.WriteHeader(http.StatusBadRequest)
		return false
	}
	st.login, st.account = l, account
	if allowed {
		return true
	}
	if ok, wait := l.try(g.accounts, st.site.name, account, st.start); !ok {
		g.refuse(w, st, "login", http.StatusTooManyRequests, wait)
		return false
	}
	return true
}

// banned reports whether a is under a ban in force.
func (g *Guard) banned(a netip.Addr) bool {
	if g.bans == nil {
		return false
	}
	_, ok := g.bans.Match(a)
	return ok
}

// refuseClose answers 403 and closes the connection (HTTP/1.1) or
// stream (HTTP/2) after it.
func (g *Guard) refuseClose(w http.ResponseWriter, st *reqState, reason string) {
	w.Header().Set("Connection", "close")
	g.refuse(w, st, reason, http.StatusForbidden, 0)
}

// validHost reports whether a request's Host is a host name or address
// with an optional numeric port: anything else (HTTP/2 does not check
// :authority) would reach the upstream rewritten, or empty.
func validHost(h string) bool {
	if h == "" || !httpguts.ValidHostHeader(h) {
		return false
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = h, ""
		if strings.HasPrefix(h, "[") {
			inner, ok := strings.CutSuffix(h[1:], "]")
			_, perr := netip.ParseAddr(inner)
			return ok && perr == nil // "[::1]"
		}
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	return host != "" && !strings.ContainsAny(host, "/\\@?#%")
}

// hasDotSegment reports whether a decoded path has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(strings.ReplaceAll(p, "\\", "/"), "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// refuse answers a request the guard will not pass on.
func (g *Guard) refuse(w http.ResponseWriter, st *reqState, reason string, code int, retryAfter time.Duration) {
	st.blocked = reason
	g.metrics.blocked(reason)
	h := w.Header()
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, refusals[reason]+"\n")
}

var refusals = map[string]string{
	"deny":                 "Forbidden: this address is not allowed.",
	"ban":                  "Forbidden: this address is banned for a while.",
	"unknown_site":         "Not found: no site here answers this host name.",
	"rate":                 "Too many requests: slow down and retry after the time in Retry-After.",
	"requests_in_progress": "Too many requests in progress from this address: retry when earlier ones have finished.",
	"body_size":            "Request body too large.",
	"bad_request":          "Bad request: malformed host or path.",
	"slow_body":            "Request body arrived too slowly.",
	"login":                "Too many login attempts for this account: retry after the time in Retry-After.",
}

// rewrite builds the upstream request: forwarding headers the guard
// vouches for, the client's Host kept.
func (g *Guard) rewrite(pr *httputil.ProxyRequest) {
	in := pr.In
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	peer := peerAddr(in.RemoteAddr)
	xff, fwd := g.resolver.Outbound(peer, in.Header, proto, in.Host)
	// The keys are canonical already (net/http parsed the header into
	// canonical keys), so the map is written directly: Set and Del would
	// canonicalise each key again on every request.
	h := pr.Out.Header
	h["X-Forwarded-For"] = []string{xff}
	h["Forwarded"] = []string{fwd}
	if g.resolver.IsTrusted(peer) {
		if p := in.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			proto = p
		}
	}
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Host"] = []string{in.Host}
	// Headers some upstreams read as the client address: the guard's
	// answer replaces whatever the client sent.
	for _, k := range spoofable {
		delete(h, k)
	}
	// CGI, WSGI and Rack read X_Real_IP as HTTP_X_REAL_IP, the same as
	// X-Real-IP: an underscore spelling of a header the guard sets must not
	// reach the upstream either.
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 && guardOwned(http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))) {
			delete(h, k)
		}
	}
	if st := stateOf(in.Context()); st != nil && st.client.IsValid() {
		h["X-Real-Ip"] = []string{st.client.String()}
	}
	pr.Out.Host = in.Host
	pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "upstream" // the pool sets the real one
}

// guardOwned reports whether the canonical header key k is one the guard
// sets or removes for the upstream.
func guardOwned(k string) bool {
	switch k {
	case "X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host":
		return true
	}
	return slices.Contains(spoofable, k)
}

// spoofable are client-address headers that only the guard may set, in
// their canonical forms (http.CanonicalHeaderKey: "X-Real-Ip").
var spoofable = []string{"X-Real-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "X-Client-Ip", "X-Cluster-Client-Ip", "Fastly-Client-Ip"}

// proxyError answers a request the upstream side could not serve.
func (g *Guard) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(st.clientBodyErr(), errSlowBody):
		g.refuse(w, st, "slow_body", http.StatusRequestTimeout, 0)
	case errors.As(st.clientBodyErr(), &tooBig), errors.As(err, &tooBig):
		g.refuse(w, st, "body_size", http.StatusRequestEntityTooLarge, 0)
	case r.Context().Err() != nil:
		// The client went away; nobody is left to answer.
		if lw, ok := w.(interface{ setStatus(int) }); ok {
			lw.setStatus(499)
		}
	case isTimeout(err):
		g.log.Debug("guard: upstream timeout", "site", siteName(st), "error", err)
		http.Error(w, "Gateway timeout: the site did not answer in time.", http.StatusGatewayTimeout)
	default:
		g.log.Debug("guard: upstream error", "site", siteName(st), "error", err)
		http.Error(w, "Bad gateway: the site is not reachable.", http.StatusBadGateway)
	}
}

func siteName(st *reqState) string {
	if st == nil || st.site == nil {
		return ""
	}
	return st.site.name
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// peerAddr parses a request's RemoteAddr.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// bufferPool lends the proxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
