package main

// Acceptance tests of the fixed interface, run against the real
// binary as a user would: `bulwark up` in the foreground until SIGINT, the
// login endpoint, and `bulwark audit verify --data DIR` exit codes on an
// intact and a tampered log.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bulwark-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "bulwark")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build bulwark: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer, so a command run in-process can write to it.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a running `bulwark up` child process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	done   chan error
	client *http.Client
}

func startServer(t *testing.T, data string, env ...string) *server {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(binary, "up", "--data", data, "--listen", addr, "--log-format", "json")
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	buf := &syncBuffer{}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, addr: addr, stderr: buf, done: make(chan error, 1)}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			buf.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "bulwark is up") {
				close(up)
			}
		}
	}()
	go func() { s.done <- cmd.Wait(); pw.Close() }()
	select {
	case <-up:
	case err := <-s.done:
		t.Fatalf("bulwark up exited early: %v\n%s", err, buf.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("bulwark up did not come up\n%s", buf.String())
	}
	// Trust exactly the generated certificate.
	pem, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// stop sends sig and waits for a clean exit.
func (s *server) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("bulwark up after %v: %v\n%s", sig, err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bulwark up did not stop on %v", sig)
	}
	if !strings.Contains(s.stderr.String(), "shutting down") {
		t.Errorf("no clean shutdown logged:\n%s", s.stderr.String())
	}
}

func (s *server) post(t *testing.T, path, token string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "https://"+s.addr+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(t, req)
}

func (s *server) get(t *testing.T, path, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+s.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return s.send(t, req)
}

func (s *server) send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, so.String(), se.String()
}

func TestUpLoginMeAndCleanShutdown(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data, "BULWARK_ADMIN_PASSWORD=acceptance-admin-password")
	code, out := s.post(t, "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "acceptance-admin-password", "totp": ""})
	tok, _ := out["token"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("login: %d %v", code, out)
	}
	code, me := s.get(t, "/api/v1/me", tok)
	if code != 200 || me["user"].(map[string]any)["username"] != "admin" || len(me["grants"].([]any)) == 0 {
		t.Fatalf("me: %d %v", code, me)
	}
	if code, _ := s.get(t, "/readyz", ""); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	s.stop(t, syscall.SIGINT)

	// A second start on the same data keeps the account (no new password)
	// and stops cleanly on SIGTERM.
	s = startServer(t, data)
	if strings.Contains(s.stderr.String(), "password:") {
		t.Errorf("second start printed a password again")
	}
	if code, _ := s.post(t, "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "acceptance-admin-password"}); code != 200 {
		t.Errorf("login after restart: %d", code)
	}
	s.stop(t, syscall.SIGTERM)
}

func TestGeneratedAdminPasswordPrintedOnce(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data)
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("no generated password printed:\n%s", s.stderr.String())
	}
	if code, out := s.post(t, "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": m[1]}); code != 200 {
		t.Errorf("login with printed password: %d %v", code, out)
	}
	s.stop(t, syscall.SIGINT)
}

func TestAuditVerifyExitCodes(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data, "BULWARK_ADMIN_PASSWORD=acceptance-admin-password")
	for i := 0; i < 2; i++ { // failed logins to audit (within the free attempts)
		s.post(t, "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "wrong-password"})
	}
	_, out := s.post(t, "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "acceptance-admin-password"})
	tok := out["token"].(string)
	for _, u := range []string{"ann", "ben", "cid"} {
		if code, out := s.post(t, "/api/v1/users", tok, map[string]any{"username": u, "password": "password-of-" + u + "-x"}); code != 201 {
			t.Fatalf("create %s: %d %v", u, code, out)
		}
	}
	s.stop(t, syscall.SIGINT)

	code, stdout, stderr := runCLI(t, "audit", "verify", "--data", data)
	if code != 0 || !strings.Contains(stdout, "intact") {
		t.Fatalf("verify intact: exit %d\n%s%s", code, stdout, stderr)
	}
	anchor := filepath.Join(t.TempDir(), "anchor.json")
	if code, so, se := runCLI(t, "audit", "anchor", "--data", data, "--to", anchor); code != 0 {
		t.Fatalf("anchor: %d %s %s", code, so, se)
	}
	code, stdout, _ = runCLI(t, "audit", "export", "--data", data, "--format", "jsonl")
	if code != 0 || strings.Count(stdout, "\n") < 8 || !strings.Contains(stdout, `"action":"user.create"`) {
		t.Fatalf("export: exit %d\n%s", code, stdout)
	}

	db, err := sql.Open("sqlite", filepath.Join(data, "bulwark.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var target int64
	if err := db.QueryRow(`SELECT seq FROM audit_entries WHERE action = 'user.create' AND resource = 'user/ben'`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_entries SET actor = 'user:nobody' WHERE seq = $1`, target); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "audit", "verify", "--data", data)
	if code != 1 || !strings.Contains(stdout+stderr, fmt.Sprintf("entry %d", target)) {
		t.Fatalf("verify tampered: exit %d, want 1 naming entry %d\n%s%s", code, target, stdout, stderr)
	}
	if _, err := db.Exec(`UPDATE audit_entries SET actor = 'user:admin' WHERE seq = $1`, target); err != nil {
		t.Fatal(err)
	}
	// Cutting off the newest entries is caught against the anchor.
	if _, err := db.Exec(`DELETE FROM audit_entries WHERE seq > $1`, target); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_head SET seq = $1, hash = (SELECT hash FROM audit_entries WHERE seq = $1)`, target); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "audit", "verify", "--data", data, "--anchor", anchor)
	if code != 1 || !strings.Contains(stdout+stderr, "truncated") {
		t.Fatalf("verify truncated: exit %d, want 1 reporting truncation\n%s%s", code, stdout, stderr)
	}
	// A data directory without a database is an error, not an empty log.
	if code, _, se := runCLI(t, "audit", "verify", "--data", t.TempDir()); code != 2 || !strings.Contains(se, "no Bulwark database") {
		t.Errorf("verify empty dir: exit %d %s", code, se)
	}
}

func TestConfigCheckReportsLineAndField(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:9443\naudit:\n  retention: 730d\n"), 0o600)
	os.WriteFile(bad, []byte("listen: 127.0.0.1:9443\nauth:\n  password_min_length: 3\n  sesion_idle_timeout: 5m\n"), 0o600)
	if code, so, se := runCLI(t, "config", "check", good); code != 0 {
		t.Errorf("good config: exit %d %s %s", code, so, se)
	}
	code, so, se := runCLI(t, "config", "check", bad)
	if code != 1 || !strings.Contains(se, "bad.yaml:3: auth.password_min_length") || !strings.Contains(se, "bad.yaml:4: auth.sesion_idle_timeout") {
		t.Errorf("bad config: exit %d\n%s%s", code, so, se)
	}
}

// TestRecoverLockedAdmin: the only admin locked out by a guesser is
// recovered offline, and the recovery is audited.
func TestRecoverLockedAdmin(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, data, "BULWARK_ADMIN_PASSWORD=acceptance-admin-password")
	s.stop(t, syscall.SIGINT)
	db, err := sql.Open("sqlite", filepath.Join(data, "bulwark.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE users SET locked = 1, locked_reason = 'test' WHERE username = 'admin'`); err != nil {
		t.Fatal(err)
	}
	if code, so, se := runCLI(t, "recover", "unlock", "--data", data, "admin"); code != 0 || !strings.Contains(so, "Unlocked admin") {
		t.Fatalf("recover unlock: %d %s %s", code, so, se)
	}
	code, so, se := runCLI(t, "recover", "password", "--data", data, "admin")
	m := regexp.MustCompile(`\(shown once\): (\S+)`).FindStringSubmatch(so)
	if code != 0 || m == nil {
		t.Fatalf("recover password: %d %s %s", code, so, se)
	}
	s = startServer(t, data)
	if code, out := s.post(t, "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": m[1]}); code != 200 {
		t.Errorf("login with recovered password: %d %v", code, out)
	}
	s.stop(t, syscall.SIGTERM)
	if code, so, _ := runCLI(t, "audit", "export", "--data", data); code != 0 || !strings.Contains(so, `"offline":true`) {
		t.Errorf("offline recovery not audited")
	}
}
