package vault_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// TestStatusPages: a status token publishes pages that anyone may read;
// no other token, and no request without one, may write them; paths and
// sizes are held to the export's layout.
func TestStatusPages(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	status := v.Token(t, vault.TokenSpec{Name: "status-web1", Mode: vault.ModeStatus})
	appendOnly := v.Token(t, vault.TokenSpec{Name: "web1", Mode: vault.ModeAppendOnly})
	scoped := v.Token(t, vault.TokenSpec{Name: "web1-full", Repo: "web1", Mode: vault.ModeFull})
	full := v.Token(t, vault.TokenSpec{Name: "admin", Mode: vault.ModeFull})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: v.Pool(t)}}}
	do := func(method, path, token string, body []byte) (int, string, http.Header) {
		t.Helper()
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, v.URL+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	page := []byte("<!doctype html><title>Status</title><p>All systems operational</p>")
	for _, tt := range []struct {
		token string
		want  int
	}{{"", 401}, {"bwv_wrong", 401}, {appendOnly, 403}, {scoped, 403}, {status, 204}, {full, 204}} {
		if code, body, _ := do("PUT", "/_status/index.html", tt.token, page); code != tt.want {
			t.Errorf("PUT with token %.8q: %d %s, want %d", tt.token, code, body, tt.want)
		}
	}
	code, body, h := do("GET", "/_status/", "", nil)
	if code != 200 || body != string(page) || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("public GET: %d %q %v", code, body, h)
	}
	if code, _, _ := do("PUT", "/_status/internal/status.json", status, []byte(`{"overall":"operational"}`)); code != 204 {
		t.Errorf("a page's JSON: %d", code)
	}
	if code, body, h := do("GET", "/_status/internal/status.json", "", nil); code != 200 || h.Get("Content-Type") != "application/json" || !strings.Contains(body, "operational") {
		t.Errorf("GET json: %d %s", code, body)
	}
	// The layout: no traversal, no other types, two levels at most.
	for _, p := range []string{"/_status/../tokens.json", "/_status/%2e%2e/x.html", "/_status/x.js", "/_status/a/b/c.html", "/_status/.hidden.html", "/_status/x..html"} {
		if code, _, _ := do("PUT", p, status, page); code != 400 && code != 404 {
			t.Errorf("PUT %s: %d, want 400", p, code)
		}
	}
	if code, _, _ := do("GET", "/_status/nope.html", "", nil); code != 404 {
		t.Errorf("a missing page: %d", code)
	}
	if code, _, _ := do("PUT", "/_status/big.html", status, make([]byte, vault.MaxStatusFile+1)); code != 413 {
		t.Errorf("an oversized page: %d", code)
	}
	if code, _, _ := do("DELETE", "/_status/index.html", full, nil); code != 405 {
		t.Errorf("DELETE: %d", code)
	}
	// A status token reaches no repository.
	if code, _, _ := do("POST", "/web1", status, nil); code != 403 {
		t.Errorf("a status token creating a repository: %d", code)
	}
	if _, err := vault.AddToken(v.Data, vault.TokenSpec{Name: "bad", Repo: "web1", Mode: vault.ModeStatus}, time.Now()); err == nil {
		t.Error("a status token limited to a repository was accepted")
	}
}
