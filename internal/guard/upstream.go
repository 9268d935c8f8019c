package guard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Upstream selection: round robin over a site's upstreams, with passive
// health. An upstream whose transport fails (refused, reset, timed out)
// FailAfter times in a row is skipped for FailTimeout; the first success
// clears its count. When every upstream is down the one that went down
// first is tried anyway, so a site recovers without waiting out the
// timeout when its only upstream comes back. A request that failed to
// connect never reached the upstream, so when it has no body it is tried
// once on each other upstream before the client sees an error.

type upstream struct {
	url       *url.URL
	prefix    string // the escaped path prefix (fast path)
	dial      string // host:port, the port 80 when the URL has none (fast path)
	fails     atomic.Int32
	downUntil atomic.Int64 // unix nanoseconds; 0: up
	idle      idleConns    // the fast path's idle connections (upconn.go)
}

type pool struct {
	ups         []*upstream
	next        atomic.Uint32
	failAfter   int32
	failTimeout time.Duration
	now         func() time.Time
	base        http.RoundTripper
	onChange    func(u *upstream, up bool) // metrics; may be nil
}

func newPool(urls []string, failAfter int, failTimeout time.Duration, now func() time.Time, base http.RoundTripper) (*pool, error) {
	p := &pool{failAfter: int32(failAfter), failTimeout: failTimeout, now: now, base: base}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("upstream %q: not an http:// or https:// URL", s)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		dial := u.Host
		if u.Port() == "" {
			dial = net.JoinHostPort(u.Hostname(), "80")
		}
		p.ups = append(p.ups, &upstream{url: u, prefix: u.EscapedPath(), dial: dial})
	}
	if len(p.ups) == 0 {
		return nil, errors.New("no upstreams")
	}
	return p, nil
}

func (p *pool) up(u *upstream, now int64) bool {
	d := u.downUntil.Load()
	return d == 0 || now >= d
}

// pick returns the next upstream in turn that is up and not in tried.
func (p *pool) pick(tried []*upstream) *upstream {
	now := p.now().UnixNano()
	n := uint32(len(p.ups))
	start := p.next.Add(1) - 1
	var fallback *upstream
	for i := range n {
		u := p.ups[(start+i)%n]
		if slices.Contains(tried, u) {
			continue
		}
		if p.up(u, now) {
			return u
		}
		if fallback == nil || u.downUntil.Load() < fallback.downUntil.Load() {
			fallback = u
		}
	}
	return fallback
}

func (p *pool) failed(u *upstream) {
	if u.fails.Add(1) >= p.failAfter {
		was := u.downUntil.Swap(p.now().Add(p.failTimeout).UnixNano())
		if was == 0 && p.onChange != nil {
			p.onChange(u, false)
		}
	}
}

func (p *pool) succeeded(u *upstream) {
	if u.fails.Load() != 0 {
		u.fails.Store(0)
	}
	if u.downUntil.Load() != 0 {
		if u.downUntil.Swap(0) != 0 && p.onChange != nil {
			p.onChange(u, true)
		}
	}
}

// RoundTrip sends req (whose URL holds only the path and query) to an
// upstream, failing over on connection errors as described above.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	var tried []*upstream
	replayable := req.Body == nil || req.Body == http.NoBody // the proxy sends no body as nil
	for {
		u := p.pick(tried)
		if u == nil {
			return nil, errNoUpstream
		}
		tried = append(tried, u)
		// A shallow copy with its own URL: the header is the proxy's own
		// copy already (ReverseProxy cloned it), and a RoundTripper does
		// not change it, so a deep Clone per request only made garbage.
		out := new(http.Request)
		*out = *req
		url := *req.URL
		out.URL = &url
		out.URL.Scheme = u.url.Scheme
		out.URL.Host = u.url.Host
		if u.url.Path != "" {
			// Join the escaped forms, so an encoded slash in the
			// request stays encoded (dot segments were refused before).
			out.URL.Path = u.url.Path + req.URL.Path
			out.URL.RawPath = u.url.EscapedPath() + req.URL.EscapedPath()
		}
		if st := stateOf(req.Context()); st != nil {
			st.upstream = u.url.Host
		}
		resp, err := p.base.RoundTrip(out)
		if err == nil {
			p.succeeded(u)
			return resp, nil
		}
		if req.Context().Err() != nil || stateOf(req.Context()).clientBodyErr() != nil || isClientBodyError(err) {
			return nil, err // the client went away or its body failed: not the upstream's fault
		}
		p.failed(u)
		if !replayable || !isDialError(err) || len(tried) == len(p.ups) {
			return nil, err
		}
	}
}

var errNoUpstream = errors.New("no upstream")

// isClientBodyError reports whether err came from reading the client's
// request body (too large, too slow), which says nothing of the upstream.
func isClientBodyError(err error) bool {
	var tooBig *http.MaxBytesError
	return errors.Is(err, errSlowBody) || errors.As(err, &tooBig)
}

// isDialError reports whether err happened before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// newTransport is the upstream transport: many idle connections per
// upstream (http.DefaultTransport keeps two, which caps a proxy's
// throughput), no transparent compression (Accept-Encoding passes through
// as the client sent it), and no proxy from the environment.
func newTransport(dial, responseHeader time.Duration, idle int) *http.Transport {
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dial,
		ResponseHeaderTimeout: responseHeader,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
}
