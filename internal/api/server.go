// Package api is Bulwark's JSON HTTP API. Every route is declared once in
// the route table (routes.go) with the access it needs: public, any signed-in
// user acting on themselves, or a (module, level) pair checked against the
// caller's grants before the handler runs. The same table drives the router,
// the OpenAPI document and the test that refuses undeclared routes.
//
// Errors are mapped to status codes in one place (errors.go). Every request
// that changes data, every sign-in attempt and every read of the audit log is
// appended to the audit log with its outcome.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the capabilities the API serves.
type Deps struct {
	Identity *identity.Service
	Access   *access.Store
	Audit    *audit.Log
	Events   *events.Bus
	Logger   *slog.Logger
	Now      func() time.Time
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// PageSizeMax caps list page sizes (default 500).
	PageSizeMax int
	// Ready reports whether the server can serve (database reachable).
	Ready func(ctx context.Context) error
	// Registry receives the API's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// MetricsPublic serves /metrics without authentication.
	MetricsPublic bool
	// AuditVerifyOptions are passed to audit verification requests.
	AuditVerifyOptions audit.VerifyOptions
	// TrustedProxies may set X-Forwarded-For (none by default).
	TrustedProxies []netip.Prefix
	// Version is shown by /healthz.
	Version string
	// Continuity serves the backup policies (nil: none configured) and
	// Scheduler starts their jobs on demand (nil: refused with 503).
	Continuity *continuity.Service
	Scheduler  *continuity.Scheduler
	// Bans are the guard's ban decisions (nil: refused with 503).
	Bans *detect.Bans
	// Rules are the guard's runtime list entries and shaping rules (nil:
	// refused with 503); GuardHost reports whether a configured site
	// answers a host name, which a shaping rule's sites must (nil: not
	// checked).
	Rules     *rules.Rules
	GuardHost func(host string) bool
	// Integrity is file-integrity monitoring when enabled (nil: its
	// status is refused with 503).
	Integrity *integrity.Service
	// Monitor is supervision and Notifier its notifications, when
	// monitor.enabled (nil: 503).
	Monitor  *monitor.Service
	Notifier *notify.Notifier
	// StatusPages serves the public status pages at /status (nil: 404).
	StatusPages http.Handler
	// Report makes the security-practices report (nil: 503), and Trust
	// is the public page of the practices published at /trust (nil or
	// none published: 404).
	Report func(ctx context.Context) (report.Report, error)
	// Guard is the guard's configuration and Protection the edge's last
	// recorded state (nil: none), for GET /api/v1/guard/status.
	Guard      config.Guard
	Protection func() (*report.Protection, error)
	// GuardMetrics gathers the guard's own series only (nil: none), so
	// the status does not run every collector of Registry (host metrics).
	GuardMetrics prometheus.Gatherer
	Trust        *TrustPage
}

// Server is the API's http.Handler.
type Server struct {
	d        Deps
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	routes   []Route
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// auditFailures counts requests whose audit entry could not be written;
	// any non-zero value deserves an alert.
	auditFailures prometheus.Counter
}

// New builds the API server and its router.
func New(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.PageSizeMax <= 0 {
		d.PageSizeMax = 500
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{d: d, log: d.Logger, now: d.Now, mux: http.NewServeMux()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulwark_api_requests_total", Help: "API requests by route and status class.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bulwark_api_request_duration_seconds", Help: "API request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	}, []string{"route"})
	s.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bulwark_audit_append_failures_total", Help: "API requests whose audit entry could not be appended.",
	})
	for _, c := range []prometheus.Collector{s.requests, s.latency, s.auditFailures} {
		if err := d.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				s.log.Warn("register metric", "err", err)
			}
		}
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + r.URL.Path + " (see /api/v1/openapi.json)"})
	})
	return s
}

// Routes returns the route table (for tests and documentation).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

// Auth kinds of a route.
const (
	// Public routes need no credentials.
	Public = "public"
	// Self routes need a signed-in user and act on that user only.
	Self = "self"
	// Perm routes need the route's (Module, Level) grant.
	Perm = "perm"
)

// Route declares one endpoint and the access it requires.
type Route struct {
	Method  string
	Pattern string
	// Auth is Public, Self or Perm.
	Auth string
	// Module and Level are required when Auth is Perm. Module ModuleAny
	// means "read on at least one module"; the handler filters by module.
	Module access.Module
	Level  access.Level
	// Action names the audit action, e.g. "user.create". Routes that change
	// data are audited; so are GET routes with AuditRead.
	Action    string
	AuditRead bool
	// Restricted routes stay usable by a session that must first enrol a
	// second factor.
	Restricted bool
	// Unscoped Perm routes act on things that carry no tags (roles,
	// grants, settings, everyone's tokens, the whole audit log): a
	// tag-scoped grant does not reach them, and any deny on the module at
	// that level refuses them.
	Unscoped bool
	// SessionOnly routes change the caller's own credentials; an API
	// token, whatever its roles, may not call them.
	SessionOnly bool
	Summary     string
	Handler     func(w http.ResponseWriter, r *http.Request, c *Call) error
	// Request and Response are example values documenting the bodies in
	// the OpenAPI document (nil when none).
	Request, Response any
}

// ModuleAny marks routes open to anyone who may read some module.
const ModuleAny access.Module = "any"

// Call carries the per-request state handlers need.
type Call struct {
	Route     *Route
	Source    string
	Auth      *identity.Auth
	Principal *access.Principal
	// Resource and Details feed the audit entry.
	Resource string
	Details  map[string]any
	// Actor overrides the audit actor (sign-in attempts name the account).
	Actor string
	// skipAudit is set by handlers that write their own audit entry.
	skipAudit bool
}

// recorder captures the status for metrics and the audit entry.
type recorder struct {
	http.ResponseWriter
	status int
	err    error
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (audit export) push data.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// clientAddr returns the client's address. X-Forwarded-For is believed
// only when the TCP peer is a configured trusted proxy, and then read from
// the right: the first address that is not itself a trusted proxy is the
// client (addresses further left were written by the client and prove
// nothing).
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.d.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// wrap applies body limits, authentication, authorization, auditing and
// metrics around a route's handler.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		c := &Call{Route: &rt, Source: s.clientAddr(r)}
		r.Body = http.MaxBytesReader(rec, r.Body, s.d.MaxBodyBytes)
		err := s.authorize(r, rt, c)
		if err == nil {
			err = rt.Handler(rec, r, c)
		}
		if err != nil {
			s.writeError(rec, r, err)
		}
		if rec.status == 0 {
			rec.WriteHeader(http.StatusNoContent)
		}
		s.audit(r, rt, c, rec)
		s.requests.WithLabelValues(rt.Method+" "+rt.Pattern, strconv.Itoa(rec.status/100)+"xx").Inc()
		s.latency.WithLabelValues(rt.Method + " " + rt.Pattern).Observe(time.Since(start).Seconds())
	})
}

// bearer extracts the credential from the Authorization header or the
// session cookie.
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	if ck, err := r.Cookie(SessionCookie); err == nil {
		return ck.Value
	}
	return ""
}

// SessionCookie names the browser session cookie.
const SessionCookie = "bulwark_session"

func (s *Server) authorize(r *http.Request, rt Route, c *Call) error {
	if rt.Auth == Public {
		return nil
	}
	tok := bearer(r)
	if tok == "" {
		return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "sign in first: send Authorization: Bearer TOKEN (POST /api/v1/auth/login returns one)"}
	}
	// A cookie-authenticated browser request that changes data must come
	// from our own origin (SameSite=Strict already blocks most CSRF).
	if r.Header.Get("Authorization") == "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
			return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "cross-origin request refused"}
		}
	}
	a, err := s.d.Identity.Authenticate(r.Context(), tok)
	if err != nil {
		return err
	}
	c.Auth = &a
	if a.Restricted && !rt.Restricted {
		return &Error{Status: http.StatusForbidden, Code: "mfa_enrollment_required", Message: "two-factor authentication is required for your account: enrol TOTP (POST /api/v1/me/totp) or a security key, then sign in again"}
	}
	roles, grants, err := s.d.Access.EffectiveGrants(r.Context(), a.User.ID, a.TokenRoles)
	if err != nil {
		return err
	}
	c.Principal = &access.Principal{UserID: a.User.ID, Username: a.User.Username, Roles: roles, Grants: grants, TokenID: a.TokenID}
	if rt.SessionOnly && a.TokenID != "" {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "API tokens cannot change credentials; sign in with your password"}
	}
	if rt.Auth != Perm {
		return nil
	}
	now := s.now()
	if rt.Unscoped {
		return c.Principal.Authorize(now, access.Request{Module: rt.Module, Level: rt.Level, Global: true})
	}
	if rt.Module == ModuleAny {
		for _, m := range access.Modules() {
			if c.Principal.Can(now, m, rt.Level) {
				return nil
			}
		}
		return fmt.Errorf("%w: you may not %s any module", access.ErrDenied, rt.Level)
	}
	return c.Principal.Authorize(now, access.Request{Module: rt.Module, Level: rt.Level})
}

func sameOrigin(origin string, r *http.Request) bool {
	return strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://") == r.Host
}

// audit appends the request's entry when the route is audited.
func (s *Server) audit(r *http.Request, rt Route, c *Call, rec *recorder) {
	if c.skipAudit || s.d.Audit == nil {
		return
	}
	if rt.Method == http.MethodGet && !rt.AuditRead {
		return
	}
	actor := c.Actor
	if actor == "" && c.Auth != nil {
		actor = "user:" + c.Auth.User.Username
		if c.Auth.TokenID != "" {
			actor += " token:" + c.Auth.TokenID
		}
	}
	if actor == "" {
		actor = "anonymous"
	}
	result := "ok"
	switch {
	case rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden:
		result = "denied"
	case rec.status >= 500:
		result = "error"
	case rec.status >= 400:
		result = "failed"
	}
	details := map[string]any{"method": r.Method, "path": r.URL.Path, "status": rec.status}
	for k, v := range c.Details {
		details[k] = v
	}
	if rec.err != nil && rec.status < 500 {
		details["error"] = rec.err.Error()
	}
	e := audit.Entry{Actor: actor, Source: c.Source, Action: rt.Action, Resource: c.Resource, Result: result, Details: details}
	// The request's context may already be cancelled; the entry must land.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if _, err := s.d.Audit.Append(ctx, e); err != nil {
		s.auditFailures.Inc()
		s.log.Error("audit append failed", "action", rt.Action, "err", err)
	}
}

// decode reads a JSON body strictly: unknown fields, trailing data and
// oversized bodies are errors naming the problem.
func decode(r *http.Request, v any) error {
	// Requiring application/json stops cross-site HTML forms (which can
	// only send form or text/plain bodies without a preflight) from
	// posting to JSON endpoints, such as a login CSRF.
	if ct := r.Header.Get("Content-Type"); ct != "" || r.ContentLength != 0 {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send the body as JSON with Content-Type: application/json"}
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
		case errors.Is(err, io.EOF):
			return badRequest("", "request body is empty; send a JSON object")
		case errors.As(err, &se):
			return badRequest("", "malformed JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return badRequest(te.Field, "field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(f, "unknown field %q", f)
		}
		return badRequest("", "malformed JSON: %v", err)
	}
	if dec.More() {
		return badRequest("", "trailing data after the JSON object")
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
		}
	}
	return nil
}

// page parses ?limit= and ?after= pagination parameters.
func (s *Server) page(r *http.Request) (after string, limit int, err error) {
	limit = 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.d.PageSizeMax {
			return "", 0, badRequest("limit", "limit must be an integer from 1 to %d", s.d.PageSizeMax)
		}
		limit = n
	}
	return r.URL.Query().Get("after"), limit, nil
}

// List is the envelope of paginated lists: pass Next as ?after= to get the
// next page; it is empty on the last page.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}
