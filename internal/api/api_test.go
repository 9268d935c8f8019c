package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/identity/webauthntest"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
)

// TestEveryRouteDeclaresAccess walks the router and fails when a route
// lacks an access declaration, or changes data without an audit action.
func TestEveryRouteDeclaresAccess(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t, migrations()...))
	seen := map[string]bool{}
	for _, rt := range e.api.Routes() {
		key := rt.Method + " " + rt.Pattern
		t.Run(key, func(t *testing.T) {
			if seen[key] {
				t.Fatalf("declared twice")
			}
			seen[key] = true
			if rt.Handler == nil || rt.Summary == "" {
				t.Errorf("handler or summary missing")
			}
			switch rt.Auth {
			case api.Public, api.Self:
				if rt.Module != "" {
					t.Errorf("auth %s with module %q: modules only apply to perm routes", rt.Auth, rt.Module)
				}
			case api.Perm:
				if _, err := access.ParseModule(string(rt.Module)); err != nil && rt.Module != api.ModuleAny {
					t.Errorf("perm route with module %q: %v", rt.Module, err)
				}
				if !rt.Level.Valid() {
					t.Errorf("perm route without a valid level")
				}
			default:
				t.Errorf("auth %q: want public, self or perm", rt.Auth)
			}
			if rt.Method != "GET" && rt.Action == "" {
				t.Errorf("%s route without an audit action", rt.Method)
			}
			if rt.AuditRead && rt.Action == "" {
				t.Errorf("audited read without an action name")
			}
			if strings.HasPrefix(rt.Pattern, "/api/v1/audit") && !rt.AuditRead {
				t.Errorf("audit reads must themselves be audited")
			}
			// The route is really served: an unauthenticated request gets
			// something other than the router's "no such endpoint".
			path := regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllString(rt.Pattern, "1")
			r := e.do(rt.Method, path, "", nil)
			if r.Status == http.StatusNotFound && strings.Contains(string(r.Body), "no such endpoint") ||
				r.Status == http.StatusMethodNotAllowed {
				t.Errorf("route not served: %d %s", r.Status, r.Body)
			}
			if rt.Auth != api.Public && r.Status != http.StatusUnauthorized {
				t.Errorf("without credentials: status %d, want 401", r.Status)
			}
		})
	}
}

// TestOpenAPIMatchesRoutes checks the served OpenAPI document against the
// real router, in both directions.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t, migrations()...))
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	e.want(e.do("GET", "/api/v1/openapi.json", "", nil), 200).json(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	var documented, routed []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
			path := regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllString(p, "1")
			r := e.do(strings.ToUpper(m), path, "", nil)
			if r.Status == http.StatusNotFound && strings.Contains(string(r.Body), "no such endpoint") || r.Status == http.StatusMethodNotAllowed {
				t.Errorf("documented %s %s is not served (%d)", m, p, r.Status)
			}
		}
	}
	for _, rt := range e.api.Routes() {
		routed = append(routed, rt.Method+" "+rt.Pattern)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if diff := cmp.Diff(routed, documented); diff != "" {
		t.Errorf("OpenAPI paths differ from routes (-routes +doc):\n%s", diff)
	}
	// An undocumented path is not served.
	if r := e.do("GET", "/api/v1/nope", "", nil); r.Status != 404 || r.errCode() != "not_found" {
		t.Errorf("unknown path: %d %s", r.Status, r.Body)
	}
}

func TestLoginAndMe(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": adminPassword}), 200)
		var lr struct {
			Token     string
			ExpiresAt time.Time `json:"expires_at"`
		}
		r.json(t, &lr)
		if !strings.HasPrefix(lr.Token, "bws_") {
			t.Fatalf("token %q: want a session token", lr.Token)
		}
		if want := e.clock.Now().Add(12 * time.Hour); !lr.ExpiresAt.Equal(want) {
			t.Errorf("expires_at = %v, want %v", lr.ExpiresAt, want)
		}
		// The cookie carries the same session with strict attributes.
		var ck *http.Cookie
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == api.SessionCookie {
				ck = c
			}
		}
		if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Value != lr.Token {
			t.Errorf("session cookie = %+v, want HttpOnly Secure SameSite=Strict with the token", ck)
		}
		var me struct {
			User   identity.User
			Roles  []string
			Grants []access.Grant
		}
		e.want(e.do("GET", "/api/v1/me", lr.Token, nil), 200).json(t, &me)
		if me.User.Username != "admin" || !slices.Contains(me.Roles, "admin") || len(me.Grants) == 0 {
			t.Errorf("me = %+v", me)
		}
		if n := e.auditCount("auth.login", "ok"); n != 1 {
			t.Errorf("audited successful logins = %d, want 1", n)
		}
		// Logout ends the session.
		e.want(e.do("POST", "/api/v1/auth/logout", lr.Token, nil), 204)
		if r := e.do("GET", "/api/v1/me", lr.Token, nil); r.Status != 401 {
			t.Errorf("after logout: %d", r.Status)
		}
	})
}

func TestWrongPasswordThrottleAndLockout(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		e.mkuser(admin, "bob")
		bad := map[string]string{"username": "bob", "password": "wrong-password-123"}
		// Free attempts: plain 401s.
		for i := 0; i < 3; i++ {
			if r := e.do("POST", "/api/v1/auth/login", "", bad); r.Status != 401 || r.errCode() != "bad_credentials" {
				t.Fatalf("attempt %d: %d %s", i, r.Status, r.Body)
			}
		}
		e.do("POST", "/api/v1/auth/login", "", bad) // 4th failure starts back-off
		r := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "bob", "password": "pw-bob-long-enough-1"})
		if r.Status != 429 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("during back-off, even the right password: %d %s (Retry-After %q), want 429", r.Status, r.Body, r.Header.Get("Retry-After"))
		}
		// Back-off doubles; keep failing (moving the clock past each delay)
		// until the lockout threshold (8 in this harness).
		for i := 0; i < 10; i++ {
			e.clock.Advance(20 * time.Minute)
			if r := e.do("POST", "/api/v1/auth/login", "", bad); r.errCode() == "locked" {
				break
			}
		}
		e.clock.Advance(20 * time.Minute)
		if r := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "bob", "password": "pw-bob-long-enough-1"}); r.Status != 403 || r.errCode() != "locked" {
			t.Fatalf("locked account with right password: %d %s, want 403 locked", r.Status, r.Body)
		}
		if e.auditCount("auth.login", "denied") < 8 {
			t.Errorf("failed logins not audited: %d", e.auditCount("auth.login", "denied"))
		}
		// An admin lifts the lockout.
		admin = e.login("admin", adminPassword)
		e.want(e.do("POST", "/api/v1/users/bob/unlock", admin, nil), 204)
		e.login("bob", "pw-bob-long-enough-1")
		// Unknown users fail the same way as wrong passwords.
		if r := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "nobody", "password": "x"}); r.Status != 401 || r.errCode() != "bad_credentials" {
			t.Errorf("unknown user: %d %s", r.Status, r.Body)
		}
	})
}

// enrolTOTP enrols TOTP for the token's user and returns the secret and
// recovery codes.
func (e *env) enrolTOTP(token string) ([]byte, []string) {
	e.t.Helper()
	var en identity.TOTPEnrollment
	e.want(e.do("POST", "/api/v1/me/totp", token, nil), 200).json(e.t, &en)
	if !strings.HasPrefix(en.URI, "otpauth://totp/") || len(en.QRPNG) < 100 || string(en.QRPNG[1:4]) != "PNG" {
		e.t.Fatalf("enrolment = uri %q, png %d bytes", en.URI, len(en.QRPNG))
	}
	secret, err := identity.DecodeTOTPSecret(en.Secret)
	if err != nil {
		e.t.Fatal(err)
	}
	code := identity.TOTPCode(secret, e.clock.Now(), identity.DefaultTOTP)
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	e.want(e.do("POST", "/api/v1/me/totp/confirm", token, map[string]string{"code": code}), 200).json(e.t, &rc)
	if len(rc.RecoveryCodes) != 10 {
		e.t.Fatalf("recovery codes = %d, want 10", len(rc.RecoveryCodes))
	}
	return secret, rc.RecoveryCodes
}

func TestTOTPLoginReplayAndRecovery(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		carol := e.mkuser(admin, "carol")
		secret, codes := e.enrolTOTP(carol)
		pw := "pw-carol-long-enough-1"

		// Password alone now yields an MFA challenge, not a token.
		var ch struct {
			Token    string
			MFAToken string `json:"mfa_token"`
			Methods  []string
		}
		e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "carol", "password": pw}), 200).json(t, &ch)
		if ch.Token != "" || ch.MFAToken == "" || !slices.Contains(ch.Methods, "totp") {
			t.Fatalf("challenge = %+v", ch)
		}
		// The enrolment code's step was used; move to the next step.
		e.clock.Advance(30 * time.Second)
		code := identity.TOTPCode(secret, e.clock.Now(), identity.DefaultTOTP)
		wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
		if r := e.do("POST", "/api/v1/auth/login/mfa", "", map[string]string{"mfa_token": ch.MFAToken, "totp": wrong}); r.Status != 401 {
			t.Fatalf("wrong code: %d %s", r.Status, r.Body)
		}
		r := e.want(e.do("POST", "/api/v1/auth/login/mfa", "", map[string]string{"mfa_token": ch.MFAToken, "totp": code}), 200)
		var lr struct{ Token string }
		r.json(t, &lr)
		e.want(e.do("GET", "/api/v1/me", lr.Token, nil), 200)
		// The challenge is single use.
		if r := e.do("POST", "/api/v1/auth/login/mfa", "", map[string]string{"mfa_token": ch.MFAToken, "totp": code}); r.Status != 401 {
			t.Errorf("reused challenge: %d", r.Status)
		}
		// Replaying the same code in a fresh login is refused.
		r = e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "carol", "password": pw, "totp": code})
		if r.Status != 401 || r.errCode() != "mfa_failed" {
			t.Fatalf("replayed TOTP: %d %s, want 401 mfa_failed", r.Status, r.Body)
		}
		// A forged challenge token is refused.
		forged := ch.MFAToken[:len(ch.MFAToken)-4] + "AAAA"
		if r := e.do("POST", "/api/v1/auth/login/mfa", "", map[string]string{"mfa_token": forged, "totp": code}); r.Status != 401 {
			t.Errorf("forged challenge: %d", r.Status)
		}
		// A recovery code works once.
		rc := map[string]string{"username": "carol", "password": pw, "recovery_code": codes[0]}
		var rl struct {
			Token string
			Left  *int `json:"recovery_codes_left"`
		}
		e.want(e.do("POST", "/api/v1/auth/login", "", rc), 200).json(t, &rl)
		if rl.Token == "" || rl.Left == nil || *rl.Left != 9 {
			t.Errorf("recovery login = %+v, want a token and 9 codes left", rl)
		}
		if r := e.do("POST", "/api/v1/auth/login", "", rc); r.Status != 401 {
			t.Errorf("reused recovery code: %d %s", r.Status, r.Body)
		}
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestWebAuthnSecondFactor(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		dave := e.mkuser(admin, "dave")
		key := webauthntest.New("https://localhost:8443")
		var begin struct {
			Ceremony string
			Options  json.RawMessage
		}
		e.want(e.do("POST", "/api/v1/me/webauthn/begin", dave, nil), 200).json(t, &begin)
		att, err := key.Register(begin.Options)
		if err != nil {
			t.Fatal(err)
		}
		e.want(e.do("POST", "/api/v1/me/webauthn/finish", dave, map[string]any{"ceremony": begin.Ceremony, "name": "yubikey", "response": json.RawMessage(att)}), 201)
		// The ceremony cannot be replayed to register again.
		if r := e.do("POST", "/api/v1/me/webauthn/finish", dave, map[string]any{"ceremony": begin.Ceremony, "name": "again", "response": json.RawMessage(att)}); r.Status < 400 {
			t.Errorf("replayed registration accepted: %d", r.Status)
		}
		var ch struct {
			MFAToken string `json:"mfa_token"`
			Methods  []string
		}
		e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "dave", "password": "pw-dave-long-enough-1"}), 200).json(t, &ch)
		if !slices.Contains(ch.Methods, "webauthn") {
			t.Fatalf("methods = %v", ch.Methods)
		}
		opts := e.want(e.do("POST", "/api/v1/auth/webauthn/begin", "", map[string]string{"mfa_token": ch.MFAToken}), 200)
		assertion, err := key.Assert(opts.Body)
		if err != nil {
			t.Fatal(err)
		}
		var lr struct{ Token string }
		e.want(e.do("POST", "/api/v1/auth/webauthn/finish", "", map[string]any{"mfa_token": ch.MFAToken, "response": json.RawMessage(assertion)}), 200).json(t, &lr)
		e.want(e.do("GET", "/api/v1/me", lr.Token, nil), 200)
		// Replaying the assertion is refused: the challenge is gone.
		if r := e.do("POST", "/api/v1/auth/webauthn/finish", "", map[string]any{"mfa_token": ch.MFAToken, "response": json.RawMessage(assertion)}); r.Status != 401 {
			t.Errorf("replayed assertion: %d %s", r.Status, r.Body)
		}
		// An assertion from another key fails and is audited as denied.
		e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "dave", "password": "pw-dave-long-enough-1"}), 200).json(t, &ch)
		opts = e.want(e.do("POST", "/api/v1/auth/webauthn/begin", "", map[string]string{"mfa_token": ch.MFAToken}), 200)
		other := webauthntest.New("https://localhost:8443")
		if _, err := other.Assert(opts.Body); err == nil {
			t.Errorf("a key that was never registered produced an assertion")
		}
		key.Origin = "https://evil.example"
		evil, err := key.Assert(opts.Body)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", "/api/v1/auth/webauthn/finish", "", map[string]any{"mfa_token": ch.MFAToken, "response": json.RawMessage(evil)}); r.Status != 401 {
			t.Errorf("wrong-origin assertion: %d %s", r.Status, r.Body)
		}
	})
}

func TestAPITokensScopedExpiringRevocable(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		e.mkuser(admin, "erin", "operator", "billing")
		erin := e.login("erin", "pw-erin-long-enough-1")
		var tc struct {
			Token string
			Info  identity.APIToken
		}
		e.want(e.do("POST", "/api/v1/me/tokens", erin, map[string]any{"name": "ci", "roles": []string{"billing"}, "ttl": "24h"}), 201).json(t, &tc)
		if !strings.HasPrefix(tc.Token, "bwt_") {
			t.Fatalf("token = %q", tc.Token)
		}
		// The token is stored hashed: the secret appears nowhere in the DB.
		var n int
		if err := e.db.QueryRow(`SELECT count(*) FROM api_tokens WHERE secret_hash = $1`, tc.Token).Scan(&n); err != nil || n != 0 {
			t.Errorf("token stored in clear (n=%d, err=%v)", n, err)
		}
		var me struct{ Roles []string }
		e.want(e.do("GET", "/api/v1/me", tc.Token, nil), 200).json(t, &me)
		if diff := cmp.Diff([]string{"billing"}, me.Roles); diff != "" {
			t.Errorf("token roles (-want +got):\n%s", diff)
		}
		// The subset excludes operator: unlocking (access operate) is out,
		// and erin herself can't either (operator lacks access? it has operate on all).
		if r := e.do("POST", "/api/v1/users/erin/unlock", erin, nil); r.Status != 204 {
			t.Errorf("erin's session (operator) unlock: %d %s", r.Status, r.Body)
		}
		if r := e.do("POST", "/api/v1/users/erin/unlock", tc.Token, nil); r.Status != 403 {
			t.Errorf("token beyond its role subset: %d %s, want 403", r.Status, r.Body)
		}
		// A token cannot mint tokens, nor claim roles its owner lacks.
		if r := e.do("POST", "/api/v1/me/tokens", tc.Token, map[string]any{"name": "x"}); r.Status != 403 {
			t.Errorf("token minting a token: %d", r.Status)
		}
		if r := e.do("POST", "/api/v1/me/tokens", erin, map[string]any{"name": "x", "roles": []string{"admin"}}); r.Status != 400 {
			t.Errorf("token with a role the owner lacks: %d %s", r.Status, r.Body)
		}
		// Expired tokens are refused.
		e.clock.Advance(25 * time.Hour)
		if r := e.do("GET", "/api/v1/me", tc.Token, nil); r.Status != 401 {
			t.Errorf("expired token: %d", r.Status)
		}
		// Revoked tokens are refused.
		admin = e.login("admin", adminPassword)
		e.want(e.do("POST", "/api/v1/me/tokens", admin, map[string]any{"name": "ops", "ttl": "1h"}), 201).json(t, &tc)
		e.want(e.do("GET", "/api/v1/me", tc.Token, nil), 200)
		e.want(e.do("DELETE", "/api/v1/me/tokens/"+tc.Info.ID, admin, nil), 204)
		if r := e.do("GET", "/api/v1/me", tc.Token, nil); r.Status != 401 {
			t.Errorf("revoked token: %d", r.Status)
		}
		// A tampered token is refused.
		if r := e.do("GET", "/api/v1/me", tc.Token[:len(tc.Token)-2]+"xx", nil); r.Status != 401 {
			t.Errorf("tampered token: %d", r.Status)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		tok := e.login("admin", adminPassword)
		e.clock.Advance(20 * time.Minute)
		e.want(e.do("GET", "/api/v1/me", tok, nil), 200) // refreshes idle timer
		e.clock.Advance(31 * time.Minute)
		if r := e.do("GET", "/api/v1/me", tok, nil); r.Status != 401 {
			t.Errorf("idle session: %d, want 401", r.Status)
		}
		// Absolute expiry even when active.
		tok = e.login("admin", adminPassword)
		for i := 0; i < 26; i++ {
			e.clock.Advance(29 * time.Minute)
			if r := e.do("GET", "/api/v1/me", tok, nil); r.Status != 200 {
				if e.clock.Now().Sub(time.Date(2026, 11, 21, 12, 51, 0, 0, time.UTC)) < 12*time.Hour {
					t.Fatalf("active session expired early at step %d", i)
				}
				return
			}
		}
		t.Errorf("session outlived its absolute expiry")
	})
}

// TestAccessScenarios runs the seed-003 examples through the real API.
func TestAccessScenarios(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		// Junior sysadmin: operate, but create or delete nothing.
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "junior", "grants": []map[string]any{{"module": "*", "level": "operate"}}}), 201)
		// Need-to-know grant that expires in one hour.
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "temp-audit"}), 201)
		e.want(e.do("POST", "/api/v1/roles/temp-audit/grants", admin, map[string]any{"module": "audit", "level": "read", "expires_at": e.clock.Now().Add(time.Hour)}), 201)
		junior := e.mkuser(admin, "junior1", "junior")
		temp := e.mkuser(admin, "temp1", "temp-audit")
		acct := e.mkuser(admin, "acct1", "billing")

		if r := e.do("POST", "/api/v1/users/acct1/unlock", junior, nil); r.Status != 204 {
			t.Errorf("junior operate: %d %s", r.Status, r.Body)
		}
		if r := e.do("POST", "/api/v1/users", junior, map[string]any{"username": "x", "password": "long-enough-password-9"}); r.Status != 403 {
			t.Errorf("junior create: %d, want 403", r.Status)
		}
		if r := e.do("DELETE", "/api/v1/users/acct1", junior, nil); r.Status != 403 {
			t.Errorf("junior delete: %d, want 403", r.Status)
		}
		if r := e.do("GET", "/api/v1/users", acct, nil); r.Status != 403 {
			t.Errorf("accounting reading users: %d, want 403", r.Status)
		}
		if r := e.do("GET", "/api/v1/audit", temp, nil); r.Status != 200 {
			t.Errorf("unexpired need-to-know grant: %d", r.Status)
		}
		if r := e.do("GET", "/api/v1/users", temp, nil); r.Status != 403 {
			t.Errorf("need-to-know grant reaches beyond audit: %d", r.Status)
		}
		e.clock.Advance(61 * time.Minute)
		temp = e.login("temp1", "pw-temp1-long-enough-1")
		if r := e.do("GET", "/api/v1/audit", temp, nil); r.Status != 403 {
			t.Errorf("expired grant still works: %d", r.Status)
		}
		admin = e.login("admin", adminPassword)
		// Auditors read everything, change nothing.
		aud := e.mkuser(admin, "aud1", "auditor")
		e.want(e.do("GET", "/api/v1/roles", aud, nil), 200)
		if r := e.do("POST", "/api/v1/roles", aud, map[string]any{"name": "x"}); r.Status != 403 {
			t.Errorf("auditor writes: %d", r.Status)
		}
		// Built-in roles are immutable.
		if r := e.do("DELETE", "/api/v1/roles/admin", admin, nil); r.Status != 409 {
			t.Errorf("delete builtin: %d %s", r.Status, r.Body)
		}
		// Denied requests are audited.
		if e.auditCount("user.create", "denied") == 0 {
			t.Errorf("denied create not audited")
		}
	})
}

func TestTagScopedUsersAndEvents(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		admin := e.login("admin", adminPassword)
		// A team lead manages the users and sees the events of team blue only.
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "blue-lead", "grants": []map[string]any{
			{"module": "access", "level": "write", "scope": "team=blue"},
			{"module": "backups", "level": "write", "scope": "team=blue"},
		}}), 201)
		lead := e.mkuser(admin, "lead", "blue-lead")
		e.want(e.do("POST", "/api/v1/users", lead, map[string]any{"username": "b1", "password": "blue-member-password-1", "tags": map[string]string{"team": "blue"}}), 201)
		if r := e.do("POST", "/api/v1/users", lead, map[string]any{"username": "r1", "password": "red-member-password-1", "tags": map[string]string{"team": "red"}}); r.Status != 403 {
			t.Errorf("create outside scope: %d", r.Status)
		}
		var users api.List[identity.User]
		e.want(e.do("GET", "/api/v1/users", lead, nil), 200).json(t, &users)
		if len(users.Items) != 1 || users.Items[0].Username != "b1" {
			t.Errorf("scoped list = %v", users.Items)
		}
		for _, tc := range []struct {
			team, module string
		}{{"blue", "backups"}, {"red", "backups"}, {"blue", "guard"}} {
			if _, err := e.events.Publish(ctx, events.Event{Type: events.TypeBackupCompleted, Severity: events.SeverityInfo, Module: tc.module,
				Actor: "system:test", Resource: "policy/" + tc.team, Tags: map[string]string{"team": tc.team}, Message: "done"}); err != nil {
				t.Fatal(err)
			}
		}
		var evs api.List[events.Event]
		e.want(e.do("GET", "/api/v1/events", lead, nil), 200).json(t, &evs)
		if len(evs.Items) != 1 || evs.Items[0].Resource != "policy/blue" || evs.Items[0].Module != "backups" {
			t.Errorf("scoped events = %+v", evs.Items)
		}
		e.want(e.do("GET", "/api/v1/events", admin, nil), 200).json(t, &evs)
		if len(evs.Items) != 3 {
			t.Errorf("admin sees %d events, want 3", len(evs.Items))
		}
		if r := e.do("GET", fmt.Sprintf("/api/v1/events/%d", evs.Items[1].ID), lead, nil); r.Status != 404 && evs.Items[1].Resource != "policy/blue" {
			t.Errorf("out-of-scope event by id: %d", r.Status)
		}
	})
}

func TestRequire2FARestrictsSessions(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		e.mkuser(admin, "frank", "auditor")
		e.want(e.do("PUT", "/api/v1/settings/auth", admin, map[string]any{"require_2fa": true}), 200)
		r := e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "frank", "password": "pw-frank-long-enough-1"}), 200)
		var lr struct {
			Token      string
			Restricted bool
		}
		r.json(t, &lr)
		if !lr.Restricted {
			t.Fatalf("login without 2FA under require_2fa: %s", r.Body)
		}
		if r := e.do("GET", "/api/v1/roles", lr.Token, nil); r.Status != 403 || r.errCode() != "mfa_enrollment_required" {
			t.Errorf("restricted session reading roles: %d %s", r.Status, r.Body)
		}
		e.want(e.do("GET", "/api/v1/me", lr.Token, nil), 200)
		e.enrolTOTP(lr.Token)
		// A session that began before the requirement is restricted too,
		// and so is a token of a user without 2FA.
		if r := e.do("GET", "/api/v1/roles", admin, nil); r.Status != 403 || r.errCode() != "mfa_enrollment_required" {
			t.Errorf("pre-existing session after require_2fa: %d %s", r.Status, r.Body)
		}
		e.enrolTOTP(admin)
		e.want(e.do("GET", "/api/v1/roles", admin, nil), 200)
		// The last factor cannot be removed while 2FA is required.
		if r := e.do("DELETE", "/api/v1/me/totp", admin, map[string]string{"password": adminPassword}); r.Status != 400 {
			t.Errorf("removing the last factor under require_2fa: %d %s", r.Status, r.Body)
		}
		e.clock.Advance(30 * time.Second)
		// Per-role requirement through the role flag.
		e.want(e.do("PUT", "/api/v1/settings/auth", admin, map[string]any{"require_2fa": false}), 200)
		// Built-in roles keep their grants but can require 2FA.
		e.want(e.do("PATCH", "/api/v1/roles/auditor", admin, map[string]any{"require_2fa": true}), 200)
		e.mkuser(admin, "ivan", "auditor")
		r = e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "ivan", "password": "pw-ivan-long-enough-1"}), 200)
		lr.Restricted = false
		r.json(t, &lr)
		if !lr.Restricted {
			t.Errorf("built-in role requiring 2FA did not restrict: %s", r.Body)
		}
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "sensitive", "require_2fa": true}), 201)
		e.mkuser(admin, "gina")
		e.want(e.do("PATCH", "/api/v1/users/gina", admin, map[string]any{"roles": []map[string]string{{"role": "sensitive"}}}), 200)
		r = e.want(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "gina", "password": "pw-gina-long-enough-1"}), 200)
		r.json(t, &lr)
		if !lr.Restricted {
			t.Errorf("role requiring 2FA did not restrict: %s", r.Body)
		}
	})
}

func TestBadBodiesWriteNothing(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		count := func() int {
			var n int
			if err := e.db.QueryRow(`SELECT count(*) FROM users`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := count()
		huge := `{"username":"big","password":"` + strings.Repeat("a", 70<<10) + `"}`
		tests := []struct {
			name   string
			body   string
			status int
			field  string
		}{
			{"oversized", huge, 413, ""},
			{"malformed", `{"username": "x",`, 400, ""},
			{"unknown field", `{"username":"x","password":"long-enough-pass-1","admin":true}`, 400, "admin"},
			{"wrong type", `{"username": 5}`, 400, "username"},
			{"trailing data", `{"username":"x","password":"long-enough-pass-1"} {}`, 400, ""},
			{"empty", ``, 400, ""},
			{"weak password", `{"username":"weak","password":"1qaz2wsx3edc"}`, 400, ""},
			{"bad username", `{"username":"Robert'); DROP TABLE users;--","password":"long-enough-pass-1"}`, 400, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("POST", "/api/v1/users", admin, tc.body)
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
				}
				var b struct {
					Error struct{ Code, Message, Field string }
				}
				r.json(t, &b)
				if b.Error.Message == "" || b.Error.Field != tc.field {
					t.Errorf("error body = %+v, want a message and field %q", b.Error, tc.field)
				}
			})
		}
		if after := count(); after != before {
			t.Errorf("users %d -> %d: a refused request wrote data", before, after)
		}
		// Bad login bodies too.
		if r := e.do("POST", "/api/v1/auth/login", "", `{"username":`); r.Status != 400 {
			t.Errorf("malformed login: %d", r.Status)
		}
	})
}

func TestAuditTrailOfAPI(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		e.mkuser(admin, "hank")
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "r1"}), 201)
		e.want(e.do("POST", "/api/v1/roles/r1/grants", admin, map[string]any{"module": "guard", "level": "read"}), 201)
		var list api.List[audit.Entry]
		e.want(e.do("GET", "/api/v1/audit?action=user.&limit=50", admin, nil), 200).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].Action != "user.create" || list.Items[0].Resource != "user/hank" || list.Items[0].Actor != "user:admin" {
			t.Errorf("user entries = %+v", list.Items)
		}
		if e.auditCount("grant.add", "ok") != 1 || e.auditCount("role.create", "ok") != 1 {
			t.Errorf("role and grant changes not audited")
		}
		// Reading the audit log is itself audited.
		if e.auditCount("audit.read", "ok") != 1 {
			t.Errorf("audit read not audited")
		}
		var rep audit.Report
		e.want(e.do("GET", "/api/v1/audit/verify", admin, nil), 200).json(t, &rep)
		if !rep.OK || rep.Entries < 5 {
			t.Errorf("verify = %+v", rep)
		}
		r := e.want(e.do("GET", "/api/v1/audit/export?format=jsonl", admin, nil), 200)
		lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
		if len(lines) < 5 {
			t.Errorf("export lines = %d", len(lines))
		}
		var anchor map[string]any
		e.want(e.do("GET", "/api/v1/audit/anchor", admin, nil), 200).json(t, &anchor)
		if anchor["seq"] == nil || anchor["signature"] == nil {
			t.Errorf("anchor = %v", anchor)
		}
		if r := e.do("GET", "/api/v1/audit/export?format=csv", admin, nil); r.Status != 400 {
			t.Errorf("csv export: %d", r.Status)
		}
	})
}

func TestServiceEndpoints(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t, migrations()...))
	e.want(e.do("GET", "/healthz", "", nil), 200)
	e.want(e.do("GET", "/readyz", "", nil), 200)
	r := e.want(e.do("GET", "/metrics", "", nil), 200)
	if !strings.Contains(string(r.Body), "bulwark_api_requests_total") {
		t.Errorf("metrics lack bulwark_api_requests_total")
	}
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("nosniff header = %q", got)
	}
	// Pagination parameters are validated.
	admin := e.login("admin", adminPassword)
	if r := e.do("GET", "/api/v1/users?limit=0", admin, nil); r.Status != 400 || !strings.Contains(string(r.Body), "limit") {
		t.Errorf("limit=0: %d %s", r.Status, r.Body)
	}
	_ = base64.StdEncoding
}

// TestEscalationAndBypassAttempts replays attacks found in review.
func TestEscalationAndBypassAttempts(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "blue-lead", "grants": []map[string]any{
			{"module": "access", "level": "write", "scope": "team=blue"},
			{"module": "audit", "level": "read", "scope": "team=blue"},
		}}), 201)
		lead := e.mkuser(admin, "lead", "blue-lead")
		t.Run("scoped access manager cannot bind roles", func(t *testing.T) {
			r := e.do("POST", "/api/v1/users", lead, map[string]any{"username": "mole", "password": "mole-password-long-1",
				"tags": map[string]string{"team": "blue"}, "roles": []map[string]string{{"role": "admin"}}})
			if r.Status != 403 {
				t.Fatalf("create blue user with admin role: %d %s", r.Status, r.Body)
			}
			e.want(e.do("POST", "/api/v1/users", lead, map[string]any{"username": "b2", "password": "b2-password-long-1", "tags": map[string]string{"team": "blue"}}), 201)
			if r := e.do("PATCH", "/api/v1/users/b2", lead, map[string]any{"roles": []map[string]string{{"role": "admin"}}}); r.Status != 403 {
				t.Errorf("bind admin to a blue user: %d %s", r.Status, r.Body)
			}
		})
		t.Run("scoped access manager cannot edit roles, settings or others' tokens", func(t *testing.T) {
			for _, c := range []struct {
				method, path string
				body         any
			}{
				{"POST", "/api/v1/roles/blue-lead/grants", map[string]any{"module": "*", "level": "write"}},
				{"POST", "/api/v1/roles", map[string]any{"name": "x"}},
				{"DELETE", "/api/v1/roles/blue-lead", nil},
				{"PUT", "/api/v1/settings/auth", map[string]any{"require_2fa": false}},
				{"GET", "/api/v1/tokens", nil},
				{"GET", "/api/v1/audit", nil},
			} {
				if r := e.do(c.method, c.path, lead, c.body); r.Status != 403 {
					t.Errorf("%s %s: %d %s, want 403", c.method, c.path, r.Status, r.Body)
				}
			}
		})
		t.Run("out-of-scope users look absent", func(t *testing.T) {
			e.want(e.do("POST", "/api/v1/users", admin, map[string]any{"username": "r2", "password": "r2-password-long-1", "tags": map[string]string{"team": "red"}}), 201)
			a, b := e.do("GET", "/api/v1/users/r2", lead, nil), e.do("GET", "/api/v1/users/nobody", lead, nil)
			if a.Status != 404 || b.Status != 404 {
				t.Errorf("existing out-of-scope %d, missing %d; want 404 for both", a.Status, b.Status)
			}
		})
		t.Run("tokens cannot touch credentials", func(t *testing.T) {
			var tc struct{ Token string }
			e.want(e.do("POST", "/api/v1/me/tokens", admin, map[string]any{"name": "ro", "roles": []string{}, "ttl": "1h"}), 201).json(t, &tc)
			for _, c := range []struct{ method, path string }{
				{"POST", "/api/v1/me/recovery-codes"}, {"POST", "/api/v1/me/totp"}, {"DELETE", "/api/v1/me/totp"},
				{"POST", "/api/v1/me/password"}, {"POST", "/api/v1/me/webauthn/begin"}, {"POST", "/api/v1/me/tokens"},
			} {
				if r := e.do(c.method, c.path, tc.Token, map[string]any{}); r.Status != 403 {
					t.Errorf("token %s %s: %d, want 403", c.method, c.path, r.Status)
				}
			}
		})
		t.Run("changing an enrolled factor needs the password", func(t *testing.T) {
			u := e.mkuser(admin, "fay")
			e.enrolTOTP(u)
			if r := e.do("DELETE", "/api/v1/me/totp", u, map[string]string{"password": "wrong-password"}); r.Status != 401 {
				t.Errorf("disable TOTP with a wrong password: %d %s", r.Status, r.Body)
			}
			if r := e.do("POST", "/api/v1/me/totp", u, nil); r.Status != 400 {
				t.Errorf("replace TOTP without a password: %d %s", r.Status, r.Body)
			}
			e.want(e.do("DELETE", "/api/v1/me/totp", u, map[string]string{"password": "pw-fay-long-enough-1"}), 204)
		})
		t.Run("forms cannot post JSON cross-site", func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/auth/login", strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
			req.Header.Set("Content-Type", "text/plain")
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 415 {
				t.Errorf("text/plain login: %d, want 415", resp.StatusCode)
			}
		})
	})
}

// TestParallelGuessesAreThrottled sends a burst of wrong passwords at once:
// the throttle must hold under concurrency, not only in sequence.
func TestParallelGuessesAreThrottled(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		admin := e.login("admin", adminPassword)
		e.mkuser(admin, "vic")
		const burst = 24
		codes := make(chan string, burst)
		var wg sync.WaitGroup
		for i := 0; i < burst; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "vic", "password": fmt.Sprintf("guess-%d-xxxxxxx", i)}).errCode()
			}()
		}
		wg.Wait()
		close(codes)
		checked := 0
		for c := range codes {
			if c == "bad_credentials" || c == "locked" {
				checked++
			}
		}
		// Free attempts (3) plus the one that starts the back-off.
		if checked > 4 {
			t.Errorf("%d of %d parallel guesses were checked, want at most 4", checked, burst)
		}
		// A locked account answers the same for right and wrong passwords.
		for i := 0; i < 12; i++ {
			e.clock.Advance(20 * time.Minute)
			e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "vic", "password": "still-wrong-xxxxxxx"})
		}
		e.clock.Advance(20 * time.Minute)
		right := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "vic", "password": "pw-vic-long-enough-1"})
		e.clock.Advance(20 * time.Minute)
		wrong := e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "vic", "password": "wrong-again-xxxxxxx"})
		if right.Status != 403 || string(right.Body) != string(wrong.Body) {
			t.Errorf("locked account: right password %d %s, wrong %d %s; want identical 403s", right.Status, right.Body, wrong.Status, wrong.Body)
		}
	})
}

func TestClientAddressFromTrustedProxiesOnly(t *testing.T) {
	db := storetest.SQLite(t, migrations()...)
	e := newEnv(t, db)
	tests := []struct {
		name    string
		trusted []string
		remote  string
		xff     []string
		want    string
	}{
		{"no proxies trusted", nil, "127.0.0.1:5000", []string{"203.0.113.9"}, "127.0.0.1"},
		{"trusted proxy", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"client-forged left entries ignored", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", []string{"127.0.0.1/32", "10.0.0.0/8"}, "127.0.0.1:5000", []string{"198.51.100.7, 10.1.2.3"}, "198.51.100.7"},
		{"untrusted peer", []string{"10.0.0.0/8"}, "192.0.2.1:5000", []string{"203.0.113.9"}, "192.0.2.1"},
		{"garbage header", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"not-an-ip"}, "127.0.0.1"},
		{"ipv6 proxy", []string{"::1/128"}, "[::1]:5000", []string{"2001:db8::5"}, "2001:db8::5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nets []netip.Prefix
			for _, p := range tt.trusted {
				nets = append(nets, netip.MustParsePrefix(p))
			}
			srv := api.New(api.Deps{Identity: e.identity, Access: e.access, Audit: e.audit, Events: e.events, Now: e.clock.Now, TrustedProxies: nets})
			req := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(`{"username":"nobody-`+strings.ReplaceAll(tt.name, " ", "-")+`","password":"x"}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			srv.ServeHTTP(httptest.NewRecorder(), req)
			es, err := e.audit.Query(context.Background(), audit.Filter{Action: "auth.login", Limit: 1, Desc: true})
			if err != nil || len(es) != 1 {
				t.Fatalf("audit: %v %v", es, err)
			}
			if es[0].Source != tt.want {
				t.Errorf("source = %q, want %q", es[0].Source, tt.want)
			}
		})
	}
}
