package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// vaultOutput collects the vault's output while tests read it.
type vaultOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (v *vaultOutput) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.b.Write(p)
}

func (v *vaultOutput) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.b.String()
}

// runVault is run with the vault command in the tree, whether or not
// root() lists it yet.
func runVault(ctx context.Context, e *Env, args []string) int {
	r := root()
	if r.find("vault") == nil {
		r.Subs = append(r.Subs, vaultCommand())
	}
	err := dispatch(ctx, e, r, args, "bulwark")
	var ee *ExitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		if ee.Err != nil {
			fmt.Fprintf(e.Stderr, "bulwark: %v\n", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(e.Stderr, "bulwark: %v\n", err)
	return 2
}

// vaultCmd runs a vault command in-process like cliEnv.run.
func vaultCmd(c *cliEnv, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return c.vars[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = runVault(ctx, e, args)
	return code, out.String(), errb.String()
}

func mustVault(t *testing.T, c *cliEnv, args ...string) string {
	t.Helper()
	code, out, errOut := vaultCmd(c, args...)
	if code != 0 {
		t.Fatalf("bulwark %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// startVaultCLI runs `bulwark vault serve` in-process on a free loopback
// port and returns its address; the server stops when the test ends.
func startVaultCLI(t *testing.T, data string) string {
	t.Helper()
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	errOut := &vaultOutput{}
	done := make(chan int)
	go func() {
		e := &Env{Stdin: strings.NewReader(""), Stdout: errOut, Stderr: errOut, Getenv: func(string) string { return "" }}
		done <- runVault(ctx, e, []string{"vault", "serve", "--data", data, "--listen", addr})
	}()
	exited := false
	t.Cleanup(func() {
		cancel()
		if exited {
			return
		}
		if code := <-done; code != 0 {
			t.Errorf("vault serve exited %d: %s", code, errOut.String())
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(data, "tls", "cert.pem")); err == nil {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return addr
			}
		}
		if i == 500 {
			t.Fatalf("vault serve did not start: %s", errOut.String())
		}
		select {
		case code := <-done:
			exited = true
			t.Fatalf("vault serve exited %d: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestVaultEndToEnd(t *testing.T) {
	data := t.TempDir()
	admin := newCLI(t)
	addr := startVaultCLI(t, data)
	cert := filepath.Join(data, "tls", "cert.pem")

	fullTok := strings.TrimSpace(mustVault(t, admin, "vault", "token", "add", "admin", "--data", data))
	clientTok := strings.TrimSpace(mustVault(t, admin, "vault", "token", "add", "web1", "--data", data, "--append-only", "--repo", "web", "--quota", "1GiB"))
	for _, tok := range []string{fullTok, clientTok} {
		if !strings.HasPrefix(tok, "bwv_") || len(tok) != 4+43 {
			t.Fatalf("token add printed %q, want bwv_ and 43 characters", tok)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(data, "tokens.json")); strings.Contains(string(b), clientTok) || strings.Contains(string(b), fullTok[4:]) {
		t.Fatal("tokens.json holds a token in clear")
	}
	var listed []struct {
		Name, Mode, Repo string
		Quota            int64
	}
	if err := json.Unmarshal([]byte(mustVault(t, admin, "vault", "token", "list", "--data", data, "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[1].Name != "web1" || listed[1].Mode != "append-only" || listed[1].Repo != "web" || listed[1].Quota != 1<<30 {
		t.Fatalf("token list: %+v", listed)
	}

	src := filepath.Join(t.TempDir(), "src")
	for name, body := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": strings.Repeat("beta ", 50000)} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loc := "https://" + addr + "/web"
	client := newCLI(t).with("BULWARK_REPO", loc).with("BULWARK_PASSWORD", "vault cli password").
		with("BULWARK_CACHE_DIR", t.TempDir()).with("BULWARK_VAULT_TOKEN", clientTok)
	// init with --cacert, the rest with BULWARK_CACERT.
	mustRun(t, client, "repo", "init", "--cacert", cert)
	client = client.with("BULWARK_CACERT", cert)
	if code, _, errOut := client.run("", "repo", "init"); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second repo init: exit %d, %s", code, errOut)
	}
	first := strings.TrimSpace(mustRun(t, client, "backup", src))
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, client, "backup", src)
	snapIDs := func(c *cliEnv) []string {
		t.Helper()
		var snaps []struct{ ID string }
		if err := json.Unmarshal([]byte(mustRun(t, c, "snapshots", "--json")), &snaps); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range snaps {
			ids = append(ids, s.ID)
		}
		return ids
	}
	if ids := snapIDs(client); len(ids) != 2 || ids[0] != first {
		t.Fatalf("snapshots = %v, want 2 starting with %s", ids, first)
	}
	target := t.TempDir()
	mustRun(t, client, "restore", first, "--target", target, "--verify")
	if b, _ := os.ReadFile(filepath.Join(target, src, "a.txt")); string(b) != "alpha\n" {
		t.Fatalf("restored a.txt = %q", b)
	}
	mustRun(t, client, "repo", "check", "--read-data")

	// The append-only client cannot forget: a clear error, nothing lost.
	code, _, errOut := client.run("", "forget", "--keep-last", "1", "--prune")
	if code == 0 || !strings.Contains(errOut, "append-only") || !strings.Contains(errOut, "full-access token") {
		t.Fatalf("append-only forget --prune: exit %d, stderr %q; want a failure naming append-only", code, errOut)
	}
	if ids := snapIDs(client); len(ids) != 2 {
		t.Fatalf("after refused forget: %d snapshots, want 2", len(ids))
	}
	mustRun(t, client, "repo", "check")
	if log, _ := os.ReadFile(filepath.Join(data, "vault.log")); !strings.Contains(string(log), `"token":"web1","method":"DELETE"`) {
		t.Fatalf("vault.log lacks the refused DELETE:\n%s", log)
	}

	// A full token can.
	adminRepo := client.with("BULWARK_VAULT_TOKEN", fullTok)
	mustRun(t, adminRepo, "forget", "--keep-last", "1", "--prune")
	if ids := snapIDs(adminRepo); len(ids) != 1 {
		t.Fatalf("after full forget: %v, want 1 snapshot", ids)
	}
	mustRun(t, adminRepo, "repo", "check", "--read-data")

	// Revoked: refused at once with a clear message.
	mustVault(t, admin, "vault", "token", "revoke", "web1", "--data", data)
	if code, _, errOut := client.run("", "backup", src); code == 0 || !strings.Contains(errOut, "token rejected") {
		t.Fatalf("backup with a revoked token: exit %d, %q", code, errOut)
	}
	// Plain http is refused before anything is sent.
	if code, _, errOut := client.with("BULWARK_REPO", "http://"+addr+"/web").run("", "snapshots"); code == 0 || !strings.Contains(errOut, "plain http") {
		t.Fatalf("http:// repository: exit %d, %q", code, errOut)
	}
	// No token: a usage error naming the variable.
	if code, _, errOut := client.with("BULWARK_VAULT_TOKEN", "").run("", "snapshots"); code != 2 || !strings.Contains(errOut, "BULWARK_VAULT_TOKEN") {
		t.Fatalf("no token: exit %d, %q", code, errOut)
	}
}

func TestVaultRetentionCLI(t *testing.T) {
	data := t.TempDir()
	c := newCLI(t)
	if code, _, errOut := vaultCmd(c, "vault", "retention", "--data", data, "--repo", "web"); code != 2 || !strings.Contains(errOut, "--keep-within") {
		t.Fatalf("retention without a rule: exit %d, %q", code, errOut)
	}
	if code, _, errOut := vaultCmd(c, "vault", "retention", "--data", data, "--repo", "nope", "--keep-within", "30d"); code == 0 || !strings.Contains(errOut, "nope") {
		t.Fatalf("retention of a missing repository: exit %d, %q", code, errOut)
	}
	if code, _, errOut := vaultCmd(c, "vault", "token", "revoke", "ghost", "--data", data); code != 2 || !strings.Contains(errOut, "no token") {
		t.Fatalf("revoke unknown: exit %d, %q", code, errOut)
	}
	if code, _, errOut := vaultCmd(c, "vault", "token", "add", "../x", "--data", data); code == 0 || !strings.Contains(errOut, "token name") {
		t.Fatalf("bad token name: exit %d, %q", code, errOut)
	}
}
