package vault_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// attacker sends raw HTTP requests with a token, as an attacker would.
type attacker struct {
	t     *testing.T
	v     *vaulttest.Vault
	c     *http.Client
	token string
}

// do sends method to the escaped path rawPath (sent verbatim, no
// cleaning) with body, and returns the status and body.
func (a *attacker) do(method, rawPath, query string, body []byte, hdr map[string]string) (int, string) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, a.v.URL+"/", rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	req.URL.RawQuery = query
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tree returns path -> SHA-256 of every file under dir, skipping the
// vault's log and usage counters (which refusals may legitimately touch).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "vault.log" || strings.HasPrefix(rel, "usage") {
			return nil
		}
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = sha(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// logEntry is one line of the vault's log.
type logEntry struct {
	Msg    string `json:"msg"`
	Remote string `json:"remote"`
	Token  string `json:"token"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Time   string `json:"time"`
}

func logEntries(t *testing.T, v *vaulttest.Vault) []logEntry {
	t.Helper()
	var out []logEntry
	for _, line := range strings.Split(strings.TrimSpace(v.Log.String()), "\n") {
		if line == "" {
			continue
		}
		var e logEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// fixture is a vault with repositories r1 and r2, one object of every
// type in r1 stored by a full token, and an append-only token for r1.
type fixture struct {
	v             *vaulttest.Vault
	admin, client *attacker
	objects       map[backend.Type]string // escaped path of r1's object of each type
	bodies        map[backend.Type][]byte
	clientTok     string
}

func newFixture(t *testing.T) *fixture {
	v := vaulttest.Start(t, vault.Options{})
	adminTok := v.Token(t, vault.TokenSpec{Name: "admin"})
	clientTok := v.Token(t, vault.TokenSpec{Name: "client", Repo: "r1", Mode: vault.ModeAppendOnly})
	f := &fixture{v: v, clientTok: clientTok, objects: map[backend.Type]string{}, bodies: map[backend.Type][]byte{},
		admin:  &attacker{t: t, v: v, c: v.HTTPClient(t), token: adminTok},
		client: &attacker{t: t, v: v, c: v.HTTPClient(t), token: clientTok}}
	v.Create(t, adminTok, "r1")
	v.Create(t, adminTok, "r2")
	var packID string
	for _, typ := range backend.Types() {
		body := []byte("original " + string(typ))
		h := backend.Handle{Type: typ, Name: sha(body)}
		switch typ {
		case backend.ConfigFile:
			h.Name = ""
		case backend.ParityFile:
			h.Name = packID
		case backend.PackFile:
			packID = h.Name
		}
		p := vault.ObjectPath("r1", h)
		if st, msg := f.admin.do(http.MethodPut, p, "", body, nil); st != http.StatusCreated {
			t.Fatalf("admin PUT %s: %d %s", p, st, msg)
		}
		f.objects[typ], f.bodies[typ] = p, body
	}
	if st, msg := f.admin.do(http.MethodPut, "/r2/config", "", []byte("r2 config"), nil); st != http.StatusCreated {
		t.Fatalf("admin PUT r2 config: %d %s", st, msg)
	}
	return f
}

// TestAppendOnlyAttacker sends, with an append-only token, every request
// that would destroy or corrupt data, for every object kind, and checks
// each is refused with the right status, logged, and changes nothing.
func TestAppendOnlyAttacker(t *testing.T) {
	f := newFixture(t)
	before := tree(t, f.v.Data)
	logBefore := len(logEntries(t, f.v))

	type attempt struct {
		name, method, path, query string
		body                      []byte
		hdr                       map[string]string
		want                      int
	}
	var attempts []attempt
	for _, typ := range backend.Types() {
		p := f.objects[typ]
		attempts = append(attempts,
			attempt{name: "delete " + string(typ), method: http.MethodDelete, path: p, want: http.StatusForbidden},
			attempt{name: "overwrite " + string(typ), method: http.MethodPut, path: p, body: []byte("evil"), want: http.StatusConflict},
			attempt{name: "overwrite same bytes " + string(typ), method: http.MethodPut, path: p, body: f.bodies[typ], want: http.StatusConflict},
			attempt{name: "replace " + string(typ), method: http.MethodPut, path: p, query: "replace=1", body: []byte("evil"), want: http.StatusForbidden},
			attempt{name: "replace=true " + string(typ), method: http.MethodPut, path: p, query: "replace=true", body: []byte("evil"), want: http.StatusBadRequest},
			attempt{name: "extra query " + string(typ), method: http.MethodPut, path: p, query: "x=1", body: []byte("evil"), want: http.StatusBadRequest},
			attempt{name: "MOVE " + string(typ), method: "MOVE", path: p, hdr: map[string]string{"Destination": "/r1/keys/x"}, want: http.StatusMethodNotAllowed},
			attempt{name: "COPY " + string(typ), method: "COPY", path: p, want: http.StatusMethodNotAllowed},
			attempt{name: "PATCH " + string(typ), method: http.MethodPatch, path: p, body: []byte("evil"), want: http.StatusMethodNotAllowed},
			attempt{name: "POST " + string(typ), method: http.MethodPost, path: p, body: []byte("evil"), want: http.StatusMethodNotAllowed},
			attempt{name: "other repository " + string(typ), method: http.MethodDelete, path: strings.Replace(p, "/r1/", "/r2/", 1), want: http.StatusForbidden},
			attempt{name: "other repository read " + string(typ), method: http.MethodGet, path: strings.Replace(p, "/r1/", "/r2/", 1), want: http.StatusForbidden},
		)
		if typ == backend.ConfigFile || typ == backend.ParityFile {
			continue
		}
		evil := []byte("planted garbage " + string(typ))
		attempts = append(attempts,
			attempt{name: "hash mismatch " + string(typ), method: http.MethodPut, path: vault.ObjectPath("r1", backend.Handle{Type: typ, Name: sha([]byte("the real content"))}), body: evil, want: http.StatusUnprocessableEntity},
		)
		if typ != backend.PackFile {
			attempts = append(attempts, attempt{name: "non-hash name " + string(typ), method: http.MethodPut, path: "/r1/" + string(typ) + "/README", body: evil, want: http.StatusUnprocessableEntity})
		}
	}
	id := sha([]byte("x"))
	for _, p := range []string{
		"/r1/data/../config", "/r1/keys/%2E%2E", "/r1/keys/..", "/r1/keys/.", "/r1/keys/%2e%2e%2fconfig",
		"/r1%2Fkeys/x", "/r1/keys/a%2Fb", "/r1/keys/a%5Cb", "/r1/keys/..%2F..%2Fr2%2Fconfig", "/r1/keys/%00",
		"/r1/keys/.hidden", "/r1/snapshots/.tmp-1", "/r1/other/" + id, "/r1/data/" + strings.ToUpper(id),
		"/r1/data/" + id[:63], "/r1/data/" + id[:2] + "/" + id, "/r1/config/x", "/%2Fr1/config", "/r1//config",
		"/../r1/config", "/.vault/x", "/r1/data", "/r1/keys/%zz", "/r1/keys/a%0Ab", "/r1/parity/..%2Fdata%2F" + id,
		"/" + strings.Repeat("a", 65) + "/config",
	} {
		attempts = append(attempts, attempt{name: "path " + p, method: http.MethodPut, path: p, body: []byte("evil"), want: http.StatusBadRequest},
			attempt{name: "path delete " + p, method: http.MethodDelete, path: p, want: http.StatusBadRequest})
	}
	big := make([]byte, vault.MaxObjectSize+1)
	attempts = append(attempts,
		attempt{name: "oversized", method: http.MethodPut, path: vault.ObjectPath("r1", backend.Handle{Type: backend.PackFile, Name: sha(big)}), body: big, want: http.StatusRequestEntityTooLarge},
		attempt{name: "create other repository", method: http.MethodPost, path: "/r3", want: http.StatusForbidden},
		attempt{name: "put repository", method: http.MethodPut, path: "/r1", body: []byte("x"), want: http.StatusMethodNotAllowed},
		attempt{name: "delete repository", method: http.MethodDelete, path: "/r1", want: http.StatusMethodNotAllowed},
		attempt{name: "delete list", method: http.MethodDelete, path: "/r1/data/", want: http.StatusMethodNotAllowed},
	)

	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			f.client.t = t
			got, msg := f.client.do(a.method, a.path, a.query, a.body, a.hdr)
			if got != a.want {
				t.Errorf("%s %s?%s: status %d (%s), want %d", a.method, a.path, a.query, got, strings.TrimSpace(msg), a.want)
			}
		})
	}
	f.client.t = t

	if diff := cmp.Diff(before, tree(t, f.v.Data)); diff != "" {
		t.Errorf("refused requests changed the vault's files (-before +after):\n%s", diff)
	}
	// Every refusal is logged with the token's name, never the token;
	// in order, as the requests were sent one after another. A request
	// line net/http cannot parse (an invalid %-escape) is answered 400 by
	// net/http itself before any handler runs, so the vault cannot log it.
	var logged []attempt
	for _, a := range attempts {
		if !strings.Contains(a.path, "%zz") {
			logged = append(logged, a)
		}
	}
	entries := logEntries(t, f.v)[logBefore:]
	if len(entries) != len(logged) {
		t.Errorf("log has %d new entries for %d refused requests", len(entries), len(logged))
	}
	for i, e := range entries {
		if i >= len(logged) {
			break
		}
		a := logged[i]
		if e.Token != "client" || e.Method != a.method || e.Status != a.want || e.Path != a.path || e.Reason == "" || e.Remote == "" || e.Time == "" {
			t.Errorf("log entry %d for %q: %+v", i, a.name, e)
		}
	}
	if strings.Contains(f.v.Log.String(), f.clientTok) {
		t.Error("the log contains a token")
	}
	// Its content is what the full token stored.
	for typ, p := range f.objects {
		st, body := f.client.do(http.MethodGet, p, "", nil, nil)
		if st != http.StatusOK || body != string(f.bodies[typ]) {
			t.Errorf("GET %s after the attack: %d %q, want %q", p, st, body, f.bodies[typ])
		}
	}
}

// TestAppendOnlyAllowed checks what an append-only token may do: read,
// list, create well-named objects, and delete only its own locks.
func TestAppendOnlyAllowed(t *testing.T) {
	f := newFixture(t)
	for typ, p := range f.objects {
		if st, body := f.client.do(http.MethodGet, p, "", nil, nil); st != http.StatusOK || body != string(f.bodies[typ]) {
			t.Errorf("GET %s: %d %q", p, st, body)
		}
		if st, _ := f.client.do(http.MethodHead, p, "", nil, nil); st != http.StatusOK {
			t.Errorf("HEAD %s: %d", p, st)
		}
		st, body := f.client.do(http.MethodGet, vault.ListPath("r1", typ), "", nil, nil)
		if st != http.StatusOK || !strings.HasSuffix(body, "{\"end\":true}\n") || strings.Count(body, "\n") != 2 {
			t.Errorf("list %s: %d %q", typ, st, body)
		}
	}
	for _, typ := range []backend.Type{backend.PackFile, backend.IndexFile, backend.SnapshotFile, backend.KeyFile, backend.LockFile} {
		body := []byte("new " + string(typ))
		p := vault.ObjectPath("r1", backend.Handle{Type: typ, Name: sha(body)})
		if st, msg := f.client.do(http.MethodPut, p, "", body, nil); st != http.StatusCreated {
			t.Errorf("PUT new %s: %d %s", p, st, msg)
		}
	}
	own := vault.ObjectPath("r1", backend.Handle{Type: backend.LockFile, Name: sha([]byte("new locks"))})
	if st, msg := f.client.do(http.MethodDelete, own, "", nil, nil); st != http.StatusNoContent {
		t.Errorf("DELETE own lock: %d %s", st, msg)
	}
	if st, _ := f.client.do(http.MethodDelete, f.objects[backend.LockFile], "", nil, nil); st != http.StatusForbidden {
		t.Errorf("DELETE the admin's lock: %d, want 403", st)
	}
	if st, _ := f.client.do(http.MethodGet, "/r1/keys/"+sha([]byte("nothing")), "", nil, nil); st != http.StatusNotFound {
		t.Errorf("GET missing: %d, want 404", st)
	}
	if st, _ := f.client.do(http.MethodGet, f.objects[backend.KeyFile], "offset=5&length=100", nil, nil); st != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("GET beyond the end: %d, want 416", st)
	}
	if st, body := f.client.do(http.MethodGet, f.objects[backend.KeyFile], "offset=9&length=4", nil, nil); st != http.StatusOK || body != "keys" {
		t.Errorf("GET range: %d %q", st, body)
	}
}

// TestAuthentication sends requests without a token, with wrong, malformed
// and revoked ones.
func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	before := tree(t, f.v.Data)
	secondTok := f.v.Token(t, vault.TokenSpec{Name: "second", Repo: "r1", Mode: vault.ModeAppendOnly})
	second := &attacker{t: t, v: f.v, c: f.v.HTTPClient(t), token: secondTok}
	if st, _ := second.do(http.MethodGet, "/r1/config", "", nil, nil); st != http.StatusOK {
		t.Fatalf("valid token: %d", st)
	}
	if err := vault.RevokeToken(f.v.Data, "second"); err != nil {
		t.Fatal(err)
	}
	before = tree(t, f.v.Data)
	wrong, _ := vault.NewTokenSecret()
	cases := []struct {
		name string
		hdr  map[string]string
		tok  string
	}{
		{"missing", nil, ""},
		{"wrong", nil, wrong},
		{"revoked", nil, secondTok},
		{"no prefix", nil, strings.TrimPrefix(f.clientTok, "bwv_")},
		{"truncated", nil, f.clientTok[:len(f.clientTok)-1]},
		{"hash instead of token", nil, sha([]byte(f.clientTok))},
		{"basic auth", map[string]string{"Authorization": "Basic " + f.clientTok}, ""},
		{"lower-case bearer", map[string]string{"Authorization": "bearer " + f.clientTok}, ""},
		{"token in query", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &attacker{t: t, v: f.v, c: f.v.HTTPClient(t), token: tc.tok}
			q := ""
			if tc.name == "token in query" {
				q = "token=" + url.QueryEscape(f.clientTok)
			}
			for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead} {
				var body []byte
				if m == http.MethodPut {
					body = []byte("x")
				}
				for _, p := range []string{f.objects[backend.SnapshotFile], "/r1/keys/" + sha([]byte("x")), "/r1/data/", "/r1/../x"} {
					if st, _ := a.do(m, p, q, body, tc.hdr); st != http.StatusUnauthorized {
						t.Errorf("%s %s: %d, want 401", m, p, st)
					}
				}
			}
		})
	}
	if diff := cmp.Diff(before, tree(t, f.v.Data)); diff != "" {
		t.Errorf("unauthenticated requests changed files:\n%s", diff)
	}
	for _, e := range logEntries(t, f.v) {
		if e.Status == http.StatusUnauthorized && (e.Token != "" || e.Reason == "") {
			t.Errorf("401 log entry: %+v", e)
		}
	}
	if n := strings.Count(f.v.Log.String(), `"status":401`); n != len(cases)*16 {
		t.Errorf("%d 401s logged, want %d", n, len(cases)*16)
	}
}

func TestQuota(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "small", Quota: 1000})
	a := &attacker{t: t, v: v, c: v.HTTPClient(t), token: tok}
	v.Create(t, tok, "q")
	put := func(n int) int {
		body := bytes.Repeat([]byte{byte(n)}, n)
		st, _ := a.do(http.MethodPut, vault.ObjectPath("q", backend.Handle{Type: backend.PackFile, Name: sha(body)}), "", body, nil)
		return st
	}
	for i, tc := range []struct{ n, want int }{{600, 201}, {500, 507}, {400, 201}, {1, 507}} {
		if got := put(tc.n); got != tc.want {
			t.Errorf("put %d: %d bytes: status %d, want %d", i, tc.n, got, tc.want)
		}
	}
	toks, err := vault.ListTokens(v.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got := vault.TokenUsage(v.Data, toks[0]); got != 1000 {
		t.Errorf("usage = %d, want 1000", got)
	}
	// The count survives a restart.
	v.Restart(t)
	a.c = v.HTTPClient(t)
	if got := put(1); got != http.StatusInsufficientStorage {
		t.Errorf("after restart: %d, want 507", got)
	}
	if !strings.Contains(v.Log.String(), "quota") {
		t.Error("quota refusal not logged")
	}
}

func TestLengthRequired(t *testing.T) {
	f := newFixture(t)
	body := []byte("chunked")
	req, err := http.NewRequest(http.MethodPut, f.v.URL+vault.ObjectPath("r1", backend.Handle{Type: backend.KeyFile, Name: sha(body)}), io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+f.clientTok)
	resp, err := f.client.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Fatalf("chunked PUT: %d, want 411", resp.StatusCode)
	}
}

// TestPlainHTTPRefused: the vault's port does not serve plain HTTP.
func TestPlainHTTPRefused(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.v.Addr+"/r1/config", nil)
	req.Header.Set("Authorization", "Bearer "+f.clientTok)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "original config") {
			t.Fatalf("plain HTTP served: %d %q", resp.StatusCode, b)
		}
	}
}

func TestTokenStore(t *testing.T) {
	data := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s1, err := vault.AddToken(data, vault.TokenSpec{Name: "a", Mode: vault.ModeAppendOnly, Repo: "web", Quota: 5}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vault.AddToken(data, vault.TokenSpec{Name: "a"}, now); err == nil {
		t.Fatal("duplicate name accepted")
	}
	for _, bad := range []vault.TokenSpec{{Name: ""}, {Name: "../a"}, {Name: "a b"}, {Name: "x", Repo: "a/b"}, {Name: "x", Mode: "root"}, {Name: "x", Quota: -1}} {
		if _, err := vault.AddToken(data, bad, now); err == nil {
			t.Errorf("AddToken(%+v) accepted", bad)
		}
	}
	s2, err := vault.AddToken(data, vault.TokenSpec{Name: "b"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if s1 == s2 || !strings.HasPrefix(s1, vault.TokenPrefix) {
		t.Fatalf("secrets %q %q", s1, s2)
	}
	got, err := vault.ListTokens(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []vault.Token{
		{Name: "a", SHA256: sha([]byte(s1)), Repo: "web", Mode: vault.ModeAppendOnly, Quota: 5, Created: now},
		{Name: "b", SHA256: sha([]byte(s2)), Mode: vault.ModeFull, Created: now},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ListTokens (-want +got):\n%s", diff)
	}
	raw, _ := os.ReadFile(filepath.Join(data, "tokens.json"))
	if strings.Contains(string(raw), s1[4:]) || strings.Contains(string(raw), s2[4:]) {
		t.Fatal("tokens.json holds a secret")
	}
	if fi, _ := os.Stat(filepath.Join(data, "tokens.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens.json mode %v, want 0600", fi.Mode().Perm())
	}
	if err := vault.RevokeToken(data, "a"); err != nil {
		t.Fatal(err)
	}
	if err := vault.RevokeToken(data, "a"); err == nil {
		t.Fatal("second revoke succeeded")
	}
	if got, _ := vault.ListTokens(data); len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("after revoke: %+v", got)
	}
}

func TestRefusalLogFields(t *testing.T) {
	f := newFixture(t)
	f.client.do(http.MethodDelete, f.objects[backend.SnapshotFile], "", nil, nil)
	es := logEntries(t, f.v)
	e := es[len(es)-1]
	want := logEntry{Msg: "refused", Token: "client", Method: "DELETE", Path: f.objects[backend.SnapshotFile], Status: 403}
	got := e
	got.Remote, got.Reason, got.Time = "", "", ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log entry (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(e.Remote, "127.0.0.1:") || !strings.Contains(e.Reason, "append-only") {
		t.Errorf("log entry remote %q reason %q", e.Remote, e.Reason)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		t.Errorf("log time %q: %v", e.Time, err)
	}
	_ = fmt.Sprint()
}
