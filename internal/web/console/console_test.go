package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/audit"
)

// Every page renders for an administrator, from the real API, with the
// security headers; paths that are not the console's reach the API.
func TestPagesRender(t *testing.T) {
	s := startStack(t)
	c := s.signIn("admin", adminPassword)
	for path, want := range map[string]string{
		"/":            "Security practices",
		"/backups":     `<h2 id="policy-web">`,
		"/backups/web": "Snapshots",
		"/guard":       "Protected sites",
		"/integrity":   "File integrity",
		"/monitoring":  "Host, last 6 hours",
		"/access":      "Add a user",
		"/audit":       "auth.login",
		"/events":      "Events",
		"/report":      "Security practices",
		"/account":     "Authenticator app (TOTP)",
	} {
		res, err := c.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, want 200 with %q\n%.2000s", path, res.StatusCode, want, body)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", path, res.Header)
		}
	}
	// The monitoring page draws its charts as SVG on the server.
	if page := s.get(c, "/monitoring", 200); !strings.Contains(page, `<svg class="chart"`) || !strings.Contains(page, "<polyline") {
		t.Errorf("monitoring page has no chart:\n%.3000s", page)
	}
	// The API stays where it was, on the same listener, and refuses the
	// console's cookie-less callers as before.
	var me struct {
		User struct{ Username string } `json:"user"`
	}
	res, err := c.Get(s.url + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(res.Body).Decode(&me)
	res.Body.Close()
	if res.StatusCode != 200 || me.User.Username != "admin" {
		t.Errorf("/api/v1/me through the console: %d %+v", res.StatusCode, me)
	}
	if got := s.get(s.client(), "/api/v1/nothing", http.StatusNotFound); !strings.Contains(got, "no such endpoint") {
		t.Errorf("unknown path: %s", got)
	}
	// htmx refreshes only the live part of a page.
	req, _ := http.NewRequest("GET", s.url+"/guard?partial=live-bans", nil)
	req.Header.Set("HX-Request", "true")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.Contains(string(body), "<html") || !strings.Contains(string(body), "<table>") {
		t.Errorf("partial: %d\n%s", res.StatusCode, body)
	}
	// Assets are embedded and served with the same policy.
	if js := s.get(s.client(), "/assets/htmx.min.js", 200); !strings.Contains(js, "htmx") {
		t.Error("htmx is not served")
	}
}

// Without a session every page sends the browser to sign in, and back.
func TestSignInRequired(t *testing.T) {
	s := startStack(t)
	c := s.client()
	for _, p := range []string{"/", "/backups", "/access", "/audit?actor=x"} {
		res, err := c.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next="+url.QueryEscape(p) {
			t.Errorf("GET %s: %d to %q", p, res.StatusCode, res.Header.Get("Location"))
		}
	}
	// A POST without a session is refused, not redirected.
	res, err := c.PostForm(s.url+"/guard/bans", url.Values{"net": {"192.0.2.1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("POST without a session: %d", res.StatusCode)
	}
}

// The sign-in form: its token, the API's refusal shown in place, no open
// redirect after signing in.
func TestSignInForm(t *testing.T) {
	s := startStack(t)
	c := s.client()
	page := s.get(c, "/login", 200)
	form := field(page, "form")
	if form == "" {
		t.Fatalf("no form token:\n%s", page)
	}
	post := func(v url.Values, hdr map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", s.url+"/login", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, x := range hdr {
			req.Header.Set(k, x)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	// No token, a wrong token, another site.
	for name, tc := range map[string]struct {
		v   url.Values
		hdr map[string]string
	}{
		"no token":    {url.Values{"username": {"admin"}, "password": {adminPassword}}, nil},
		"wrong token": {url.Values{"form": {form + "x"}, "username": {"admin"}, "password": {adminPassword}}, nil},
		"cross-site":  {url.Values{"form": {form}, "username": {"admin"}, "password": {adminPassword}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"origin":      {url.Values{"form": {form}, "username": {"admin"}, "password": {adminPassword}}, map[string]string{"Origin": "https://evil.example"}},
	} {
		if res, _ := post(tc.v, tc.hdr); res.StatusCode != http.StatusForbidden || res.Header.Get("Set-Cookie") != "" && strings.Contains(res.Header.Get("Set-Cookie"), "bulwark_session=") {
			t.Errorf("%s: %d, cookies %q", name, res.StatusCode, res.Header.Values("Set-Cookie"))
		}
	}
	// A wrong password: the API's message, in the page, 401.
	res, body := post(url.Values{"form": {form}, "username": {"admin"}, "password": {"nope"}}, nil)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `id="login-error"`) {
		t.Errorf("wrong password: %d\n%s", res.StatusCode, body)
	}
	// next must stay on this site.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example"} {
		c = s.client() // a new browser: the form's token is spent at sign-in
		form = field(s.get(c, "/login", 200), "form")
		res, _ = post(url.Values{"form": {form}, "username": {"admin"}, "password": {adminPassword}, "next": {next}}, nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
			t.Errorf("next %q: %d to %q", next, res.StatusCode, res.Header.Get("Location"))
		}
	}
	// The sign-in was audited by the API, with the browser's address.
	es, err := s.app.Audit.Query(context.Background(), audit.Filter{Action: "auth.login", Result: audit.ResultOK, Limit: 100})
	if err != nil || len(es) == 0 {
		t.Fatalf("audit of the console's sign-in: %v %+v", err, es)
	}
	for _, e := range es {
		if e.Source != "127.0.0.1" || e.Actor != "user:admin" {
			t.Errorf("audit entry of a console sign-in: %+v", e)
		}
	}
}
