package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGuardCommand runs `bulwark guard --config FILE` on the acceptance
// configuration of issue 5 and drives it over loopback: requests pass to
// the upstream until the source's burst is spent, then 429 with
// Retry-After; the access log is JSON on stdout; metrics are served.
func TestGuardCommand(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s from %s", r.Host, r.Header.Get("X-Forwarded-For"))
	}))
	defer up.Close()
	listen, metrics := freePort(t), freePort(t)
	file := filepath.Join(t.TempDir(), "guard.yaml")
	cfg := fmt.Sprintf(`guard:
  listen: %s
  sites:
    - hosts: [shop.example]
      upstreams: [%s]
      limits: {rate: 20, burst: 40, connections: 50}   # per source address
      waf: block                                       # off | detect | block
`, listen, up.URL)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := newCLI(t).run("", "config", "check", file); code != 0 {
		t.Fatalf("config check: exit %d: %s", code, stderr)
	}

	var stdout, stderr syncBuffer
	e := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, e, []string{"guard", "--config", file, "--metrics", metrics}) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("guard did not stop after cancel")
		}
	}()

	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", listen)
	}}, Timeout: 10 * time.Second}
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err = c.Get("http://shop.example/"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("guard never answered: %v\nstderr: %s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "upstream saw shop.example from 127.0.0.2" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	// 40 more in a tight loop: the burst of 40 (one used) plus whatever
	// the rate of 20/s refilled meanwhile; a 429 must come within 80.
	var limited *http.Response
	for i := 0; i < 80 && limited == nil; i++ {
		r, err := c.Get("http://shop.example/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode == http.StatusTooManyRequests {
			limited = r
		} else if r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i+2, r.StatusCode)
		}
	}
	if limited == nil || limited.Header.Get("Retry-After") == "" {
		t.Fatalf("no 429 with Retry-After within 80 requests over a burst of 40: %v", limited)
	}
	// The WAF blocks an SQL injection from another source (this one is
	// out of tokens).
	d3 := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	c3 := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d3.DialContext(ctx, "tcp", listen)
	}}, Timeout: 10 * time.Second}
	wresp, err := c3.Get("http://shop.example/?id=1%27%20OR%20%271%27%3D%271")
	if err != nil {
		t.Fatal(err)
	}
	wresp.Body.Close()
	if wresp.StatusCode != http.StatusForbidden {
		t.Errorf("SQL injection through waf: block: %d, want 403", wresp.StatusCode)
	}

	mresp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(mbody), `bulwark_guard_blocks_total{reason="rate"}`) {
		t.Errorf("metrics lack the rate blocks:\n%s", mbody)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("guard exit status %d after SIGINT-like cancel; stderr: %s", code, stderr.String())
	}
	done <- 0 // for the deferred wait
	var lines, blocked int
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		lines++
		if m["blocked"] == "rate" {
			blocked++
		}
	}
	if lines < 3 || blocked != 1 {
		t.Errorf("access log: %d lines, %d rate blocks; want the requests and one block", lines, blocked)
	}
}

func TestGuardCommandErrors(t *testing.T) {
	dir := t.TempDir()
	noSites := filepath.Join(dir, "none.yaml")
	os.WriteFile(noSites, []byte("log: {level: info}\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("guard:\n  listen: 127.0.0.1:8080\n  sites:\n    - hosts: [a.example]\n      upstreams: [ftp://x]\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"guard"}, "guard needs --config FILE"},
		{[]string{"guard", "--config", noSites}, "no guard.sites: nothing to protect"},
		{[]string{"guard", "--config", bad}, `bad.yaml:5: guard.sites[0].upstreams[0]: "ftp://x" is not an http:// or https:// URL with a host`},
	} {
		code, _, stderr := newCLI(t).run("", tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", tc.args, code, stderr, tc.want)
		}
	}
}
