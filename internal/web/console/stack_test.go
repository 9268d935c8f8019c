package console_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/clocktest"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

const adminPassword = "console test admin password 7"

// stack is the whole product behind the console on a loopback port, over
// plain HTTP at http://localhost:PORT (a secure context for browsers, so
// WebAuthn works): the real store, identity, access, audit log, a backup
// policy over a real local repository with its scheduler, the ban store
// and supervision.
type stack struct {
	t      *testing.T
	app    *app.App
	url    string
	data   string
	config string
	env    map[string]string
	clock  *clocktest.Clock
}

func startStack(t *testing.T) *stack {
	t.Helper()
	_, repoDir := repotest.New(t, repotest.Options{})
	return startStackOn(t, repoDir, "")
}

// startStackOn starts the stack with its policy backing up into the
// repository at repoDir (password repotest.Password). With watch set,
// file integrity runs too, over that one directory.
func startStackOn(t *testing.T, repoDir, watch string) *stack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	base := t.TempDir()
	data := filepath.Join(base, "data")
	src := filepath.Join(base, "site")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("page%d.html", i)), bytes.Repeat([]byte("<p>hello</p>"), 100*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(base, "bulwark.yaml")
	yaml := fmt.Sprintf(`auth:
  webauthn:
    rp_id: localhost
    origins: ["http://localhost:%d"]
continuity:
  repositories:
    - name: primary
      location: %s
      password: {env: REPO_PW}
  policies:
    - name: web
      tags: [team=blue]
      sources:
        - name: site
          paths: [%s]
      schedule: every 24h
      repository: primary
      rpo: 1h
`, port, repoDir, src)
	if watch != "" {
		yaml += fmt.Sprintf(`integrity:
  enabled: true
  rules: [{path: %s}]
  default_excludes: false
  rescan: 0s
`, watch)
	}
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, url: fmt.Sprintf("http://localhost:%d", port), data: data, config: cfg,
		env:   map[string]string{"BULWARK_ADMIN_PASSWORD": adminPassword, "REPO_PW": repotest.Password, "BULWARK_PASSWORD": repotest.Password, "BULWARK_CACHE_DIR": filepath.Join(base, "cache")},
		clock: clocktest.New(time.Now().UTC().Truncate(time.Second))}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, app.Options{ConfigPath: cfg, DataDir: data, Listen: "127.0.0.1:0", LogLevel: "error",
		Getenv: func(k string) string { return s.env[k] }, Stderr: testWriter{t}, Now: s.clock.Now})
	if err != nil {
		cancel()
		t.Fatalf("app.Open: %v", err)
	}
	s.app = a
	if err := a.Bootstrap(ctx, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	m, err := a.OpenMonitor(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 { // some history for the charts
		if _, err := m.Sample(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv := &http.Server{Handler: a.Console(app.NewRegistry()), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.Serve(ln) }()
	go func() { defer wg.Done(); _ = a.Scheduler.Run(ctx) }()
	if watch != "" {
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Integrity.Run(ctx) }()
		for i := 0; !a.Integrity.Status().Watching; i++ {
			if i == 200 {
				t.Fatalf("integrity is not watching after 10 s: %+v", a.Integrity.Status())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		_ = srv.Close()
		cancel()
		wg.Wait()
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// mkuser creates a user with one role, without a second factor.
func (s *stack) mkuser(name, password, role string) {
	s.t.Helper()
	if _, err := s.app.Identity.CreateUser(context.Background(), identity.NewUser{Username: name, Password: password,
		Roles: []access.RoleBinding{{Role: role}}}); err != nil {
		s.t.Fatalf("create %s: %v", name, err)
	}
}

// client is an HTTP client with its own cookie jar that does not follow
// redirects (tests look at them).
func (s *stack) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs in through the console's form and returns the client.
func (s *stack) signIn(user, password string) *http.Client {
	s.t.Helper()
	c := s.client()
	page := s.get(c, "/login", http.StatusOK)
	form := field(page, "form")
	res, err := c.PostForm(s.url+"/login", url.Values{"form": {form}, "username": {user}, "password": {password}, "next": {"/"}})
	if err != nil {
		s.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("sign-in of %s: %d", user, res.StatusCode)
	}
	return c
}

// get fetches a console path and checks its status.
func (s *stack) get(c *http.Client, path string, want int) string {
	s.t.Helper()
	res, err := c.Get(s.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	if res.StatusCode != want {
		s.t.Fatalf("GET %s: %d, want %d\n%s", path, res.StatusCode, want, b.String())
	}
	return b.String()
}

// field returns the value of the first hidden input named name.
func field(page, name string) string {
	i := strings.Index(page, `name="`+name+`" value="`)
	if i < 0 {
		return ""
	}
	rest := page[i+len(`name="`+name+`" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// testWriter sends logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("server: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// bulwark runs the bulwark command (built once per test binary) against
// the stack's data directory and returns its standard output.
func (s *stack) bulwark(args ...string) string {
	s.t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bulwark-console-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bulwark")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/bulwarkhq/bulwark/cmd/bulwark").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		s.t.Fatal(buildErr)
	}
	cmd := exec.Command(binPath, args...)
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "HOME="+s.t.TempDir(), "PATH="+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		s.t.Fatalf("bulwark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
