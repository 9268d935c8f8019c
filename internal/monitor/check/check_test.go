package check

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/firewall/netnstest"
	"golang.org/x/net/dns/dnsmessage"
)

func run(t *testing.T, cfg config.Check, o Options) Result {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "t"
	}
	c, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c.Run(context.Background())
}

func want(t *testing.T, r Result, ok bool, status Status, msg string) {
	t.Helper()
	if r.OK != ok || r.Status != status || !strings.Contains(r.Message, msg) {
		t.Errorf("result %+v\nwant ok=%v status=%s message containing %q", r, ok, status, msg)
	}
}

// site is an HTTP server whose status, delay and body the test changes.
type site struct {
	mu     sync.Mutex
	status int
	delay  time.Duration
	body   string
	// what the last request carried
	method, header, reqBody string
	hits                    atomic.Int64
}

func (s *site) set(status int, delay time.Duration, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.delay, s.body = status, delay, body
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	if r.URL.Path == "/redirect" {
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	status, delay, body := s.status, s.delay, s.body
	s.method, s.header, s.reqBody = r.Method, r.Header.Get("X-Probe"), string(b)
	s.mu.Unlock()
	time.Sleep(delay)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestHTTP(t *testing.T) {
	s := &site{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	base := config.HTTPCheck{URL: srv.URL + "/", Status: 200, Contains: "ok", MaxLatency: config.Duration(150 * time.Millisecond)}
	tests := []struct {
		name    string
		status  int
		delay   time.Duration
		body    string
		mod     func(*config.HTTPCheck)
		ok      bool
		message string
	}{
		{"up", 200, 0, "all ok", nil, true, "status 200 in"},
		{"error status", 503, 0, "ok", nil, false, "status 503, want 200"},
		{"slow", 200, 400 * time.Millisecond, "ok", nil, false, "slower than 150ms"},
		{"content gone", 200, 0, "maintenance", nil, false, `does not contain "ok"`},
		{"any 2xx", 204, 0, "", func(h *config.HTTPCheck) { h.Status, h.Contains = 0, "" }, true, "status 204"},
		{"4xx without status", 404, 0, "", func(h *config.HTTPCheck) { h.Status, h.Contains = 0, "" }, false, "want 2xx or 3xx"},
		{"regex", 200, 0, "version 1.24.3", func(h *config.HTTPCheck) { h.Contains, h.Regex = "", `version 1\.2[0-9]\.` }, true, "status 200"},
		{"regex fails", 200, 0, "version 2.0", func(h *config.HTTPCheck) { h.Contains, h.Regex = "", `version 1\.` }, false, "does not match"},
		{"json", 200, 0, `{"status":"ok","db":{"lag":3}}`, func(h *config.HTTPCheck) { h.Contains, h.JSON = "", `$.db.lag < 10` }, true, "status 200"},
		{"json fails", 200, 0, `{"status":"ok","db":{"lag":30}}`, func(h *config.HTTPCheck) { h.Contains, h.JSON = "", `$.db.lag < 10` }, false, "$.db.lag is 30, want < 10"},
		{"json not json", 200, 0, `<html>`, func(h *config.HTTPCheck) { h.Contains, h.JSON = "", `$.status` }, false, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.set(tt.status, tt.delay, tt.body)
			h := base
			if tt.mod != nil {
				tt.mod(&h)
			}
			r := run(t, config.Check{HTTP: h}, Options{})
			want(t, r, tt.ok, map[bool]Status{true: StatusOK, false: StatusCritical}[tt.ok], tt.message)
			if r.Values["status_code"] != float64(tt.status) || r.Values["latency_seconds"] <= 0 {
				t.Errorf("values %v", r.Values)
			}
		})
	}
	t.Run("method headers body", func(t *testing.T) {
		s.set(200, 0, "ok")
		r := run(t, config.Check{HTTP: config.HTTPCheck{URL: srv.URL + "/", Method: "POST", Headers: []string{"X-Probe: 42"}, Body: "ping"}}, Options{})
		want(t, r, true, StatusOK, "status 200")
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.method != "POST" || s.header != "42" || s.reqBody != "ping" {
			t.Errorf("server saw %s %q %q", s.method, s.header, s.reqBody)
		}
	})
	t.Run("redirects", func(t *testing.T) {
		s.set(200, 0, "ok")
		r := run(t, config.Check{HTTP: config.HTTPCheck{URL: srv.URL + "/redirect", Status: 200}}, Options{})
		want(t, r, false, StatusCritical, "status 302, want 200")
		r = run(t, config.Check{HTTP: config.HTTPCheck{URL: srv.URL + "/redirect", Status: 200, FollowRedirects: true}}, Options{})
		want(t, r, true, StatusOK, "status 200")
	})
	t.Run("server down", func(t *testing.T) {
		r := run(t, config.Check{HTTP: config.HTTPCheck{URL: "http://" + closedAddr(t) + "/"}}, Options{})
		want(t, r, false, StatusCritical, "connection refused")
		// Credentials in the URL never reach the message (events,
		// notices and the API carry it).
		r = run(t, config.Check{HTTP: config.HTTPCheck{URL: "http://user:s3cr3tpw@" + closedAddr(t) + "/x?token=t0ps3cr3t&a=1"}}, Options{})
		want(t, r, false, StatusCritical, "connection refused")
		if strings.Contains(r.Message, "s3cr3tpw") || strings.Contains(r.Message, "t0ps3cr3t") || !strings.Contains(r.Message, "token=REDACTED") {
			t.Errorf("message %q", r.Message)
		}
	})
	t.Run("retries", func(t *testing.T) {
		var n atomic.Int64
		flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) <= 2 {
				w.WriteHeader(500)
			}
		}))
		defer flaky.Close()
		r := run(t, config.Check{Retries: 3, HTTP: config.HTTPCheck{URL: flaky.URL}}, Options{})
		if !r.OK || r.Attempts != 3 {
			t.Errorf("after two failures: %+v, want a pass on attempt 3", r)
		}
		n.Store(0)
		r = run(t, config.Check{Retries: 1, HTTP: config.HTTPCheck{URL: flaky.URL}}, Options{})
		if r.OK || r.Attempts != 2 {
			t.Errorf("one retry: %+v, want a failure after 2 attempts", r)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s.set(200, 2*time.Second, "ok")
		r := run(t, config.Check{Timeout: config.Duration(200 * time.Millisecond), HTTP: config.HTTPCheck{URL: srv.URL + "/"}}, Options{})
		want(t, r, false, StatusCritical, "timed out after 200ms")
		if r.DurationSeconds > 1.5 {
			t.Errorf("the run took %.1f s; the timeout is 200ms", r.DurationSeconds)
		}
	})
}

func TestHTTPSCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	notAfter := srv.Certificate().NotAfter
	h := config.HTTPCheck{URL: srv.URL, InsecureSkipVerify: true}
	r := run(t, config.Check{HTTP: h}, Options{})
	want(t, r, true, StatusOK, "status 200")
	if left := r.Values["cert_expiry_seconds"]; left < 3600*24*365 {
		t.Errorf("cert_expiry_seconds %v", left)
	}
	// Ten days before the end, inside the default 14-day window.
	r = run(t, config.Check{HTTP: h}, Options{Now: func() time.Time { return notAfter.Add(-10 * 24 * time.Hour) }})
	want(t, r, false, StatusCritical, "the certificate expires in 10 days")
	r = run(t, config.Check{HTTP: h}, Options{Now: func() time.Time { return notAfter.Add(time.Hour) }})
	want(t, r, false, StatusCritical, "the certificate expired on")
	// Verification on: httptest's certificate is signed by no known CA.
	r = run(t, config.Check{HTTP: config.HTTPCheck{URL: srv.URL}}, Options{})
	want(t, r, false, StatusCritical, "certificate signed by unknown authority")
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	notAfter := srv.Certificate().NotAfter
	r := run(t, config.Check{TLS: config.TLSCheck{Address: addr, InsecureSkipVerify: true}}, Options{})
	want(t, r, true, StatusOK, "the certificate expires in")
	r = run(t, config.Check{TLS: config.TLSCheck{Address: addr}}, Options{})
	want(t, r, false, StatusCritical, "does not verify")
	r = run(t, config.Check{TLS: config.TLSCheck{Address: addr, InsecureSkipVerify: true, Expiry: config.Duration(30 * 24 * time.Hour)}},
		Options{Now: func() time.Time { return notAfter.Add(-20 * 24 * time.Hour) }})
	want(t, r, false, StatusCritical, "expires in 20 days")
	r = run(t, config.Check{TLS: config.TLSCheck{Address: closedAddr(t)}}, Options{})
	want(t, r, false, StatusCritical, "connection refused")
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := run(t, config.Check{TCP: config.TCPCheck{Address: ln.Addr().String()}}, Options{})
	want(t, r, true, StatusOK, "accepts connections")
	r = run(t, config.Check{TCP: config.TCPCheck{Address: closedAddr(t)}}, Options{})
	want(t, r, false, StatusCritical, "connection refused")
	// The real PostgreSQL, as in the example.
	r = run(t, config.Check{TCP: config.TCPCheck{Address: "127.0.0.1:5432"}}, Options{})
	want(t, r, true, StatusOK, "127.0.0.1:5432 accepts connections")
}

// serveLines answers every connection with the given text, then holds it
// open until the client leaves.
func serveLines(t *testing.T, text string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, text)
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSSH(t *testing.T) {
	addr := serveLines(t, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
	r := run(t, config.Check{SSH: config.SSHCheck{Address: addr, Contains: "OpenSSH_9"}}, Options{})
	want(t, r, true, StatusOK, "SSH-2.0-OpenSSH_9.2p1")
	r = run(t, config.Check{SSH: config.SSHCheck{Address: addr, Contains: "OpenSSH_10"}}, Options{})
	want(t, r, false, StatusCritical, `does not contain "OpenSSH_10"`)
	// Lines before the identification are allowed (RFC 4253 4.2).
	r = run(t, config.Check{SSH: config.SSHCheck{Address: serveLines(t, "hello\r\nSSH-2.0-x\r\n")}}, Options{})
	want(t, r, true, StatusOK, "SSH-2.0-x")
	// Not SSH: an HTTP server answering with no banner, and an endless
	// line.
	r = run(t, config.Check{Timeout: config.Duration(300 * time.Millisecond), SSH: config.SSHCheck{Address: serveLines(t, "")}}, Options{})
	want(t, r, false, StatusCritical, "sent no SSH banner")
	r = run(t, config.Check{SSH: config.SSHCheck{Address: serveLines(t, strings.Repeat("x", 100000))}}, Options{})
	want(t, r, false, StatusCritical, "sent no SSH banner")
}

// dnsServer answers A queries for the names given, NXDOMAIN otherwise.
func dnsServer(t *testing.T, names map[string][4]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if err := m.Unpack(buf[:n]); err != nil || len(m.Questions) != 1 {
				continue
			}
			q := m.Questions[0]
			m.Header.Response, m.Header.Authoritative = true, true
			ip, ok := names[q.Name.String()]
			switch {
			case !ok:
				m.Header.RCode = dnsmessage.RCodeNameError
			case q.Type == dnsmessage.TypeA:
				m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body: &dnsmessage.AResource{A: ip}}}
			}
			out, err := m.Pack()
			if err == nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestDNS(t *testing.T) {
	server := dnsServer(t, map[string][4]byte{"www.example.test.": {192, 0, 2, 10}})
	r := run(t, config.Check{DNS: config.DNSCheck{Name: "www.example.test", Server: server}}, Options{})
	want(t, r, true, StatusOK, "A www.example.test is 192.0.2.10")
	r = run(t, config.Check{DNS: config.DNSCheck{Name: "www.example.test", Server: server, Expect: []string{"192.0.2.10"}}}, Options{})
	want(t, r, true, StatusOK, "192.0.2.10")
	r = run(t, config.Check{DNS: config.DNSCheck{Name: "www.example.test", Server: server, Expect: []string{"192.0.2.99"}}}, Options{})
	want(t, r, false, StatusCritical, "is 192.0.2.10, none of 192.0.2.99")
	r = run(t, config.Check{DNS: config.DNSCheck{Name: "gone.example.test", Server: server}}, Options{})
	want(t, r, false, StatusCritical, "no such host")
}

func TestPing(t *testing.T) {
	r := run(t, config.Check{Timeout: config.Duration(3 * time.Second), Ping: config.PingCheck{Host: "127.0.0.1", Count: 3}}, Options{})
	if os.Geteuid() != 0 && r.Status == StatusUnknown {
		want(t, r, false, StatusUnknown, "ping_group_range")
		return
	}
	want(t, r, true, StatusOK, "3 of 3 answered, 0% loss")
	if r.Values["loss_percent"] != 0 || r.Values["latency_seconds"] <= 0 {
		t.Errorf("values %v", r.Values)
	}
	// In a network namespace of its own, whose loopback is down, nothing
	// answers: the check fails. (The sandbox this runs in may answer
	// pings to any address, so an unrouted address proves nothing.)
	ns := netnstest.New(t)
	ns.IP(t, "link", "set", "lo", "down")
	if err := ns.Do(func() error {
		r = run(t, config.Check{Timeout: config.Duration(time.Second), Ping: config.PingCheck{Host: "127.0.0.1", Count: 2}}, Options{})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r.OK {
		t.Errorf("ping with the network down passed: %+v", r)
	}
}

// TestPingUnprivileged: without a raw socket, the check uses a datagram
// ping socket where net.ipv4.ping_group_range allows this process's group,
// and says so where it does not. The range is per network namespace: the
// test sets it in one of its own.
func TestPingUnprivileged(t *testing.T) {
	netnstest.RequireRoot(t)
	forceDatagram = true
	defer func() { forceDatagram = false }()
	ns := netnstest.New(t)
	ns.IP(t, "link", "set", "lo", "up")
	sysctl := func(v string) {
		netnstest.Command(t, "", "ip", "netns", "exec", ns.Name, "sysctl", "-qw", "net.ipv4.ping_group_range="+v)
	}
	var r Result
	ping := func() {
		t.Helper()
		if err := ns.Do(func() error {
			r = run(t, config.Check{Timeout: config.Duration(2 * time.Second), Ping: config.PingCheck{Host: "127.0.0.1", Count: 2}}, Options{})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	sysctl("1 0") // nobody: the kernel's default
	ping()
	want(t, r, false, StatusUnknown, "ping_group_range")
	sysctl("0 2147483647")
	ping()
	want(t, r, true, StatusOK, "2 of 2 answered")
}

func TestPostgres(t *testing.T) {
	dsn := "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	r := run(t, config.Check{Postgres: config.DBCheck{DSN: config.LiteralSecret(dsn)}}, Options{})
	want(t, r, true, StatusOK, "is a primary with 0 streaming standbys")
	r = run(t, config.Check{Postgres: config.DBCheck{DSN: config.LiteralSecret(dsn), MinReplicas: 1}}, Options{})
	want(t, r, false, StatusCritical, "has 0 streaming standbys, fewer than 1")
	r = run(t, config.Check{Postgres: config.DBCheck{DSN: config.LiteralSecret(dsn), Query: "SELECT nope FROM nowhere"}}, Options{})
	want(t, r, false, StatusCritical, `relation "nowhere" does not exist`)
	r = run(t, config.Check{Postgres: config.DBCheck{DSN: config.LiteralSecret("postgres://root:s3cr3tpw@" + closedAddr(t) + "/test?sslmode=disable")}}, Options{})
	want(t, r, false, StatusCritical, "connect to PostgreSQL")
	if strings.Contains(r.Message, "s3cr3tpw") {
		t.Errorf("the password leaked into %q", r.Message)
	}
	// A DSN from the environment, as configurations should give it.
	r = run(t, config.Check{Postgres: config.DBCheck{DSN: config.EnvSecret("PGCHECK_DSN")}}, Options{Getenv: func(k string) string {
		return map[string]string{"PGCHECK_DSN": dsn}[k]
	}})
	want(t, r, true, StatusOK, "is a primary")
}

func TestMySQL(t *testing.T) {
	dsn := config.LiteralSecret("mysql://root@127.0.0.1:3306/test")
	r := run(t, config.Check{MySQL: config.DBCheck{DSN: dsn}}, Options{})
	want(t, r, true, StatusOK, "is a primary with 0 connected replicas")
	r = run(t, config.Check{MySQL: config.DBCheck{DSN: dsn, MinReplicas: 1}}, Options{})
	want(t, r, false, StatusCritical, "has 0 connected replicas, fewer than 1")
	r = run(t, config.Check{MySQL: config.DBCheck{DSN: dsn, Query: "SELECT * FROM nowhere"}}, Options{})
	want(t, r, false, StatusCritical, "doesn't exist")
	r = run(t, config.Check{MySQL: config.DBCheck{DSN: config.LiteralSecret("mysql://root:s3cr3tpw@" + closedAddr(t) + "/test")}}, Options{})
	want(t, r, false, StatusCritical, "connect to MySQL")
	if strings.Contains(r.Message, "s3cr3tpw") {
		t.Errorf("the password leaked into %q", r.Message)
	}
	if _, err := New(config.Check{Name: "x", MySQL: config.DBCheck{DSN: config.LiteralSecret("root:pw@tcp(127.0.0.1:3306)/test")}}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "mysql.dsn: mysql DSN: the Go driver's USER:PASS@tcp(HOST:PORT)/DB form is not accepted") {
		t.Errorf("a bad DSN: %v", err)
	}
}

func TestProcess(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	self := strings.TrimSpace(string(comm))
	r := run(t, config.Check{Process: config.ProcessCheck{Name: self}}, Options{})
	want(t, r, true, StatusOK, "named "+self+" are running")
	r = run(t, config.Check{Process: config.ProcessCheck{Name: self, Min: 1000}}, Options{})
	want(t, r, false, StatusCritical, "fewer than 1000")
	r = run(t, config.Check{Process: config.ProcessCheck{Name: "no-such-proc"}}, Options{})
	want(t, r, false, StatusCritical, "no process named no-such-proc")
}

func TestSystemd(t *testing.T) {
	r := run(t, config.Check{Systemd: config.SystemdCheck{Unit: "ssh.service"}}, Options{})
	if !SystemdRunning() {
		want(t, r, false, StatusUnknown, "systemd is not running on this host")
		return
	}
	r = run(t, config.Check{Systemd: config.SystemdCheck{Unit: "no-such-unit-xyz.service"}}, Options{})
	if r.OK {
		t.Errorf("a missing unit passed: %+v", r)
	}
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "last-run")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	cfg := config.Check{File: config.FileCheck{Path: p, MaxAge: config.Duration(25 * time.Hour)}}
	r := run(t, cfg, Options{Now: func() time.Time { return mtime.Add(24 * time.Hour) }})
	want(t, r, true, StatusOK, "was modified 24h0m0s ago")
	r = run(t, cfg, Options{Now: func() time.Time { return mtime.Add(26 * time.Hour) }})
	want(t, r, false, StatusCritical, "last modified 26h0m0s ago (at 2026-11-01T03:00:00Z), longer than 1d1h")
	cfg.File.Path += ".missing"
	r = run(t, cfg, Options{})
	want(t, r, false, StatusCritical, "does not exist")
}

// plugin writes a shell script that prints out and exits with code.
func plugin(t *testing.T, out string, code int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check_test")
	script := fmt.Sprintf("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\nexit %d\n", out, code)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNagios(t *testing.T) {
	tests := []struct {
		out     string
		code    int
		ok      bool
		status  Status
		message string
	}{
		{"DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968", 0, true, StatusOK, "DISK OK - free space: / 3326 MB (56%);"},
		{"LOAD WARNING - load average: 5.1 | load1=5.1;5;10;0", 1, true, StatusWarning, "LOAD WARNING"},
		{"PROCS CRITICAL: 0 processes", 2, false, StatusCritical, "PROCS CRITICAL"},
		{"UNKNOWN - cannot read /proc", 3, false, StatusUnknown, "cannot read /proc"},
		{"weird", 7, false, StatusUnknown, "exit status 7 is not a Nagios status (0-3): weird"},
	}
	for _, tt := range tests {
		r := run(t, config.Check{Nagios: config.NagiosCheck{Command: []string{plugin(t, tt.out, tt.code)}}}, Options{})
		want(t, r, tt.ok, tt.status, tt.message)
		if r.Values["exit_status"] != float64(tt.code) {
			t.Errorf("exit_status %v, want %d", r.Values["exit_status"], tt.code)
		}
	}
	r := run(t, config.Check{Nagios: config.NagiosCheck{Command: []string{plugin(t, "DISK OK | /=2643MB;5948;5958;0;5968", 0)}}}, Options{})
	if len(r.Perf) != 1 || r.Perf[0].Label != "/" || r.Perf[0].Value != 2643 || r.Perf[0].Unit != "MB" || r.Values["/"] != 2643 {
		t.Errorf("perf %+v values %v", r.Perf, r.Values)
	}
	r = run(t, config.Check{Nagios: config.NagiosCheck{Command: []string{plugin(t, "LOAD WARNING", 1)}, WarningIsFailure: true}}, Options{})
	want(t, r, false, StatusWarning, "LOAD WARNING")
	// A plugin that hangs is killed with its children at the timeout: the
	// child it started (its PID written to a file) is gone too.
	dir := t.TempDir()
	hang := filepath.Join(dir, "check_hang")
	os.WriteFile(hang, []byte("#!/bin/sh\nsleep 30 &\necho $! > "+dir+"/child.pid\nsleep 30\n"), 0o755)
	start := time.Now()
	r = run(t, config.Check{Timeout: config.Duration(500 * time.Millisecond), Nagios: config.NagiosCheck{Command: []string{hang}}}, Options{})
	want(t, r, false, StatusUnknown, "did not finish in time")
	if time.Since(start) > 5*time.Second {
		t.Errorf("a hanging plugin held the run for %s", time.Since(start))
	}
	pidText, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(pidText), &pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// A killed child may linger as a zombie until reaped by init:
		// gone or a zombie are both dead.
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's child %d outlived the timeout: %s", pid, stat)
		}
	}
	r = run(t, config.Check{Nagios: config.NagiosCheck{Command: []string{"/nonexistent/check_x"}}}, Options{})
	want(t, r, false, StatusUnknown, "no such file")
}

func TestParsePerfData(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		in   string
		want []Perf
	}{
		{"time=0.01s;1;2;0 size=512B", []Perf{{Label: "time", Value: 0.01, Unit: "s", Warn: "1", Crit: "2", Min: f(0)}, {Label: "size", Value: 512, Unit: "B"}}},
		{"'disk usage'=80%;90;95;0;100", []Perf{{Label: "disk usage", Value: 80, Unit: "%", Warn: "90", Crit: "95", Min: f(0), Max: f(100)}}},
		{"'it''s'=1", []Perf{{Label: "it's", Value: 1}}},
		{"c=5c users=-3", []Perf{{Label: "c", Value: 5, Unit: "c"}, {Label: "users", Value: -3}}},
		{"garbage noequals x=notanumber y=2", []Perf{{Label: "y", Value: 2}}},
		{"'unterminated=3", nil},
		{"'\xffbad'=1", []Perf{{Label: "\uFFFDbad", Value: 1}}},
		{"", nil},
	}
	for _, tt := range tests {
		got := ParsePerfData(tt.in)
		if fmt.Sprintf("%+v", deref(got)) != fmt.Sprintf("%+v", deref(tt.want)) {
			t.Errorf("ParsePerfData(%q) =\n %+v\nwant\n %+v", tt.in, deref(got), deref(tt.want))
		}
	}
	msg, perf := ParsePluginOutput("OK - all good | a=1\nlong line one\nlong line two | b=2\nc=3\n")
	if msg != "OK - all good" || len(perf) != 3 || perf[2].Label != "c" {
		t.Errorf("ParsePluginOutput: %q %+v", msg, perf)
	}
}

func deref(ps []Perf) []string {
	var out []string
	for _, p := range ps {
		s := fmt.Sprintf("%s=%v%s;%s;%s", p.Label, p.Value, p.Unit, p.Warn, p.Crit)
		if p.Min != nil {
			s += fmt.Sprintf(";min=%v", *p.Min)
		}
		if p.Max != nil {
			s += fmt.Sprintf(";max=%v", *p.Max)
		}
		out = append(out, s)
	}
	return out
}

// FuzzParsePluginOutput: a plugin's output is untrusted text.
func FuzzParsePluginOutput(f *testing.F) {
	for _, s := range []string{"OK | a=1;2;3;4;5", "X | 'a b'=3MB 'c''d'=-1e3%;;;0", "\n|\n|", "'", "a=", "=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg, perf := ParsePluginOutput(s)
		if len(perf) > MaxPerf || strings.Contains(msg, "\n") {
			t.Fatalf("%d items, message %q", len(perf), msg)
		}
		for _, p := range perf {
			if !utf8.ValidString(p.Label) || len(p.Label) > MaxPerfLabel {
				t.Fatalf("label %q", p.Label)
			}
		}
	})
}

func TestNewErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  config.Check
		want string
	}{
		{config.Check{Name: "a"}, `check "a": says nothing to check`},
		{config.Check{Name: "b", HTTP: config.HTTPCheck{URL: "http://x/", JSON: "status == 1"}}, `check "b": http.json: condition`},
		{config.Check{Name: "c", Postgres: config.DBCheck{DSN: config.EnvSecret("UNSET_FOR_TEST")}}, `check "c": postgres.dsn`},
	} {
		_, err := New(tt.cfg, Options{Getenv: func(string) string { return "" }})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestDatabasePrivileges: a check's user without the monitoring
// privileges sees NULL replication states (PostgreSQL) or is refused
// (MariaDB); the check must say which grant is missing, never report a
// stopped receiver or zero replicas that it could not see.
func TestDatabasePrivileges(t *testing.T) {
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	t.Run("postgres", func(t *testing.T) {
		admin := "postgres://root@127.0.0.1:5432/test?sslmode=disable"
		role := "bw_mon_" + suffix
		psql := func(q string) {
			t.Helper()
			r := run(t, config.Check{Postgres: config.DBCheck{DSN: config.LiteralSecret(admin), Query: q}}, Options{})
			if !r.OK {
				t.Fatalf("%s: %s", q, r.Message)
			}
		}
		psql("CREATE ROLE " + role + " LOGIN")
		t.Cleanup(func() { psql("DROP ROLE " + role) })
		dsn := config.LiteralSecret("postgres://" + role + "@127.0.0.1:5432/test?sslmode=disable")
		r := run(t, config.Check{Postgres: config.DBCheck{DSN: dsn}}, Options{})
		want(t, r, true, StatusOK, "replication not read: role "+role+" lacks pg_monitor")
		r = run(t, config.Check{Postgres: config.DBCheck{DSN: dsn, MinReplicas: 1}}, Options{})
		want(t, r, false, StatusUnknown, "GRANT pg_monitor TO "+role)
		psql("GRANT pg_monitor TO " + role)
		r = run(t, config.Check{Postgres: config.DBCheck{DSN: dsn, MinReplicas: 1}}, Options{})
		want(t, r, false, StatusCritical, "has 0 streaming standbys, fewer than 1")
	})
	t.Run("mysql", func(t *testing.T) {
		admin := config.LiteralSecret("mysql://root@127.0.0.1:3306/test")
		user := "bwmon" + suffix
		sql := func(q string) {
			t.Helper()
			r := run(t, config.Check{MySQL: config.DBCheck{DSN: admin, Query: q}}, Options{})
			if !r.OK {
				t.Fatalf("%s: %s", q, r.Message)
			}
		}
		sql("CREATE USER '" + user + "'@'127.0.0.1'")
		t.Cleanup(func() { sql("DROP USER '" + user + "'@'127.0.0.1'") })
		dsn := config.LiteralSecret("mysql://" + user + "@127.0.0.1:3306/")
		r := run(t, config.Check{MySQL: config.DBCheck{DSN: dsn}}, Options{})
		want(t, r, true, StatusOK, "replication not read")
		r = run(t, config.Check{MySQL: config.DBCheck{DSN: dsn, MinReplicas: 1}}, Options{})
		want(t, r, false, StatusUnknown, "GRANT REPLICA MONITOR")
		sql("GRANT REPLICA MONITOR ON *.* TO '" + user + "'@'127.0.0.1'")
		r = run(t, config.Check{MySQL: config.DBCheck{DSN: dsn, MinReplicas: 1}}, Options{})
		want(t, r, false, StatusUnknown, "GRANT PROCESS")
		sql("GRANT PROCESS ON *.* TO '" + user + "'@'127.0.0.1'")
		r = run(t, config.Check{MySQL: config.DBCheck{DSN: dsn, MinReplicas: 1}}, Options{})
		want(t, r, false, StatusCritical, "has 0 connected replicas, fewer than 1")
	})
}
