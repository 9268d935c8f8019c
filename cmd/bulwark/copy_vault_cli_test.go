package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyToVault: a local repository is copied offsite into a vault
// repository through an append-only token (with a write-only key), twice;
// the copies restore, and the append-only token cannot forget them.
func TestCopyToVault(t *testing.T) {
	data := t.TempDir()
	admin := newCLI(t)
	addr := startVaultCLI(t, data)
	cert := filepath.Join(data, "tls", "cert.pem")
	tok := strings.TrimSpace(mustVault(t, admin, "vault", "token", "add", "web1-offsite", "--data", data, "--append-only", "--repo", "web1"))
	vloc := "https://" + addr + "/web1"

	c, primary := repoCLI(t)
	c = c.with("BULWARK_CACERT", cert).with("BULWARK_TO_VAULT_TOKEN", tok).with("BULWARK_TO_PASSWORD", "offsite key")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte(strings.Repeat("data ", 100000)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "repo", "init")
	mustRun(t, c, "backup", src)

	// The vault repository shares the primary's parameters; its full key
	// stays with the administrator, the client gets a write-only one.
	v := newCLI(t).with("BULWARK_REPO", vloc).with("BULWARK_CACERT", cert).with("BULWARK_VAULT_TOKEN", tok).
		with("BULWARK_PASSWORD", "offsite admin key").with("BULWARK_FROM_PASSWORD", "cli test password").
		with("BULWARK_CACHE_DIR", t.TempDir()).with("BULWARK_NEW_PASSWORD", "offsite key")
	mustRun(t, v, "repo", "init", "--copy-params-from", primary)
	mustRun(t, v, "repo", "key", "add", "--write-only")

	type result struct {
		Copied  []json.RawMessage `json:"copied"`
		Skipped []string          `json:"skipped"`
		OK      bool              `json:"verified"`
	}
	var r result
	if err := json.Unmarshal([]byte(mustRun(t, c, "copy", "--to", vloc, "--json")), &r); err != nil || len(r.Copied) != 1 || !r.OK {
		t.Fatalf("first copy to the vault: %v %+v", err, r)
	}
	mustRun(t, c, "backup", src)
	if err := json.Unmarshal([]byte(mustRun(t, c, "copy", "--to", vloc, "--json")), &r); err != nil || len(r.Copied) != 1 || len(r.Skipped) != 1 {
		t.Fatalf("second copy to the vault: %v %+v", err, r)
	}
	mustRun(t, v, "repo", "check", "--read-data")
	target := t.TempDir()
	mustRun(t, v, "restore", "latest", "--target", target, "--verify")
	if b, err := os.ReadFile(filepath.Join(target, src, "f")); err != nil || len(b) != 500000 {
		t.Fatalf("restored from the vault: %d bytes, %v", len(b), err)
	}
	if code, _, errOut := v.run("", "forget", "--keep-last", "1", "--prune"); code == 0 || !strings.Contains(errOut, "append-only") {
		t.Errorf("forget through the append-only token: exit %d, %s", code, errOut)
	}
	var snaps []json.RawMessage
	if err := json.Unmarshal([]byte(mustRun(t, v, "snapshots", "--json")), &snaps); err != nil || len(snaps) != 2 {
		t.Errorf("vault snapshots after the refused forget: %d, %v", len(snaps), err)
	}
}
