package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/identity"
)

// browser starts Debian's Chromium, headless, with a new profile and the
// flags this machine's closed network needs, at the given window size.
// Without Chromium the test is skipped, except under CI, where make test
// installs it and its absence is a failure.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed: make test installs it (scripts/test-deps.sh)")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser steps with a deadline, failing the test with what.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text returns the text of the first element matching css.
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// signInSteps fill and send the sign-in form.
func signInSteps(s *stack, user, password string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(s.url + "/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
	}
}

// Sign in with a password, enrol TOTP in the console (the QR code and the
// secret, confirmed with a code, recovery codes shown once), sign out, and
// sign in again with the password and a TOTP code; a wrong code is refused
// on the way.
func TestBrowserPasswordAndTOTP(t *testing.T) {
	s := startStack(t)
	ctx := browser(t, 1280, 900)
	do(t, ctx, "sign in", append(signInSteps(s, "admin", adminPassword), chromedp.WaitVisible(chromedp.CSS("#practices")))...)
	if h := text(t, ctx, "h1"); h != "Overview" {
		t.Fatalf("after sign-in: %q", h)
	}
	do(t, ctx, "start TOTP", chromedp.Navigate(s.url+"/account"),
		chromedp.Click(chromedp.CSS(`form[action="/account/totp"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")))
	// The QR code is the API's PNG, shown by the page under its CSP.
	w := 0
	for range 100 { // bounded: 10 s
		if w = eval[int](t, ctx, `document.querySelector('img[alt^="QR code"]').naturalWidth`); w > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if w < 100 {
		t.Errorf("the QR code did not load (width %d)", w)
	}
	secret, err := identity.DecodeTOTPSecret(text(t, ctx, "#totp-secret"))
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "confirm TOTP",
		chromedp.SendKeys(chromedp.CSS("#totp-code"), identity.TOTPCode(secret, s.clock.Now(), identity.DefaultTOTP)),
		chromedp.Submit(chromedp.CSS("#totp-code")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes")))
	if n := eval[int](t, ctx, `document.querySelectorAll('#recovery-codes li').length`); n != 10 {
		t.Errorf("%d recovery codes shown, want 10", n)
	}
	s.clock.Advance(time.Minute) // the next codes are new ones
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#username")))
	do(t, ctx, "password step", append(signInSteps(s, "admin", adminPassword), chromedp.WaitVisible(chromedp.CSS("#code")))...)
	do(t, ctx, "wrong code", chromedp.SendKeys(chromedp.CSS("#code"), "000000"), chromedp.Submit(chromedp.CSS("#code")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	do(t, ctx, "right code",
		chromedp.SendKeys(chromedp.CSS("#code"), identity.TOTPCode(secret, s.clock.Now(), identity.DefaultTOTP)),
		chromedp.Submit(chromedp.CSS("#code")),
		chromedp.WaitVisible(chromedp.CSS("#practices")))
	es, err := s.app.Audit.Query(context.Background(), audit.Filter{Action: "auth.login.mfa", Limit: 10})
	if err != nil || len(es) != 2 || es[0].Result == audit.ResultOK || es[1].Result != audit.ResultOK {
		t.Errorf("audit of the second steps: %v %+v", err, es)
	}
}

// Enrol a security key through Chromium's virtual authenticator, sign out,
// and sign in with the password and the key.
func TestBrowserWebAuthn(t *testing.T) {
	s := startStack(t)
	ctx := browser(t, 1280, 900)
	do(t, ctx, "virtual authenticator", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportUsb,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
		return err
	}))
	do(t, ctx, "sign in", append(signInSteps(s, "admin", adminPassword), chromedp.WaitVisible(chromedp.CSS("#practices")))...)
	do(t, ctx, "register a key", chromedp.Navigate(s.url+"/account"), chromedp.WaitVisible(chromedp.CSS("#webauthn-register")),
		chromedp.SetValue(chromedp.CSS("#key-name"), "virtual key"),
		chromedp.Click(chromedp.CSS("#webauthn-register")),
		chromedp.WaitVisible(chromedp.CSS(`#keys form[action^="/account/webauthn/"]`)))
	if keys := text(t, ctx, "#keys"); !strings.Contains(keys, "virtual key") {
		t.Fatalf("keys after registering: %q (status %q)", keys, text(t, ctx, "#webauthn-status"))
	}
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.CSS("#username")))
	do(t, ctx, "password step", append(signInSteps(s, "admin", adminPassword), chromedp.WaitVisible(chromedp.CSS("#webauthn-login")))...)
	do(t, ctx, "key step", chromedp.Click(chromedp.CSS("#webauthn-login")), chromedp.WaitVisible(chromedp.CSS("#practices")))
	es, err := s.app.Audit.Query(context.Background(), audit.Filter{Action: "auth.login.webauthn", Result: audit.ResultOK, Limit: 10})
	if err != nil || len(es) != 1 || es[0].Actor != "user:admin" {
		t.Errorf("audit of the security-key sign-in: %v %+v", err, es)
	}
}

// A backup run from the console appears as a snapshot of the policy, and a
// ban added in the console is listed by `bulwark ban list`.
func TestBrowserRunBackupAndBan(t *testing.T) {
	s := startStack(t)
	ctx := browser(t, 1280, 900)
	do(t, ctx, "sign in", append(signInSteps(s, "admin", adminPassword), chromedp.WaitVisible(chromedp.CSS("#practices")))...)
	// The report page: the policy's backup is failed before any run.
	rpo := func() []string {
		do(t, ctx, "report", chromedp.Navigate(s.url+"/report"), chromedp.WaitVisible(chromedp.CSS("h1")))
		return eval[[]string](t, ctx, `Array.from(document.querySelectorAll('section.practice li'))
			.filter(li => li.textContent.includes('(policy/web)') && li.textContent.includes('Newest backup within the RPO'))
			.map(li => li.querySelector('.badge').textContent)`)
	}
	if got := rpo(); len(got) != 1 || got[0] != "failed" {
		t.Fatalf("the policy's RPO control before any backup: %v", got)
	}
	do(t, ctx, "run backup", chromedp.Navigate(s.url+"/backups"),
		chromedp.Click(chromedp.CSS(`form[action="/backups/web/run"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
	if n := text(t, ctx, `p[role="status"]`); !strings.Contains(n, "Started the backup of web") {
		t.Fatalf("notice after run: %q", n)
	}
	var rows int
	for range 120 { // bounded: 60 s
		do(t, ctx, "policy page", chromedp.Navigate(s.url+"/backups/web"), chromedp.WaitVisible(chromedp.CSS("#snaps")))
		rows = eval[int](t, ctx, `document.querySelectorAll('section[aria-labelledby="snaps"] tbody code').length`)
		if rows > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if rows != 1 {
		t.Fatalf("%d snapshots shown after the run", rows)
	}
	id := text(t, ctx, `section[aria-labelledby="snaps"] tbody code`)
	if got := rpo(); len(got) != 1 || got[0] != "ok" {
		t.Errorf("the policy's RPO control after the backup: %v", got)
	}
	out := s.bulwark("snapshots", "--repo", s.app.Config.Continuity.Repositories[0].Location, "--json")
	if !strings.Contains(out, id) {
		t.Errorf("snapshot %s shown in the console is not in the repository:\n%s", id, out)
	}

	do(t, ctx, "ban", chromedp.Navigate(s.url+"/guard"),
		chromedp.SendKeys(chromedp.CSS("#ban-net"), "203.0.113.9"),
		chromedp.SetValue(chromedp.CSS("#ban-duration"), "2h"),
		chromedp.SendKeys(chromedp.CSS("#ban-reason"), "added in the console"),
		chromedp.Submit(chromedp.CSS("#ban-reason")),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)))
	if got := text(t, ctx, "#bans"); !strings.Contains(got, "203.0.113.9/32") {
		t.Errorf("ban not shown: %q", got)
	}
	var bans []struct {
		Net    string `json:"net"`
		Reason string `json:"reason"`
		Origin string `json:"origin"`
	}
	if err := json.Unmarshal([]byte(s.bulwark("ban", "list", "--json", "--config", s.config, "--data", s.data)), &bans); err != nil {
		t.Fatal(err)
	}
	if len(bans) != 1 || bans[0].Net != "203.0.113.9/32" || bans[0].Reason != "added in the console" || bans[0].Origin != "user:admin" {
		t.Errorf("bulwark ban list: %+v", bans)
	}
}

// Every main page at 360 px and 1280 px: saved as screenshots, no
// horizontal scroll of the page itself at 360 px (wide tables scroll in
// their own box), a label for every input, and the skip link first in the
// keyboard order.
func TestBrowserScreenshots(t *testing.T) {
	s := startStack(t)
	dir := os.Getenv("BULWARK_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "bulwark-console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pages := []string{"/", "/backups", "/backups/web", "/guard", "/integrity", "/monitoring", "/access", "/audit", "/events", "/report", "/account"}
	for _, width := range []int{360, 1280} {
		ctx := browser(t, 1280, 900)
		// Headless windows are at least 500 px wide: emulate the viewport.
		do(t, ctx, "viewport", chromedp.EmulateViewport(int64(width), 900))
		for i, p := range append([]string{"/login"}, pages...) {
			if i == 1 {
				do(t, ctx, "sign in", append(signInSteps(s, "admin", adminPassword), chromedp.WaitVisible(chromedp.CSS("#practices")))...)
			}
			do(t, ctx, p, chromedp.Navigate(s.url+p), chromedp.WaitVisible(chromedp.CSS("h1")))
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			name := strings.Trim(strings.ReplaceAll(p, "/", "-"), "-")
			if name == "" {
				name = "overview"
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
				t.Fatal(err)
			}
			if width == 360 {
				if sw := eval[int](t, ctx, `document.documentElement.scrollWidth`); sw > 360 {
					t.Errorf("%s at 360 px: the page is %d px wide", p, sw)
				}
			}
			unlabelled := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
				.filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.id || e.name)`)
			if len(unlabelled) > 0 {
				t.Errorf("%s: inputs without a label: %v", p, unlabelled)
			}
		}
		// Keyboard: the first Tab reaches the skip link.
		do(t, ctx, "tab", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS("h1")), chromedp.KeyEvent("\t"))
		if a := eval[string](t, ctx, `document.activeElement.className`); a != "skip" {
			t.Errorf("first Tab focuses %q, want the skip link", a)
		}
	}
	t.Logf("screenshots in %s", dir)
}

// In Chromium, an operator's Access page has no Delete button, and a
// forged POST made from the page (no form token) is refused; the user is
// still there.
func TestBrowserOperatorCannotDelete(t *testing.T) {
	s := startStack(t)
	s.mkuser("olivia", "operator password 8 long", "operator")
	s.mkuser("victim", "victim password 8 long", "auditor")
	ctx := browser(t, 1280, 900)
	do(t, ctx, "sign in", append(signInSteps(s, "olivia", "operator password 8 long"), chromedp.WaitVisible(chromedp.CSS("#practices")))...)
	do(t, ctx, "access page", chromedp.Navigate(s.url+"/access"), chromedp.WaitVisible(chromedp.CSS("#users-h")))
	if n := eval[int](t, ctx, `Array.from(document.querySelectorAll('button')).filter(b => /delete|remove|revoke/i.test(b.textContent)).length`); n != 0 {
		t.Errorf("the operator sees %d delete, remove or revoke buttons", n)
	}
	if !strings.Contains(text(t, ctx, "#users-h + .scroll"), "victim") {
		t.Error("the operator does not see the users")
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/access/users/victim/delete', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'x=1'}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || st != 403 {
		t.Errorf("forged POST from the page: %d, %v", st, err)
	}
	api, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/api/v1/users/victim', {method: 'DELETE'}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || api != 403 {
		t.Errorf("DELETE through the API from the page: %d, %v", api, err)
	}
	if _, err := s.app.Identity.GetUser(context.Background(), "victim"); err != nil {
		t.Fatalf("victim was deleted: %v", err)
	}
}
