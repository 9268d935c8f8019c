package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/certs"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/identity"
)

const testAdminPassword = "violet-anchor-meadow-7391"

// testClock is the server's clock, moved by hand so TOTP steps are exact.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testServer is a real control plane serving HTTPS on a loopback port.
type testServer struct {
	app      *app.App
	url      string
	certFile string
	fp       string
	clock    *testClock
}

func startAPIServer(t *testing.T) *testServer {
	t.Helper()
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	ctx, cancel := context.WithCancel(context.Background())
	data := t.TempDir()
	a, err := app.Open(ctx, app.Options{DataDir: data, Listen: "127.0.0.1:0", LogLevel: "error", Stderr: testWriter{t}, Now: clock.Now,
		Getenv: func(k string) string {
			if k == "BULWARK_ADMIN_PASSWORD" {
				return testAdminPassword
			}
			return ""
		}})
	if err != nil {
		cancel()
		t.Fatalf("app.Open: %v", err)
	}
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- a.Serve(ctx, app.ServeOptions{Out: testWriter{t}, OnListen: func(addr string) { addrc <- addr }})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		a.Close()
		t.Fatalf("Serve returned before listening: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cert := filepath.Join(data, "tls", "cert.pem")
	fp, err := certs.CertFingerprint(cert)
	if err != nil {
		t.Fatalf("CertFingerprint: %v", err)
	}
	return &testServer{app: a, url: "https://" + addr, certFile: cert, fp: fp, clock: clock}
}

// testWriter sends server logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("server: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// cliEnv runs the CLI in-process with its own environment.
type cliEnv struct {
	t    *testing.T
	vars map[string]string
}

func newCLI(t *testing.T) *cliEnv {
	return &cliEnv{t: t, vars: map[string]string{"BULWARK_CLI_CONFIG": filepath.Join(t.TempDir(), "cfg", "cli.json")}}
}

// with returns a copy with one more variable.
func (c *cliEnv) with(k, v string) *cliEnv {
	n := &cliEnv{t: c.t, vars: map[string]string{}}
	for a, b := range c.vars {
		n.vars[a] = b
	}
	n.vars[k] = v
	return n
}

func (c *cliEnv) run(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return c.vars[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = run(ctx, e, args)
	return code, out.String(), errb.String()
}

func (c *cliEnv) config() cliConfig {
	c.t.Helper()
	b, err := os.ReadFile(c.vars["BULWARK_CLI_CONFIG"])
	if err != nil {
		c.t.Fatalf("read credentials: %v", err)
	}
	cfg, err := parseCLIConfig(b)
	if err != nil {
		c.t.Fatalf("parse credentials: %v", err)
	}
	return cfg
}

// step is one CLI invocation of a scenario.
type step struct {
	name       string
	cli        func() *cliEnv // nil: the scenario's default
	stdin      string
	args       func() []string
	wantCode   int
	wantStdout []string
	wantStderr []string
	check      func(t *testing.T, stdout, stderr string)
}

func args(a ...string) func() []string { return func() []string { return a } }

// runSteps runs the steps in order; a failing step stops the scenario since
// later steps depend on it.
func runSteps(t *testing.T, def *cliEnv, steps []step) {
	t.Helper()
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			c := def
			if s.cli != nil {
				c = s.cli()
			}
			a := s.args()
			code, stdout, stderr := c.run(s.stdin, a...)
			if code != s.wantCode {
				t.Fatalf("bulwark %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(a, " "), code, s.wantCode, stdout, stderr)
			}
			for _, w := range s.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("bulwark %s: stdout lacks %q; got:\n%s", strings.Join(a, " "), w, stdout)
				}
			}
			for _, w := range s.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("bulwark %s: stderr lacks %q; got:\n%s", strings.Join(a, " "), w, stderr)
				}
			}
			if s.check != nil {
				s.check(t, stdout, stderr)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
}

func TestClientAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := startAPIServer(t)
	cli := newCLI(t)
	var grantID, apiToken, tokenID, sessionToken, bobPassword string

	if _, err := srv.app.Events.Publish(context.Background(), events.Event{Type: events.TypeBackupFailed, Severity: events.SeverityError,
		Module: events.ModuleBackups, Actor: "system:test", Resource: "policy/web", Message: "backup of web failed: disk full"}); err != nil {
		t.Fatalf("publish event: %v", err)
	}
	if _, err := srv.app.Events.Publish(context.Background(), events.Event{Type: events.TypeBanAdded, Severity: events.SeverityInfo,
		Module: events.ModuleGuard, Actor: "system:test", Message: "banned 192.0.2.1"}); err != nil {
		t.Fatalf("publish event: %v", err)
	}

	runSteps(t, cli, []step{
		{name: "me before login", args: args("me", "--server", srv.url), wantCode: 2,
			wantStderr: []string{"not signed in to " + srv.url, "bulwark login"}},
		{name: "login", stdin: testAdminPassword + "\n", args: args("login", "--server", srv.url, "--username", "admin", "--ca", srv.certFile, "--password-stdin"),
			wantStdout: []string{"Signed in to " + srv.url + " as admin"},
			check: func(t *testing.T, _, _ string) {
				cfg := cli.config()
				sessionToken = cfg.Token
				if cfg.Token == "" || cfg.Server != srv.url || cfg.Username != "admin" || cfg.CAFile != srv.certFile || cfg.Fingerprint != "" {
					t.Errorf("stored credentials = %+v; want server %s, user admin, a token, ca_file %s, no pin", cfg, srv.url, srv.certFile)
				}
				for path, want := range map[string]os.FileMode{cli.vars["BULWARK_CLI_CONFIG"]: 0o600, filepath.Dir(cli.vars["BULWARK_CLI_CONFIG"]): 0o700} {
					st, err := os.Stat(path)
					if err != nil {
						t.Fatal(err)
					}
					if got := st.Mode().Perm(); got != want {
						t.Errorf("mode of %s = %04o, want %04o", path, got, want)
					}
				}
			}},
		{name: "me", args: args("me"), wantStdout: []string{"user:     admin", "roles:    admin", "via:      session", "ROLE", "admin  "}},
		{name: "me json", args: args("me", "--json"), check: func(t *testing.T, stdout, _ string) {
			var me meAnswer
			if err := json.Unmarshal([]byte(stdout), &me); err != nil {
				t.Fatalf("me --json is not JSON: %v\n%s", err, stdout)
			}
			if diff := cmp.Diff([]string{"admin"}, me.Roles); me.User.Username != "admin" || diff != "" {
				t.Errorf("me --json: user %q roles diff (-want +got):\n%s", me.User.Username, diff)
			}
		}},
		{name: "role add", args: args("role", "add", "ops", "--description", "operations team", "--require-2fa"), wantStdout: []string{"Created role ops"}},
		{name: "role add twice", args: args("role", "add", "ops"), wantCode: 2, wantStderr: []string{"HTTP 409 conflict"}},
		{name: "role add bad name", args: args("role", "add", "Ops"), wantCode: 2, wantStderr: []string{"lowercase letter first"}},
		{name: "role set", args: args("role", "set", "ops", "--require-2fa=false"), wantStdout: []string{"Updated role ops", "requires 2FA:  no", "description:   operations team"}},
		{name: "role list", args: args("role", "list"), wantStdout: []string{"NAME", "admin", "auditor", "ops", "operations team"}},
		{name: "grant add", args: args("grant", "add", "ops", "backups", "operate", "--scope", "team=blue", "--expires", "72h", "--json"),
			check: func(t *testing.T, stdout, _ string) {
				var g access.Grant
				if err := json.Unmarshal([]byte(stdout), &g); err != nil {
					t.Fatalf("grant add --json: %v\n%s", err, stdout)
				}
				if g.ID == 0 || g.Module != access.ModuleBackups || g.Level != access.LevelOperate || g.Scope.String() != "team=blue" || g.ExpiresAt.IsZero() {
					t.Errorf("grant = %+v; want backups operate on team=blue with an expiry", g)
				}
				grantID = fmt.Sprint(g.ID)
			}},
		{name: "grant add deny", args: args("grant", "add", "ops", "billing", "read", "--deny"), wantStdout: []string{"deny billing read on all resources"}},
		{name: "grant add bad level", args: args("grant", "add", "ops", "backups", "admin"), wantCode: 2, wantStderr: []string{`level "admin"`}},
		{name: "grant add to builtin", args: args("grant", "add", "admin", "backups", "read"), wantCode: 2, wantStderr: []string{"HTTP 409 builtin"}},
		{name: "grant list", args: args("grant", "list", "ops"), wantStdout: []string{"EFFECT", "allow", "backups", "operate", "team=blue", "deny", "billing"}},
		{name: "grant remove", args: func() []string { return []string{"grant", "remove", "ops", grantID} }, wantStdout: []string{"Removed grant"}},
		{name: "grant list after remove", args: args("grant", "list", "ops", "--json"), check: func(t *testing.T, stdout, _ string) {
			var l struct{ Items []access.Grant }
			if err := json.Unmarshal([]byte(stdout), &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != 1 || l.Items[0].Effect != access.EffectDeny {
				t.Errorf("grants after remove = %+v, want only the deny", l.Items)
			}
		}},
		{name: "user add", args: args("user", "add", "bob", "--role", "ops@72h", "--role", "auditor", "--tag", "team=blue", "--display-name", "Bob \x1b[31mRed", "--email", "bob@example.net"),
			wantStdout: []string{"Created user bob", "ops (until", "password: "}, wantStderr: []string{"shown once"},
			check: func(t *testing.T, stdout, _ string) {
				for _, l := range strings.Split(stdout, "\n") {
					if p, ok := strings.CutPrefix(l, "password: "); ok {
						bobPassword = p
					}
				}
				if len(bobPassword) < 20 {
					t.Errorf("generated password %q is too short", bobPassword)
				}
			}},
		{name: "user add weak password", stdin: "password\n", args: args("user", "add", "carol", "--password-stdin"), wantCode: 2, wantStderr: []string{"HTTP 400 invalid", "password"}},
		{name: "user list", args: args("user", "list"), wantStdout: []string{"USERNAME", "admin", "bob", "team=blue", "active"},
			check: func(t *testing.T, stdout, _ string) {
				if strings.Contains(stdout, "\x1b") {
					t.Errorf("user list printed a raw escape character from a display name:\n%q", stdout)
				}
				if !strings.Contains(stdout, `Bob \x1b[31mRed`) {
					t.Errorf("user list should show the escape character escaped; got:\n%s", stdout)
				}
			}},
		{name: "user list json", args: args("user", "list", "--json"), check: func(t *testing.T, stdout, _ string) {
			var l struct{ Items []identity.User }
			if err := json.Unmarshal([]byte(stdout), &l); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range l.Items {
				names = append(names, u.Username)
			}
			if diff := cmp.Diff([]string{"admin", "bob"}, names); diff != "" {
				t.Errorf("user list --json names (-want +got):\n%s", diff)
			}
		}},
		{name: "user show", args: args("user", "show", "bob"), wantStdout: []string{"username:      bob", "email:         bob@example.net", "tags:          team=blue", "ops (until", "auditor", "2FA:           none"}},
		{name: "user show missing", args: args("user", "show", "nobody"), wantCode: 2, wantStderr: []string{"HTTP 404 not_found"}},
		{name: "user set", args: args("user", "set", "bob", "--remove-role", "auditor", "--tag", "site=ams", "--disable"),
			wantStdout: []string{"Updated user bob", "status:        disabled", "team=blue", "site=ams"},
			check: func(t *testing.T, stdout, _ string) {
				if strings.Contains(stdout, "auditor") {
					t.Errorf("auditor role still shown after --remove-role:\n%s", stdout)
				}
			}},
		{name: "user set enable", args: args("user", "set", "bob", "--enable", "--untag", "site", "--json"), check: func(t *testing.T, stdout, _ string) {
			var u identity.User
			if err := json.Unmarshal([]byte(stdout), &u); err != nil {
				t.Fatal(err)
			}
			if u.Disabled || len(u.Roles) != 1 || u.Roles[0].Role != "ops" || u.Roles[0].ExpiresAt.IsZero() {
				t.Errorf("after enable: disabled=%v roles=%+v; want enabled, ops with its expiry kept", u.Disabled, u.Roles)
			}
			if diff := cmp.Diff(map[string]string{"team": "blue"}, u.Tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
		}},
		{name: "user set nothing", args: args("user", "set", "bob"), wantCode: 2, wantStderr: []string{"nothing to change"}},
		{name: "user set self disable", args: args("user", "set", "admin", "--disable"), wantCode: 2, wantStderr: []string{"HTTP 400 invalid", "(field disabled)"}},
		{name: "user passwd", stdin: "new-lantern-orbit-5521\n", args: args("user", "passwd", "bob", "--password-stdin"), wantStdout: []string{"Password of bob changed"}},
		{name: "user unlock", args: args("user", "unlock", "bob"), wantStdout: []string{"Unlocked bob"}},
		{name: "token create", args: args("token", "create", "ci", "--role", "admin", "--ttl", "1h"), wantStderr: []string{"warning: token ci", "shown once"},
			check: func(t *testing.T, stdout, _ string) {
				apiToken = strings.TrimSpace(stdout)
				if apiToken == "" || strings.Contains(apiToken, "\n") {
					t.Fatalf("token create stdout = %q, want the token alone on a line", stdout)
				}
			}},
		{name: "token list", args: args("token", "list", "--json"), check: func(t *testing.T, stdout, _ string) {
			var l struct{ Items []identity.APIToken }
			if err := json.Unmarshal([]byte(stdout), &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != 1 || l.Items[0].Name != "ci" {
				t.Fatalf("token list = %+v, want one token named ci", l.Items)
			}
			tokenID = l.Items[0].ID
		}},
		{name: "token list all", args: args("token", "list", "--all"), wantStdout: []string{"ID", "ci", "admin", "active"}},
		{name: "me with API token", cli: func() *cliEnv { return cli.with("BULWARK_TOKEN", apiToken) }, args: args("me"),
			wantStdout: []string{"user:     admin"}, check: func(t *testing.T, stdout, _ string) {
				if !strings.Contains(stdout, "via:      API token "+tokenID) {
					t.Errorf("me with BULWARK_TOKEN should say it runs as token %s; got:\n%s", tokenID, stdout)
				}
			}},
		{name: "API token cannot mint tokens", cli: func() *cliEnv { return cli.with("BULWARK_TOKEN", apiToken) }, args: args("token", "create", "x"),
			wantCode: 2, wantStderr: []string{"HTTP 403 forbidden"}},
		{name: "token revoke", args: func() []string { return []string{"token", "revoke", tokenID} }, wantStdout: []string{"Revoked token"}},
		{name: "revoked token refused", cli: func() *cliEnv { return cli.with("BULWARK_TOKEN", apiToken) }, args: args("me"),
			wantCode: 2, wantStderr: []string{"HTTP 401 unauthenticated"}},
		{name: "token revoke again", args: func() []string { return []string{"token", "revoke", tokenID, "--any"} }, wantCode: 2, wantStderr: []string{"HTTP 404"}},
		{name: "events", args: args("events"), wantStdout: []string{"SEVERITY", "backup.failed", "disk full", "ban.added"}},
		{name: "events filtered", args: args("events", "--type", "backup.", "--severity", "warning", "--since", "1h", "--json"), check: func(t *testing.T, stdout, _ string) {
			var l struct{ Items []events.Event }
			if err := json.Unmarshal([]byte(stdout), &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != 1 || l.Items[0].Type != events.TypeBackupFailed {
				t.Errorf("filtered events = %+v, want only the backup.failed event", l.Items)
			}
		}},
		{name: "events paged", args: args("events", "--type", "backup.", "--limit", "1"), wantStdout: []string{"backup.failed"}, wantStderr: []string{"more events: add --after"}},
		{name: "events bad severity", args: args("events", "--severity", "loud"), wantCode: 2, wantStderr: []string{"--severity"}},
		{name: "user delete needs yes", args: args("user", "delete", "bob"), wantCode: 2, wantStderr: []string{"--yes"}},
		{name: "user delete", args: args("user", "delete", "bob", "--yes"), wantStdout: []string{"Deleted user bob"}},
		{name: "role delete", args: args("role", "delete", "ops", "--yes"), wantStdout: []string{"Deleted role ops"}},
		{name: "stored token not sent to another server name", args: func() []string {
			return []string{"me", "--server", strings.Replace(srv.url, "127.0.0.1", "localhost", 1)}
		}, wantCode: 2, wantStderr: []string{"not signed in to https://localhost:", "the stored session is for " + srv.url}},
		{name: "logout", args: args("logout"), wantStdout: []string{"Signed out of " + srv.url},
			check: func(t *testing.T, _, _ string) {
				cfg := cli.config()
				if cfg.Token != "" || cfg.Server != srv.url || cfg.CAFile != srv.certFile {
					t.Errorf("after logout credentials = %+v; want no token, server and CA kept", cfg)
				}
			}},
		{name: "me after logout", args: args("me"), wantCode: 2, wantStderr: []string{"not signed in to " + srv.url, "bulwark login"}},
		{name: "old session refused", cli: func() *cliEnv { return cli.with("BULWARK_TOKEN", sessionToken) }, args: args("me"),
			wantCode: 2, wantStderr: []string{"HTTP 401"}},
		{name: "logout again", args: args("logout"), wantStdout: []string{"Not signed in"}},
	})
}

func TestLoginTrustOnFirstUse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := startAPIServer(t)
	cli := newCLI(t)
	pw := testAdminPassword + "\n"
	wrong := strings.Repeat("ab", 32)
	var firstSession string
	runSteps(t, cli, []step{
		{name: "untrusted refused", stdin: pw, args: args("login", "--server", srv.url, "--username", "admin"), wantCode: 2,
			wantStderr: []string{srv.fp, colonHex(srv.fp), "not signed by an authority", "--fingerprint " + srv.fp},
			check: func(t *testing.T, _, _ string) {
				if _, err := os.Stat(cli.vars["BULWARK_CLI_CONFIG"]); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused login wrote credentials (stat: %v)", err)
				}
			}},
		{name: "wrong fingerprint refused", stdin: pw, args: args("login", "--server", srv.url, "--username", "admin", "--fingerprint", wrong), wantCode: 2,
			wantStderr: []string{"does not match the pinned fingerprint", "server presented " + srv.fp}},
		{name: "trust pins", stdin: pw, args: args("login", "--server", srv.url, "--username", "admin", "--trust"),
			wantStdout: []string{"Signed in"}, wantStderr: []string{"pinning", srv.fp},
			check: func(t *testing.T, _, _ string) {
				cfg := cli.config()
				if cfg.Fingerprint != srv.fp || cfg.CAFile != "" {
					t.Errorf("stored pin = %q ca=%q, want pin %s and no CA", cfg.Fingerprint, cfg.CAFile, srv.fp)
				}
				firstSession = cfg.Token
			}},
		{name: "pinned me", args: args("me"), wantStdout: []string{"user:     admin"}},
		{name: "changed certificate refused", args: args("me"), wantCode: 2,
			cli: func() *cliEnv {
				// Simulate a swapped server certificate by changing the pin.
				cfg := cli.config()
				cfg.Fingerprint = wrong
				if err := saveCLIConfig(cli.vars["BULWARK_CLI_CONFIG"], cfg); err != nil {
					t.Fatal(err)
				}
				return cli
			},
			wantStderr: []string{"does not match the pinned fingerprint", "--fingerprint " + srv.fp}},
		{name: "trust does not override a pin", stdin: pw, args: args("login", "--trust"), wantCode: 2,
			wantStderr: []string{"does not match the pinned fingerprint"}},
		{name: "explicit fingerprint with colons", stdin: pw, args: args("login", "--fingerprint", colonHex(srv.fp)), wantStdout: []string{"Signed in to " + srv.url + " as admin"},
			check: func(t *testing.T, _, _ string) {
				if got := cli.config().Fingerprint; got != srv.fp {
					t.Errorf("stored pin = %q, want %q", got, srv.fp)
				}
			}},
		{name: "replaced session ended", cli: func() *cliEnv { return cli.with("BULWARK_TOKEN", firstSession) }, args: args("me"),
			wantCode: 2, wantStderr: []string{"HTTP 401"}},
		{name: "ca file that does not vouch", stdin: pw, args: args("login", "--ca", writeOtherCert(t)), wantCode: 2,
			wantStderr: []string{"certificate is not trusted"}},
		{name: "plain http refused", args: func() []string { return []string{"me", "--server", strings.Replace(srv.url, "https", "http", 1)} },
			wantCode: 2, wantStderr: []string{"refusing plain http"}},
		{name: "wrong password", stdin: "not-the-password-at-all\n", args: args("login"), wantCode: 2,
			wantStderr: []string{"sign in as admin: HTTP 401 bad_credentials"}},
	})
}

// writeOtherCert writes a self-signed certificate unrelated to the server.
func writeOtherCert(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cert, _, err := certs.EnsureSelfSigned(dir, "127.0.0.1:0", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestLoginSecondFactor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := startAPIServer(t)
	cli := newCLI(t)
	pw := testAdminPassword + "\n"
	if code, _, stderr := cli.run(pw, "login", "--server", srv.url, "--username", "admin", "--ca", srv.certFile, "--password-stdin"); code != 0 {
		t.Fatalf("login: exit %d: %s", code, stderr)
	}
	// Enrol TOTP through the API, as the console would.
	e := &Env{Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	c, err := newClient(e, srv.url, trust{caFile: srv.certFile}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.token = cli.config().Token
	ctx := context.Background()
	var enrol struct {
		Secret string `json:"secret"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/v1/me/totp", nil, nil, &enrol); err != nil {
		t.Fatalf("begin TOTP: %v", err)
	}
	secret, err := identity.DecodeTOTPSecret(enrol.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/api/v1/me/totp/confirm", nil, map[string]string{"code": identity.TOTPCode(secret, srv.clock.Now(), identity.DefaultTOTP)}, &rc); err != nil {
		t.Fatalf("confirm TOTP: %v", err)
	}
	if len(rc.RecoveryCodes) == 0 {
		t.Fatal("no recovery codes")
	}
	// nextCode moves the server's clock to a fresh TOTP step, since a code
	// is accepted once.
	nextCode := func() string {
		srv.clock.Advance(30 * time.Second)
		return identity.TOTPCode(secret, srv.clock.Now(), identity.DefaultTOTP)
	}
	runSteps(t, cli, []step{
		{name: "no code given", stdin: pw, args: args("login"), wantCode: 2, wantStderr: []string{"a second factor is required", "--totp"}},
	})
	// A step's stdin is fixed when the list is built, so the code for the
	// prompt is computed here, after the step above ran.
	code := nextCode()
	runSteps(t, cli, []step{
		{name: "code on the next line", stdin: pw + code + "\n", args: args("login"), wantStdout: []string{"Signed in"}, wantStderr: []string{"Authentication code"}},
		{name: "totp flag", stdin: pw, args: func() []string { return []string{"login", "--totp", nextCode()} }, wantStdout: []string{"Signed in"}},
		{name: "wrong totp", stdin: pw, args: args("login", "--totp", "000000"), wantCode: 2, wantStderr: []string{"HTTP 401 mfa_failed"}},
		{name: "recovery code", stdin: pw, args: args("login", "--recovery-code", rc.RecoveryCodes[0]), wantStdout: []string{"Signed in"},
			wantStderr: []string{"recovery code was used; 9 left"}},
		{name: "recovery code reused", stdin: pw, args: args("login", "--recovery-code", rc.RecoveryCodes[0]), wantCode: 2, wantStderr: []string{"HTTP 401"}},
		{name: "me", args: args("me"), wantStdout: []string{"2FA:      verified this session"}},
	})
}

// walk visits every command with its path.
func walk(c *Command, path string, fn func(c *Command, path string)) {
	fn(c, path)
	for _, s := range c.Subs {
		walk(s, path+" "+s.Name, fn)
	}
}

func TestCommandTreeDocumented(t *testing.T) {
	walk(root(), "bulwark", func(c *Command, path string) {
		t.Run(path, func(t *testing.T) {
			if c.Summary == "" {
				t.Errorf("%s has no Summary", path)
			}
			if len(c.Subs) > 0 {
				if c.Run != nil {
					t.Errorf("%s has both subcommands and Run; Run is never called", path)
				}
				return
			}
			if c.Run == nil {
				t.Fatalf("%s is a leaf without Run", path)
			}
			if c.Usage == "" || len(c.Examples) == 0 {
				t.Errorf("%s: Usage %q, %d examples; want both", path, c.Usage, len(c.Examples))
			}
			for _, ex := range c.Examples {
				if !strings.HasPrefix(ex, path) && !strings.Contains(ex, path+" ") {
					t.Errorf("%s: example %q does not run %s", path, ex, path)
				}
			}
			cli := newCLI(t)
			code, stdout, stderr := cli.run("", append(strings.Fields(path)[1:], "--help")...)
			if code != 0 {
				t.Fatalf("%s --help: exit %d, want 0; stderr: %s", path, code, stderr)
			}
			fs := flag.NewFlagSet(path, flag.ContinueOnError)
			if c.Flags != nil {
				c.Flags(fs)
			}
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(stdout, "-"+f.Name) {
					t.Errorf("%s --help does not mention -%s:\n%s", path, f.Name, stdout)
				}
				if f.Usage == "" {
					t.Errorf("%s: flag -%s has no description", path, f.Name)
				}
			})
			for _, want := range []string{c.Summary, "Usage:", "Examples:"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("%s --help lacks %q:\n%s", path, want, stdout)
				}
			}
		})
	})
}

func TestTopLevel(t *testing.T) {
	cli := newCLI(t)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{name: "help lists every command", args: []string{"--help"}, wantStdout: func() []string {
			var names []string
			for _, s := range root().Subs {
				names = append(names, "  "+s.Name+" ")
			}
			return names
		}()},
		{name: "no arguments shows help", args: nil, wantCode: 2, wantStdout: []string{"Commands:", "login"}},
		{name: "unknown command suggests", args: []string{"use"}, wantCode: 2, wantStderr: []string{`unknown command "use"`, `did you mean "user"?`}},
		{name: "unknown subcommand", args: []string{"user", "lst"}, wantCode: 2, wantStderr: []string{`unknown command "lst"`, "bulwark user --help"}},
		{name: "unknown flag", args: []string{"me", "--jsn"}, wantCode: 2, wantStderr: []string{"-jsn", "bulwark me --help"}},
		{name: "help subcommand", args: []string{"help", "login"}, wantStdout: []string{"--password-stdin", "Examples:"}},
		{name: "version", args: []string{"version"}, wantStdout: []string{runtime.Version()}},
		{name: "missing argument", args: []string{"user", "show"}, wantCode: 2, wantStderr: []string{"needs exactly one NAME"}},
		{name: "bad role expiry", args: []string{"user", "add", "x", "--role", "ops@yesterday"}, wantCode: 2, wantStderr: []string{`--role "ops@yesterday"`, "72h"}},
		{name: "bad tag", args: []string{"user", "add", "x", "--tag", "team"}, wantCode: 2, wantStderr: []string{"key=value"}},
		{name: "no server anywhere", args: []string{"user", "list"}, wantCode: 2, wantStderr: []string{"no server", "bulwark login --server URL"}},
		{name: "http to another host", args: []string{"me", "--server", "http://192.0.2.10:8443", "--insecure"}, wantCode: 2, wantStderr: []string{"only for a loopback address"}},
		{name: "trust with ca", args: []string{"login", "--server", "https://127.0.0.1:1", "--trust", "--ca", "x.pem"}, wantCode: 2, wantStderr: []string{"--trust"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli.run("", tt.args...)
			if code != tt.wantCode {
				t.Fatalf("bulwark %v: exit %d, want %d\nstdout: %s\nstderr: %s", tt.args, code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestCompletionBashParses(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	code, stdout, stderr := newCLI(t).run("", "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, stderr)
	}
	for _, w := range []string{"_bulwark", "complete -o default -F _bulwark bulwark", "--password-stdin", "grant"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("completion script lacks %q", w)
		}
	}
	file := filepath.Join(t.TempDir(), "bulwark.bash")
	if err := os.WriteFile(file, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", file).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
}

func TestNormalizeServer(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "127.0.0.1:8443", want: "https://127.0.0.1:8443"},
		{in: "https://CP.Example.net:8443/", want: "https://cp.example.net:8443"},
		{in: "https://cp.example.net/bulwark/", want: "https://cp.example.net/bulwark"},
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "", wantErr: true},
		{in: "ftp://x", wantErr: true},
		{in: "https://admin:pw@cp.example.net", wantErr: true},
		{in: "https://cp.example.net/?x=1", wantErr: true},
		{in: "https://", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeServer(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("normalizeServer(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	hex := "3fa9" + strings.Repeat("0", 56) + "beef"
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: hex, want: hex},
		{in: colonHex(hex), want: hex},
		{in: "SHA256:" + strings.ToUpper(hex), want: hex},
		{in: "sha256 Fingerprint=" + colonHex(hex), want: hex},
		{in: hex[:62], wantErr: true},
		{in: hex + "00", wantErr: true},
		{in: strings.Repeat("zz", 32), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeFingerprint(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("normalizeFingerprint(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "cli.json")
	stored := cliConfig{Server: "https://cp.example.net:8443", Token: "file-token", Fingerprint: strings.Repeat("ab", 32), Username: "admin"}
	if err := saveCLIConfig(cfgPath, stored); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flags   clientFlags
		env     map[string]string
		want    resolved
		wantErr string
	}{
		{name: "file", want: resolved{server: stored.Server, token: "file-token", trust: trust{fingerprint: stored.Fingerprint}, sameAsFile: true, tokenFromFile: true}},
		{name: "env token overrides", env: map[string]string{"BULWARK_TOKEN": "env-token"},
			want: resolved{server: stored.Server, token: "env-token", trust: trust{fingerprint: stored.Fingerprint}, sameAsFile: true}},
		{name: "other server gets no stored token or pin", flags: clientFlags{server: "https://evil.example.org"},
			want: resolved{server: "https://evil.example.org"}},
		{name: "env server elsewhere", env: map[string]string{"BULWARK_SERVER": "cp2.example.net", "BULWARK_TOKEN": "ci", "BULWARK_CA": "/ca.pem"},
			want: resolved{server: "https://cp2.example.net", token: "ci", trust: trust{caFile: "/ca.pem"}}},
		{name: "flag fingerprint beats stored", flags: clientFlags{fingerprint: strings.Repeat("CD", 32)},
			want: resolved{server: stored.Server, token: "file-token", trust: trust{fingerprint: strings.Repeat("cd", 32)}, sameAsFile: true, tokenFromFile: true}},
		{name: "http refused", flags: clientFlags{server: "http://127.0.0.1:8080"}, wantErr: "refusing plain http"},
		{name: "http loopback with insecure", flags: clientFlags{server: "http://[::1]:8080", insecure: true}, want: resolved{server: "http://[::1]:8080"}},
		{name: "http elsewhere even with insecure", flags: clientFlags{server: "http://10.0.0.1", insecure: true}, wantErr: "only for a loopback"},
		{name: "bad fingerprint", flags: clientFlags{fingerprint: "abc"}, wantErr: "not a SHA-256 fingerprint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"BULWARK_CLI_CONFIG": cfgPath}
			for k, v := range tt.env {
				env[k] = v
			}
			e := &Env{Stderr: &bytes.Buffer{}, Getenv: func(k string) string { return env[k] }}
			got, err := tt.flags.resolve(e)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve: error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			got.cfg, got.path = cliConfig{}, ""
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(resolved{}, trust{})); diff != "" {
				t.Errorf("resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadCLIConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		mode          os.FileMode
		wantErr       string
		wantWarn      bool
	}{
		{name: "ok", content: `{"server":"https://x","token":"t"}`, mode: 0o600},
		{name: "readable by others", content: `{"server":"https://x"}`, mode: 0o644, wantWarn: true},
		{name: "unknown field", content: `{"server":"https://x","tokn":"t"}`, mode: 0o600, wantErr: `unknown field "tokn"`},
		{name: "trailing", content: `{} {}`, mode: 0o600, wantErr: "trailing data"},
		{name: "bad pin", content: `{"fingerprint":"nope"}`, mode: 0o600, wantErr: "fingerprint"},
		{name: "oversized", content: `{"server":"` + strings.Repeat("a", maxConfigBytes) + `"}`, mode: 0o600, wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".json")
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			e := &Env{Stderr: &stderr, Getenv: func(k string) string { return map[string]string{"BULWARK_CLI_CONFIG": p}[k] }}
			_, _, err := loadCLIConfig(e)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p) {
					t.Errorf("loadCLIConfig: error %v, want one naming %s and containing %q", err, p, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadCLIConfig: %v", err)
			}
			if got := strings.Contains(stderr.String(), "chmod 600"); got != tt.wantWarn {
				t.Errorf("permission warning = %v, want %v (stderr %q)", got, tt.wantWarn, stderr.String())
			}
		})
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "72h", want: now.Add(72 * time.Hour)},
		{in: "2026-12-31", want: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)},
		{in: "2026-03-02T10:00:00+02:00", want: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)},
		{in: "2026-03-01", wantErr: true}, // midnight today is past
		{in: "-1h", wantErr: true},
		{in: "0s", wantErr: true},
		{in: "tomorrow", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseExpiry(tt.in, now)
			if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
				t.Errorf("parseExpiry(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRoleBindings(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	got, err := parseRoleBindings([]string{"ops", "auditor@24h", "billing@2026-12-31"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []access.RoleBinding{{Role: "ops"}, {Role: "auditor", ExpiresAt: now.Add(24 * time.Hour)}, {Role: "billing", ExpiresAt: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseRoleBindings (-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{{"@24h"}, {"ops", "ops@1h"}, {"ops@soon"}} {
		if _, err := parseRoleBindings(bad, now); err == nil {
			t.Errorf("parseRoleBindings(%q) accepted", bad)
		}
	}

	cur := []access.RoleBinding{{Role: "ops", ExpiresAt: now.Add(time.Hour), CreatedAt: now}, {Role: "auditor"}}
	edited, err := editBindings(cur, []access.RoleBinding{{Role: "ops", ExpiresAt: now.Add(48 * time.Hour)}, {Role: "billing"}}, []string{"auditor"})
	if err != nil {
		t.Fatal(err)
	}
	wantEdited := []access.RoleBinding{{Role: "ops", ExpiresAt: now.Add(48 * time.Hour)}, {Role: "billing"}}
	if diff := cmp.Diff(wantEdited, edited); diff != "" {
		t.Errorf("editBindings (-want +got):\n%s", diff)
	}
	if _, err := editBindings(cur, nil, []string{"billing"}); err == nil {
		t.Error("editBindings removed a role the account does not hold without complaint")
	}
}

func TestEventsQuery(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q, err := eventsQuery([]string{"backup."}, []string{"guard", "continuity"}, []string{"team=blue"}, "warning", "24h", "2026-03-01", "policy/web", "17", "desc", 20, now)
	if err != nil {
		t.Fatal(err)
	}
	want := "after=17&limit=20&module=guard&module=continuity&order=desc&resource=policy%2Fweb&severity=warning&since=2026-02-28T12%3A00%3A00Z&tag=team%3Dblue&type=backup.&until=2026-03-01T00%3A00%3A00Z"
	if got := q.Encode(); got != want {
		t.Errorf("query = %s\nwant    %s", got, want)
	}
	// The server's own parser must accept what the client sends.
	if _, err := events.ParseFilter(q); err != nil {
		t.Errorf("events.ParseFilter rejects the client's query: %v", err)
	}
	bad := []struct {
		name string
		fn   func() error
	}{
		{"severity", func() error {
			_, err := eventsQuery(nil, nil, nil, "loud", "", "", "", "", "asc", 10, now)
			return err
		}},
		{"limit", func() error { _, err := eventsQuery(nil, nil, nil, "", "", "", "", "", "asc", 0, now); return err }},
		{"order", func() error { _, err := eventsQuery(nil, nil, nil, "", "", "", "", "", "up", 10, now); return err }},
		{"after", func() error { _, err := eventsQuery(nil, nil, nil, "", "", "", "", "x", "asc", 10, now); return err }},
		{"since", func() error {
			_, err := eventsQuery(nil, nil, nil, "", "last week", "", "", "", "asc", 10, now)
			return err
		}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			var ee *ExitError
			if err := b.fn(); !errors.As(err, &ee) || ee.Code != 2 {
				t.Errorf("eventsQuery with bad %s: error %v, want a usage error", b.name, err)
			}
		})
	}
}

func TestDecodeAPIError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{name: "api", status: 403, body: `{"error":{"code":"forbidden","message":"access denied: no grant","field":"x"}}`, want: "HTTP 403 forbidden: access denied: no grant (field x)"},
		{name: "throttled", status: 429, body: `{"error":{"code":"throttled","message":"slow down","retry_after":3}}`, want: "HTTP 429 throttled: slow down; retry in 3 s"},
		{name: "escape sequences", status: 400, body: `{"error":{"code":"invalid","message":"bad \u001b[2Jname\nnext"}}`, want: `HTTP 400 invalid: bad \x1b[2Jname\x0anext`},
		{name: "proxy page", status: 502, body: "<html>\n<b>Bad   gateway</b></html>", want: "HTTP 502 bad_gateway: <html> <b>Bad gateway</b></html>"},
		{name: "empty", status: 500, body: "", want: "HTTP 500 internal_server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeAPIError(tt.status, []byte(tt.body)).Error(); got != tt.want {
				t.Errorf("decodeAPIError = %q\nwant             %q", got, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, é", "plain text, é"},
		{"a\tb", `a\x09b`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"rtl\u202eoverride", `rtl\u202eoverride`},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzDecodeAPIError(f *testing.F) {
	f.Add(403, []byte(`{"error":{"code":"forbidden","message":"no","field":"f"}}`))
	f.Add(502, []byte("<html>bad gateway</html>"))
	f.Add(400, []byte(`{"error":{"message":"\u001b[31m\u2028x","retry_after":99999999}}`))
	f.Add(500, []byte(`{"error":null}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		msg := decodeAPIError(status, body).Error()
		for _, r := range msg {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("decodeAPIError(%d, %q) = %q contains control character %U", status, body, msg, r)
			}
		}
	})
}

func FuzzParseCLIConfig(f *testing.F) {
	f.Add([]byte(`{"server":"https://127.0.0.1:8443","token":"t","fingerprint":"` + strings.Repeat("ab", 32) + `"}`))
	f.Add([]byte(`{"server":1}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"fingerprint":"AB:CD"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCLIConfig(b)
		if err != nil {
			return
		}
		if c.Fingerprint != "" {
			if _, err := normalizeFingerprint(c.Fingerprint); err != nil || len(c.Fingerprint) != 64 {
				t.Fatalf("accepted config has malformed pin %q", c.Fingerprint)
			}
		}
		// What was accepted must survive a save and load unchanged.
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseCLIConfig(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
