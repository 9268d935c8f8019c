package console_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/access"
)

// postForm posts a console form and returns the response (not followed).
func postForm(t *testing.T, c *http.Client, u string, v url.Values, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, x := range hdr {
		req.Header.Set(k, x)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// A forged form is refused before anything is read or changed: without
// the session's token, with another session's token, or from another site.
func TestForgedPostRefused(t *testing.T) {
	s := startStack(t)
	admin := s.signIn("admin", adminPassword)
	other := s.signIn("admin", adminPassword)
	token := field(s.get(admin, "/guard", 200), "csrf")
	otherToken := field(s.get(other, "/guard", 200), "csrf")
	if token == "" || token == otherToken {
		t.Fatalf("form tokens %q and %q", token, otherToken)
	}
	ban := url.Values{"net": {"198.51.100.7"}, "duration": {"1h"}, "reason": {"forged"}}
	with := func(tok string) url.Values {
		v := url.Values{"csrf": {tok}}
		for k, x := range ban {
			v[k] = x
		}
		return v
	}
	for name, tc := range map[string]struct {
		v   url.Values
		hdr map[string]string
	}{
		"no token":             {ban, nil},
		"other session token":  {with(otherToken), nil},
		"truncated token":      {with(token[:len(token)-1]), nil},
		"cross-site fetch":     {with(token), map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"foreign origin":       {with(token), map[string]string{"Origin": "https://evil.example"}},
		"same-site not origin": {with(token), map[string]string{"Sec-Fetch-Site": "same-site"}},
	} {
		if res := postForm(t, admin, s.url+"/guard/bans", tc.v, tc.hdr); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if bans, err := s.app.Bans.List(context.Background(), true, 100); err != nil || len(bans) != 0 {
		t.Fatalf("a refused form banned: %v %+v", err, bans)
	}
	// The genuine form works and says so on the next page.
	res := postForm(t, admin, s.url+"/guard/bans", with(token), map[string]string{"Origin": s.url, "Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/guard" {
		t.Fatalf("genuine form: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if page := s.get(admin, "/guard", 200); !strings.Contains(page, "Banned 198.51.100.7/32") || !strings.Contains(page, "forged") {
		t.Errorf("the ban is not shown:\n%.3000s", page)
	}
	// The notice is shown once.
	if page := s.get(admin, "/guard", 200); strings.Contains(page, "Banned 198.51.100.7/32 until") {
		t.Error("the notice was shown twice")
	}
}

// An operator sees no button for what needs write, and the API refuses
// the request anyway when the operator makes it: through the console
// with a genuine form token, or straight at the API with the cookie.
func TestOperatorCannotDelete(t *testing.T) {
	s := startStack(t)
	s.mkuser("olivia", "operator password 8 long", "operator")
	s.mkuser("victim", "victim password 8 long", "auditor")
	op := s.signIn("olivia", "operator password 8 long")
	page := s.get(op, "/access", 200)
	for _, banned := range []string{"/delete", "Add a user", "Add grant", `action="/access/tokens/`} {
		if strings.Contains(page, banned) {
			t.Errorf("the operator's access page offers %q", banned)
		}
	}
	if !strings.Contains(page, "victim") {
		t.Errorf("the operator cannot see users:\n%.2000s", page)
	}
	admin := s.signIn("admin", adminPassword)
	if !strings.Contains(s.get(admin, "/access", 200), `action="/access/users/victim/delete"`) {
		t.Error("the admin has no delete button")
	}
	// A genuine form token of the operator's session, on a delete the
	// page never offered: the API refuses, the console says why.
	tok := field(page, "csrf")
	res := postForm(t, op, s.url+"/access/users/victim/delete", url.Values{"csrf": {tok}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("forged delete: %d", res.StatusCode)
	}
	if after := s.get(op, "/access", 200); !strings.Contains(after, "may not") {
		t.Errorf("no refusal shown:\n%.2000s", after)
	}
	// Straight at the API with the session cookie.
	req, _ := http.NewRequest("DELETE", s.url+"/api/v1/users/victim", nil)
	res, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("DELETE through the API: %d", res.StatusCode)
	}
	if _, err := s.app.Identity.GetUser(context.Background(), "victim"); err != nil {
		t.Fatalf("victim was deleted: %v", err)
	}
	// The operator may operate: lifting a ban is offered and works.
	if !strings.Contains(s.get(op, "/guard", 200), "Ban an address or network") {
		t.Error("the operator has no ban form")
	}
}

// A user whose role requires a second factor and who has none reaches the
// Account page only, until one is enrolled.
func TestRestrictedUntilEnrolled(t *testing.T) {
	s := startStack(t)
	if _, err := s.app.Access.CreateRole(context.Background(), access.Role{Name: "staff", Require2FA: true,
		Grants: []access.Grant{{Effect: access.EffectAllow, Module: access.ModuleAll, Level: access.LevelOperate}}}); err != nil {
		t.Fatal(err)
	}
	s.mkuser("rita", "rita's password 8 long", "staff")
	c := s.client()
	form := field(s.get(c, "/login", 200), "form")
	res := postForm(t, c, s.url+"/login", url.Values{"form": {form}, "username": {"rita"}, "password": {"rita's password 8 long"}, "next": {"/backups"}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("restricted sign-in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	for _, p := range []string{"/", "/backups", "/guard"} {
		r, err := c.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account" {
			t.Errorf("GET %s while restricted: %d to %q", p, r.StatusCode, r.Header.Get("Location"))
		}
	}
	page := s.get(c, "/account", 200)
	if !strings.Contains(page, "must have a second factor") || strings.Contains(page, `href="/backups"`) {
		t.Errorf("restricted account page:\n%.3000s", page)
	}
	tok := field(page, "csrf")
	if res := postForm(t, c, s.url+"/guard/bans", url.Values{"csrf": {tok}, "net": {"192.0.2.5"}, "duration": {"1h"}, "reason": {"x"}}, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("restricted POST: %d", res.StatusCode)
	}
}
