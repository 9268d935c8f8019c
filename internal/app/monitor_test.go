package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/app"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/s3/s3test"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
	"github.com/minio/minio-go/v7"
)

// TestPublishStatus pushes the status pages to a directory and to a real
// S3 server (versitygw), as bulwark up does on every change, so a copy
// keeps serving while the control plane is down.
func TestPublishStatus(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, false)
	v := vaulttest.Start(t, vault.Options{})
	statusToken := v.Token(t, vault.TokenSpec{Name: "status", Mode: vault.ModeStatus})
	data, mirror := t.TempDir(), t.TempDir()
	cfg := filepath.Join(data, "bulwark.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`monitor:
  checks:
    - name: db
      tcp: {address: "127.0.0.1:5432"}
status:
  title: Example status
  pages:
    - name: main
      checks: [db]
    - name: internal
      title: Internal services
      checks: [db]
  publish:
    - dir: %s
    - s3: {endpoint: "%s", bucket: %s, prefix: site, insecure: true, access_key: {env: S3_KEY}, secret_key: {env: S3_SECRET}}
    - vault: {url: "%s", token: {env: VAULT_STATUS}, ca_cert: %s}
`, mirror, srv.Host, bucket, v.URL, v.CertFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"S3_KEY": srv.AccessKey, "S3_SECRET": srv.SecretKey, "VAULT_STATUS": statusToken}
	a, err := app.Open(context.Background(), app.Options{DataDir: data, Stderr: &bytes.Buffer{}, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m, err := a.OpenMonitor(false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.CheckNow(ctx)
	if err := a.PublishStatus(ctx); err != nil {
		t.Fatal(err)
	}
	vaultClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: v.Pool(t)}}}
	for _, f := range []string{"index.html", "status.json", "status.css", "internal/index.html", "internal/status.json"} {
		b, err := os.ReadFile(filepath.Join(mirror, f))
		if err != nil {
			t.Errorf("mirror: %v", err)
			continue
		}
		obj, err := srv.Client.GetObject(ctx, bucket, "site/"+f, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil {
			t.Errorf("s3 %s: %v", f, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("s3 and the directory differ for %s", f)
		}
		// The vault serves the same file to anyone.
		resp, err := vaultClient.Get(v.URL + "/_status/" + f)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, b) {
			t.Errorf("the vault's %s: %d, equal %v", f, resp.StatusCode, bytes.Equal(got, b))
		}
	}
	page, _ := os.ReadFile(filepath.Join(mirror, "internal", "index.html"))
	if !strings.Contains(string(page), "Internal services") || !strings.Contains(string(page), `href="../status.css"`) || !strings.Contains(string(page), "All systems operational") {
		t.Errorf("internal page:\n%s", page)
	}
	st, err := srv.Client.StatObject(ctx, bucket, "site/index.html", minio.StatObjectOptions{})
	if err != nil || !strings.HasPrefix(st.ContentType, "text/html") {
		t.Errorf("index.html's content type %q %v", st.ContentType, err)
	}

	// Wrong keys: the errors name the destinations, the directory is
	// still written.
	env["S3_SECRET"] = "wrong"
	env["VAULT_STATUS"] = "bwv_wrong"
	a.Config.Status.Publish[0].Dir = t.TempDir()
	err = a.PublishStatus(ctx)
	if err == nil || !strings.Contains(err.Error(), "status.publish[1]") || !strings.Contains(err.Error(), "status.publish[2]") || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong keys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.Config.Status.Publish[0].Dir, "index.html")); err != nil {
		t.Errorf("the directory was not written when S3 failed: %v", err)
	}
}
