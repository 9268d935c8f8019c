package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

const adminPassword = "correct-horse-battery-staple-42"

// clock is a settable time source shared by every capability in a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one real API server over a real database.
type env struct {
	t        testing.TB
	db       *store.DB
	clock    *clock
	srv      *httptest.Server
	api      *api.Server
	identity *identity.Service
	access   *access.Store
	audit    *audit.Log
	events   *events.Bus
	client   *http.Client
}

func migrations() []store.Migrations {
	return []store.Migrations{identity.Migrations, access.Migrations, audit.Migrations, events.Migrations, continuity.Migrations}
}

// each runs f on a fresh server over SQLite and over PostgreSQL.
func each(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	storetest.Each(t, func(t *testing.T, db *store.DB) { f(t, newEnv(t, db)) }, migrations()...)
}

func newEnv(t testing.TB, db *store.DB) *env {
	t.Helper()
	return newEnvWith(t, db, nil)
}

// newEnvWith is newEnv with a hook that completes the API's dependencies
// (given the env's capabilities) before the server starts.
func newEnvWith(t testing.TB, db *store.DB, deps func(*env, *api.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, clock: clk}
	e.audit = audit.New(db, key, audit.Options{CheckpointEvery: 10, Now: clk.Now})
	e.access = access.NewStore(db, clk.Now)
	e.events = events.NewBus(db, events.Options{Now: clk.Now})
	t.Cleanup(func() { e.events.Close(context.Background()) })
	wa, err := identity.NewWebAuthn(identity.WebAuthnConfig{RPID: "localhost", RPName: "Bulwark", Origins: []string{"https://localhost:8443"}, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ic := identity.DefaultConfig()
	ic.Argon2 = identity.MinimumArgon2
	ic.Now = clk.Now
	ic.WebAuthn = wa
	ic.Throttle.LockoutAfter = 8
	e.identity, err = identity.New(db, e.access, ic)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.identity.EnsureAdmin(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	d := api.Deps{Identity: e.identity, Access: e.access, Audit: e.audit, Events: e.events, Now: clk.Now,
		MaxBodyBytes: 64 << 10, MetricsPublic: true, Ready: func(ctx context.Context) error { return db.PingContext(ctx) }, Version: "test"}
	if deps != nil {
		deps(e, &d)
	}
	e.api = api.New(d)
	e.srv = httptest.NewTLSServer(e.api)
	t.Cleanup(e.srv.Close)
	e.client = e.srv.Client()
	return e
}

// response is a decoded API answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errCode returns the error code of an error body ("" when none).
func (r response) errCode() string {
	var b struct {
		Error struct{ Code, Message, Field string }
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// errField returns the field an error body names ("" when none).
func (r response) errField() string {
	var b struct {
		Error struct{ Field string }
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Field
}

// do sends a request with an optional bearer token and JSON body (a string
// is sent as is, anything else is marshalled).
func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// want fails the test unless r has the status.
func (e *env) want(r response, status int) response {
	e.t.Helper()
	if r.Status != status {
		e.t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// login signs in and returns the session token.
func (e *env) login(user, password string) string {
	e.t.Helper()
	r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": user, "password": password}), 200)
	var out struct{ Token string }
	r.json(e.t, &out)
	if out.Token == "" {
		e.t.Fatalf("login %s: no token in %s", user, r.Body)
	}
	return out.Token
}

// mkuser creates a user with roles through the API and returns its token.
func (e *env) mkuser(admin, name string, roles ...string) string {
	e.t.Helper()
	var rb []access.RoleBinding
	for _, r := range roles {
		rb = append(rb, access.RoleBinding{Role: r})
	}
	e.want(e.do("POST", "/api/v1/users", admin, map[string]any{"username": name, "password": "pw-" + name + "-long-enough-1", "roles": rb}), 201)
	return e.login(name, "pw-"+name+"-long-enough-1")
}

// auditCount counts entries of an action (prefix) and result.
func (e *env) auditCount(action, result string) int {
	e.t.Helper()
	es, err := e.audit.Query(context.Background(), audit.Filter{Action: action, Result: result, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(es)
}
