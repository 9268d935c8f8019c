package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// FuzzAPIJSONBodies posts arbitrary bytes to JSON endpoints, public and
// authenticated. Whatever the body, the server must answer with a 2xx or
// 4xx JSON response, never a 5xx or a panic.
func FuzzAPIJSONBodies(f *testing.F) {
	seeds := []string{
		`{"username":"admin","password":"x"}`,
		`{"username":"u1","password":"a-long-enough-password","roles":[{"role":"auditor"}],"tags":{"team":"blue"}}`,
		`{"name":"r","grants":[{"module":"*","level":"write","scope":"team=blue,env!=prod"}]}`,
		`{"module":"backups","level":"operate","effect":"deny","expires_at":"2030-01-01T00:00:00Z"}`,
		`{"username":` + strings.Repeat("[", 1000),
		`{"username":"\u0000","password":"\ud800"}`,
		`{"level":"root"}`, `{"module":"*","level":7}`, `{"scope":"a=b,,"}`,
		`null`, `[]`, `""`, `{}{}`, "\xff\xfe", `{"expires_at":"yesterday"}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	e := newEnv(f, storetest.SQLite(f, migrations()...))
	admin := ""
	f.Fuzz(func(t *testing.T, body string) {
		e.t = t
		if admin == "" {
			admin = e.login("admin", adminPassword)
		}
		for _, target := range []struct{ method, path, token string }{
			{"POST", "/api/v1/auth/login", ""},
			{"POST", "/api/v1/auth/login/mfa", ""},
			{"POST", "/api/v1/users", admin},
			{"POST", "/api/v1/roles", admin},
			{"POST", "/api/v1/roles/auditor/grants", admin},
			{"PATCH", "/api/v1/users/admin", admin},
			{"POST", "/api/v1/me/tokens", admin},
		} {
			req := httptest.NewRequest(target.method, target.path, strings.NewReader(body))
			if target.token != "" {
				req.Header.Set("Authorization", "Bearer "+target.token)
			}
			rec := httptest.NewRecorder()
			e.api.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Errorf("%s %s with %q: status %d: %s", target.method, target.path, body, rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusNoContent && !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s %s: content type %q", target.method, target.path, ct)
			}
		}
	})
}
