package guard

import (
	"bufio"

	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/detect"
)

// logWriter records the status and size of a response for the access log
// and metrics. It passes Flush and Hijack through (Unwrap), so streaming
// and WebSocket upgrades work behind it.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	// stall bounds each write (slow read: a client that stops reading a
	// response cannot hold its request forever); 0: unbounded.
	stall time.Duration
	ctl   *http.ResponseController
	st    *reqState
	// account is the response header in which the upstream names the
	// account (recorded in st.user, removed from the response); "": none.
	account string
	// upgradeIdle closes a hijacked (upgraded) connection that carries
	// nothing either way for this long; 0: never.
	upgradeIdle time.Duration
}

func (w *logWriter) WriteHeader(code int) {
	if w.account != "" {
		h := w.Header()
		if v := h.Get(w.account); v != "" && w.st.user == "" {
			w.st.user = clip(v)
		}
		h.Del(w.account)
	}
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.stall > 0 {
		_ = w.ctl.SetWriteDeadline(time.Now().Add(w.stall))
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// endStall clears the write deadline once the response is done, so it
// cannot fire on the server's own writes for a later request on the same
// connection (such as "100 Continue").
func (w *logWriter) endStall() {
	if w.stall > 0 {
		_ = w.ctl.SetWriteDeadline(time.Time{})
	}
}

func (w *logWriter) setStatus(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// Flush implements http.Flusher, which the proxy uses for streaming.
func (w *logWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Hijack implements http.Hijacker for WebSocket pass-through. The
// connection returned ends when idle for upgradeIdle: the proxy copies
// both directions through it, so its reads and writes are all the
// connection's traffic.
func (w *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.setStatus(http.StatusSwitchingProtocols)
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil || w.upgradeIdle <= 0 {
		return c, rw, err
	}
	ic := &idleConn{Conn: c, idle: w.upgradeIdle}
	ic.touch()
	return ic, rw, nil
}

// idleConn pushes its deadline (both directions) back on every read or
// write that moves data, so it expires only after idle without traffic.
type idleConn struct {
	net.Conn
	idle time.Duration
	last atomic.Int64 // when the deadline was last pushed, Unix nanoseconds
}

func (c *idleConn) touch() {
	now := time.Now()
	// Pushing costs a timer update: at most ten times per idle period.
	if now.UnixNano()-c.last.Load() < int64(c.idle/10) {
		return
	}
	c.last.Store(now.UnixNano())
	_ = c.Conn.SetDeadline(now.Add(c.idle))
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one JSON object per line.
type accessLog struct {
	mu sync.Mutex
	w  io.Writer
}

// accessEntry is one access-log line (docs/guard.md lists the fields).
type accessEntry struct {
	Time      string  `json:"time"`
	Site      string  `json:"site,omitempty"`
	Client    string  `json:"client"`
	Peer      string  `json:"peer,omitempty"`
	Method    string  `json:"method"`
	Host      string  `json:"host"`
	URI       string  `json:"uri"`
	Proto     string  `json:"proto"`
	Status    int     `json:"status"`
	Bytes     int64   `json:"bytes"`
	Duration  float64 `json:"duration_ms"`
	Upstream  string  `json:"upstream,omitempty"`
	Blocked   string  `json:"blocked,omitempty"`
	UserAgent string  `json:"user_agent,omitempty"`
	Referer   string  `json:"referer,omitempty"`
	TLS       bool    `json:"tls,omitempty"`
	BodyBytes int64   `json:"request_bytes,omitempty"`
	WAFRules  []int   `json:"waf_rules,omitempty"`
	Account   string  `json:"account,omitempty"`
}

// maxLogField caps what one attacker-chosen field adds to a log line.
const maxLogField = 2048

func clip(s string) string {
	if len(s) > maxLogField {
		return s[:maxLogField] + "…"
	}
	return s
}

func (l *accessLog) write(e *accessEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
}

// signal passes what detection counts to the scenarios.
func (g *Guard) signal(st *reqState, site string, status int, path func() string) {
	kind := "http"
	switch st.blocked {
	case "deny", "ban":
		return // already kept out: counting them would only re-ban
	case "waf":
		kind = "waf"
	case "rate", "requests_in_progress":
		kind = "limit"
	case "login":
		kind = "login_limit"
	default:
		if status < 400 {
			return
		}
	}
	g.signals(detect.Signal{
		Time: st.start, Source: st.client, From: detect.FromGuard, Kind: kind,
		Status: status, Site: site, Path: path(), User: st.account,
	})
}

// finish records a request served through net/http in the access log and
// metrics.
func (g *Guard) finish(w *logWriter, r *http.Request, st *reqState) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	e := g.record(st, status, w.bytes, func() string { return r.URL.Path })
	if e == nil {
		return
	}
	e.Method = clip(r.Method)
	e.Host = clip(r.Host)
	e.URI = clip(r.RequestURI)
	e.Proto = r.Proto
	e.UserAgent = clip(r.UserAgent())
	e.Referer = clip(r.Referer())
	e.TLS = r.TLS != nil
	if r.ContentLength > 0 {
		e.BodyBytes = r.ContentLength
	}
	g.access.write(e)
}

// record counts a finished request in the metrics, the login endpoints'
// accounts and the detection signals (path gives its path, asked only
// when a signal goes out), and returns the access log entry to complete
// with the request's own fields and write, or nil when there is no access
// log.
func (g *Guard) record(st *reqState, status int, bytes int64, path func() string) *accessEntry {
	site := siteName(st)
	g.metrics.request(site, status)
	if st.login != nil && st.blocked == "" && st.login.succeeded(status) && st.account != "" {
		g.accounts.Seen(site, st.account, st.start)
	}
	if g.signals != nil {
		g.signal(st, site, status, path)
	}
	if g.access == nil {
		return nil
	}
	e := &accessEntry{
		Time:     st.start.UTC().Format(time.RFC3339Nano),
		Site:     site,
		Client:   st.client.String(),
		Status:   status,
		Bytes:    bytes,
		Duration: float64(g.now().Sub(st.start).Microseconds()) / 1000,
		Upstream: st.upstream,
		Blocked:  st.blocked,
	}
	if st.peer != st.client {
		e.Peer = st.peer.String()
	}
	e.WAFRules = st.wafRules
	e.Account = st.user
	if e.Account == "" {
		e.Account = clip(st.account)
	}
	return e
}
