package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/certs"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// replica runs one control plane in-process until the test ends.
type replica struct {
	app    *app.App
	addr   string
	client *http.Client
}

func startReplica(t *testing.T, o app.Options) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, o)
	if err != nil {
		cancel()
		t.Fatalf("open: %v", err)
	}
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- a.Serve(ctx, app.ServeOptions{OnListen: func(addr string) { addrc <- addr }, Out: &bytes.Buffer{}})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after shutdown", err)
		}
		a.Close()
	})
	pem, err := os.ReadFile(filepath.Join(a.DataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &replica{app: a, addr: addr, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func (r *replica) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, "https://"+r.addr+path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestPostgresReplicasShareOneDatabase runs two control planes on one
// PostgreSQL schema, as a scaled deployment would: a session made on one is
// valid on the other, both append to one audit chain, and it verifies.
func TestPostgresReplicasShareOneDatabase(t *testing.T) {
	dsn, cleanup := storetest.FreshSchema(t)
	defer cleanup()
	cfgDir := t.TempDir()
	cfg := filepath.Join(cfgDir, "bulwark.yaml")
	body := "store:\n  driver: postgres\n  dsn: {env: TEST_BULWARK_DSN}\naudit:\n  checkpoint_every: 5\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		switch k {
		case "TEST_BULWARK_DSN":
			return dsn
		case "BULWARK_ADMIN_PASSWORD":
			return "replica-admin-password"
		}
		return ""
	}
	// Both replicas share the audit key, as replicas must (one data
	// directory's key copied to the other in a real deployment).
	dataA, dataB := t.TempDir(), t.TempDir()
	if _, err := audit.LoadOrCreateKey(dataA); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"audit.key", "audit.pub"} {
		b, err := os.ReadFile(filepath.Join(dataA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := startReplica(t, app.Options{ConfigPath: cfg, DataDir: dataA, Listen: "127.0.0.1:0", Getenv: getenv, Stderr: &bytes.Buffer{}})
	b := startReplica(t, app.Options{ConfigPath: cfg, DataDir: dataB, Listen: "127.0.0.1:0", Getenv: getenv, Stderr: &bytes.Buffer{}})
	if a.app.DB.Dialect != "postgres" {
		t.Fatalf("dialect = %s", a.app.DB.Dialect)
	}
	code, out := a.call(t, "POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "replica-admin-password"})
	if code != 200 {
		t.Fatalf("login on A: %d %v", code, out)
	}
	tok := out["token"].(string)
	if code, out := b.call(t, "GET", "/api/v1/me", tok, nil); code != 200 {
		t.Fatalf("A's session on B: %d %v", code, out)
	}
	// Concurrent writes through both replicas.
	var wg sync.WaitGroup
	for i, r := range []*replica{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				name := fmt.Sprintf("role-%d-%d", i, j)
				if code, out := r.call(t, "POST", "/api/v1/roles", tok, map[string]any{"name": name}); code != 201 {
					t.Errorf("create %s: %d %v", name, code, out)
				}
			}
		}()
	}
	wg.Wait()
	rep, err := b.app.Audit.Verify(context.Background(), audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Entries < 14 || rep.Checkpoints < 2 {
		t.Fatalf("audit after concurrent replicas: %+v %v", rep, rep.Problem)
	}
}

func TestSQLiteDefaultAndConfigErrors(t *testing.T) {
	data := t.TempDir()
	a, err := app.Open(context.Background(), app.Options{DataDir: data, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.DB.Dialect != "sqlite" || a.DB.Path != filepath.Join(data, "bulwark.db") {
		t.Errorf("default store = %s %s", a.DB.Dialect, a.DB.Path)
	}
	for _, f := range []string{"bulwark.db", "audit.key"} {
		st, err := os.Stat(filepath.Join(data, f))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v err %v, want private", f, st.Mode(), err)
		}
	}
	// A bad configuration file stops start-up with its line and field.
	bad := filepath.Join(t.TempDir(), "bulwark.yaml")
	os.WriteFile(bad, []byte("store:\n  driver: oracle\n"), 0o600)
	_, err = app.Open(context.Background(), app.Options{ConfigPath: bad, DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "bulwark.yaml:2: store.driver") {
		t.Errorf("bad config error = %v", err)
	}
	// A postgres DSN from an unset environment variable is named.
	pg := filepath.Join(t.TempDir(), "bulwark.yaml")
	os.WriteFile(pg, []byte("store:\n  driver: postgres\n  dsn: {env: NOPE_DSN}\n"), 0o600)
	_, err = app.Open(context.Background(), app.Options{ConfigPath: pg, DataDir: t.TempDir(), Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), "NOPE_DSN") {
		t.Errorf("unset DSN env error = %v", err)
	}
}

func TestSelfSignedCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert, key, err := certs.EnsureSelfSigned(dir, "127.0.0.1:8443", now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pair.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("cert for 127.0.0.1: %v", err)
	}
	if err := pair.Leaf.VerifyHostname("localhost"); err != nil {
		t.Errorf("cert for localhost: %v", err)
	}
	fp1, _ := certs.CertFingerprint(cert)
	// Still valid: kept. Near expiry: renewed.
	if _, _, err := certs.EnsureSelfSigned(dir, "127.0.0.1:8443", now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	fp2, _ := certs.CertFingerprint(cert)
	if fp1 != fp2 {
		t.Errorf("valid certificate was replaced")
	}
	if _, _, err := certs.EnsureSelfSigned(dir, "127.0.0.1:8443", now.Add(340*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	fp3, _ := certs.CertFingerprint(cert)
	if fp3 == fp1 {
		t.Errorf("certificate near expiry was not renewed")
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode())
	}
}
