package guard

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
)

func TestProxyForwardsAndLogs(t *testing.T) {
	up := newEcho(t, "a")
	var log syncBuffer
	cfg := guardConfig(up.srv.URL)
	cfg.Sites = append(cfg.Sites, config.GuardSite{Hosts: []string{"*.blog.example"}, Upstreams: []string{up.srv.URL + "/prefix"}})
	_, addr, _ := startGuard(t, cfg, Options{AccessLog: &log})
	c := client(t, 2, addr)

	resp, body := get(t, c, "http://shop.example/cart?x=1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := decodeEcho(t, body)
	got.Header = nil // TestSpoofedClientHeaders looks at the rest
	want := echoReply{Upstream: "a", Host: "shop.example", Path: "/cart?x=1", XFF: "127.0.0.2", Forwarded: `for=127.0.0.2;proto=http;host=shop.example`, Proto: "http"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("upstream saw %+v\nwant %+v", got, want)
	}

	// A wildcard site, with an upstream path prefix.
	resp, body = get(t, c, "http://news.blog.example/post/1")
	if got := decodeEcho(t, body); resp.StatusCode != 200 || got.Path != "/prefix/post/1" || got.Host != "news.blog.example" {
		t.Errorf("wildcard site: %d %+v", resp.StatusCode, got)
	}
	if resp, _ := get(t, c, "http://blog.example/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the wildcard's parent domain: status %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, c, "http://other.example/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown host: status %d, want 404", resp.StatusCode)
	}

	lines := log.Lines(t)
	if len(lines) != 4 {
		t.Fatalf("access log has %d lines, want 4:\n%v", len(lines), lines)
	}
	first := lines[0]
	for k, v := range map[string]any{"site": "shop.example", "client": "127.0.0.2", "method": "GET", "host": "shop.example", "uri": "/cart?x=1", "status": float64(200), "proto": "HTTP/1.1"} {
		if first[k] != v {
			t.Errorf("access log %s = %v, want %v (line %v)", k, first[k], v, first)
		}
	}
	if up, _ := first["upstream"].(string); !strings.HasPrefix(up, "127.0.0.1:") {
		t.Errorf("access log upstream = %v", first["upstream"])
	}
	if lines[3]["blocked"] != "unknown_site" || lines[3]["status"] != float64(404) {
		t.Errorf("unknown host line: %v", lines[3])
	}
}

func TestTrustedProxies(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.TrustedProxies = []string{"127.0.0.5"}
	cfg.Sites[0].Limits = config.GuardSiteLimits{Rate: 1, Burst: 2}
	clk := &clock{t: time.Unix(1e9, 0)}
	_, addr, _ := startGuard(t, cfg, Options{Now: clk.Now})

	req := func(from int, xff string) (*http.Response, echoReply) {
		r, _ := http.NewRequest("GET", "http://shop.example/", nil)
		r.Header.Set("X-Forwarded-For", xff)
		resp, err := client(t, from, addr).Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return resp, echoReply{}
		}
		return resp, decodeEcho(t, b)
	}
	// Behind the trusted proxy the client is the address it names, and
	// the chain is kept.
	if _, got := req(5, "203.0.113.9"); got.XFF != "203.0.113.9, 127.0.0.5" || !strings.HasPrefix(got.Forwarded, `for=203.0.113.9, for=127.0.0.5`) {
		t.Errorf("through the trusted proxy: xff %q forwarded %q", got.XFF, got.Forwarded)
	}
	// Limits apply per client behind the proxy: 203.0.113.9 has one
	// request of its burst of 2 left, another client has its own.
	if resp, _ := req(5, "203.0.113.9"); resp.StatusCode != 200 {
		t.Errorf("second request of the burst: %d", resp.StatusCode)
	}
	if resp, _ := req(5, "203.0.113.9"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third request over burst 2: %d, want 429", resp.StatusCode)
	}
	if resp, _ := req(5, "198.51.100.7"); resp.StatusCode != 200 {
		t.Errorf("another client behind the same proxy: %d, want 200", resp.StatusCode)
	}
	// An untrusted peer cannot name itself someone else.
	if _, got := req(6, "203.0.113.77"); got.XFF != "127.0.0.6" || got.Forwarded != "for=127.0.0.6;proto=http;host=shop.example" {
		t.Errorf("spoofed header from an untrusted peer reached the upstream: xff %q forwarded %q", got.XFF, got.Forwarded)
	}
}

func TestRateLimit(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Sites[0].Limits = config.GuardSiteLimits{Rate: 5, Burst: 10}
	cfg.Allow = []string{"127.0.0.4"}
	clk := &clock{t: time.Unix(1e9, 0)}
	g, addr, _ := startGuard(t, cfg, Options{Now: clk.Now})
	a, b, allowed := client(t, 2, addr), client(t, 3, addr), client(t, 4, addr)

	for i := range 10 {
		if resp, body := get(t, a, "http://shop.example/"); resp.StatusCode != 200 {
			t.Fatalf("request %d of the burst: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := get(t, a, "http://shop.example/")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("11th request: %d Retry-After %q, want 429 and 1 (%s)", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, _ := get(t, b, "http://shop.example/"); resp.StatusCode != 200 {
		t.Errorf("another source: %d, want 200", resp.StatusCode)
	}
	for i := range 30 {
		if resp, _ := get(t, allowed, "http://shop.example/"); resp.StatusCode != 200 {
			t.Fatalf("allow-listed source, request %d: %d", i+1, resp.StatusCode)
		}
	}
	clk.Advance(200 * time.Millisecond) // one token at 5/s
	if resp, _ := get(t, a, "http://shop.example/"); resp.StatusCode != 200 {
		t.Errorf("after 200ms: %d, want 200", resp.StatusCode)
	}
	if resp, _ := get(t, a, "http://shop.example/"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the token spent: %d, want 429", resp.StatusCode)
	}
	if n := testutil.ToFloat64(g.metrics.blocks.WithLabelValues("rate")); n != 2 {
		t.Errorf("blocks{reason=rate} = %v, want 2", n)
	}
}

func TestConnectionCaps(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Limits.Connections = 3
	cfg.Limits.MaxConnections = 5
	g, addr, _ := startGuard(t, cfg, Options{})

	var held []net.Conn
	for range 3 {
		c := dialFrom(t, 2, addr)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatalf("a connection within the cap: %v", err)
		}
		held = append(held, c)
	}
	if !refusedAtAccept(t, 2, addr) {
		t.Error("a 4th connection from the same source was not closed at accept")
	}
	other := client(t, 3, addr)
	if resp, _ := get(t, other, "http://shop.example/"); resp.StatusCode != 200 {
		t.Errorf("another source: %d", resp.StatusCode)
	}
	other.Transport.(*http.Transport).CloseIdleConnections()
	held[0].Close()
	waitFor(t, "the closed connections' places to free", func() bool { return g.open.Load() == 2 })
	c := dialFrom(t, 2, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Errorf("a connection after one closed: %v", err)
	}
	// Global cap: 3 (source .2) + 2 more from other sources fill 5.
	c4, c5 := dialFrom(t, 7, addr), dialFrom(t, 8, addr)
	for _, c := range []net.Conn{c4, c5} {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatalf("within the global cap: %v", err)
		}
	}
	if !refusedAtAccept(t, 9, addr) {
		t.Error("a connection over max_connections was not closed")
	}
	if n := testutil.ToFloat64(g.metrics.blocks.WithLabelValues("connections")); n != 1 {
		t.Errorf("blocks{connections} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(g.metrics.blocks.WithLabelValues("max_connections")); n != 1 {
		t.Errorf("blocks{max_connections} = %v, want 1", n)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDenyList(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Deny = []string{"127.0.0.7", "192.0.2.0/24"}
	cfg.Allow = []string{"192.0.2.10"}
	cfg.TrustedProxies = []string{"127.0.0.5"}
	g, addr, _ := startGuard(t, cfg, Options{})
	if !refusedAtAccept(t, 7, addr) {
		t.Error("a denied source's connection was not closed at accept")
	}
	through := func(xff string) int { return viaProxy(t, 5, addr, xff) }
	if got := through("192.0.2.33"); got != http.StatusForbidden {
		t.Errorf("denied client behind a trusted proxy: %d, want 403", got)
	}
	if got := through("192.0.2.10"); got != 200 {
		t.Errorf("allowed address inside a denied network: %d, want 200", got)
	}
	g.applyRules(&rules.Snapshot{Version: 1, Deny: []netip.Prefix{netipPrefix(t, "198.51.100.0/24")}})
	if got := through("198.51.100.1"); got != http.StatusForbidden {
		t.Errorf("after adding a network at run time: %d, want 403", got)
	}
}

func TestSlowloris(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Timeouts.Header = config.Duration(time.Second)
	_, addr, _ := startGuard(t, cfg, Options{})
	c := dialFrom(t, 2, addr)
	start := time.Now()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: shop.example\r\n")
	// One header line every 300 ms: never finishing.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			time.Sleep(300 * time.Millisecond)
			if _, err := fmt.Fprintf(c, "X-Slow-%d: a\r\n", i); err != nil {
				return
			}
			if time.Since(start) > 10*time.Second {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	elapsed := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slowloris got a response %d", resp.StatusCode)
	}
	if elapsed > 5*time.Second {
		t.Errorf("slowloris connection lasted %v with a 1s header timeout", elapsed)
	}
	c.Close()
	<-done
	if resp, _ := get(t, client(t, 3, addr), "http://shop.example/"); resp.StatusCode != 200 {
		t.Errorf("a normal client: %d", resp.StatusCode)
	}
}

func TestSlowPostAndUploads(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Timeouts.MinBodyRate = 10 * config.KiB
	cfg.Timeouts.BodyGrace = config.Duration(time.Second)
	cfg.Timeouts.MaxBodyBytes = 64 * config.MiB
	_, addr, _ := startGuard(t, cfg, Options{})

	// Slow POST: 100 bytes every 200 ms (500 B/s) of an announced 1 MB.
	c := dialFrom(t, 2, addr)
	start := time.Now()
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 1000000\r\n\r\n")
	go func() {
		chunk := bytes.Repeat([]byte("p"), 100)
		for time.Since(start) < 15*time.Second {
			if _, err := c.Write(chunk); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	elapsed := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slow POST answered %d, want 408 or a closed connection", resp.StatusCode)
	}
	if elapsed > 8*time.Second {
		t.Errorf("slow POST lasted %v (min rate 10 KiB/s after 1 s)", elapsed)
	}

	// Front-loaded credit: 200 KiB at once (20 s at the minimum rate), then
	// 10 bytes every 800 ms. The burst buys at most one grace period: the
	// trickle is cut off within a few seconds, not after 20.
	c2 := dialFrom(t, 5, addr)
	start2 := time.Now()
	fmt.Fprintf(c2, "POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 1000000\r\n\r\n")
	if _, err := c2.Write(bytes.Repeat([]byte("f"), 200<<10)); err != nil {
		t.Fatal(err)
	}
	go func() {
		for time.Since(start2) < 25*time.Second {
			time.Sleep(800 * time.Millisecond)
			if _, err := c2.Write([]byte("0123456789")); err != nil {
				return
			}
		}
	}()
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	elapsed = time.Since(start2)
	if err == nil && resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("burst-then-trickle POST answered %d, want 408 or a closed connection", resp.StatusCode)
	}
	if elapsed > 8*time.Second {
		t.Errorf("burst-then-trickle POST lasted %v (grace 1 s; its burst was worth 20 s at the minimum rate)", elapsed)
	}

	// A large upload at full speed passes whole.
	big := bytes.Repeat([]byte("u"), 32<<20)
	r, _ := http.NewRequest("POST", "http://shop.example/upload", bytes.NewReader(big))
	resp, err = client(t, 3, addr).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := decodeEcho(t, b); resp.StatusCode != 200 || got.BodyBytes != int64(len(big)) {
		t.Errorf("32 MiB upload: %d, upstream got %d bytes", resp.StatusCode, got.BodyBytes)
	}

	// A steady upload at 40 KiB/s for 3 s (above the 10 KiB/s minimum)
	// passes too, though it takes longer than the grace period, and though
	// its link stalls for 500 ms in the middle (half the grace: a loaded
	// machine under the race detector can add a few hundred ms).
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("s"), 4<<10)
		for i := range 30 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
			if i == 15 {
				time.Sleep(500 * time.Millisecond)
			}
		}
		pw.Close()
	}()
	r, _ = http.NewRequest("POST", "http://shop.example/upload", pr)
	resp, err = client(t, 4, addr).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := decodeEcho(t, b); resp.StatusCode != 200 || got.BodyBytes != 30*4<<10 {
		t.Errorf("steady slow-link upload: %d, upstream got %d bytes (%s)", resp.StatusCode, got.BodyBytes, b)
	}
}

func TestBodyTooLarge(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Sites[0].MaxBodyBytes = 2 * config.KiB
	_, addr, _ := startGuard(t, cfg, Options{})
	c := client(t, 2, addr)
	for _, tc := range []struct {
		name string
		body io.Reader
		size int64
	}{
		{"announced", bytes.NewReader(make([]byte, 4096)), 4096},
		{"chunked", io.MultiReader(bytes.NewReader(make([]byte, 4096))), -1},
	} {
		r, _ := http.NewRequest("POST", "http://shop.example/", tc.body)
		r.ContentLength = tc.size
		resp, err := c.Do(r)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s body over the cap: %d, want 413", tc.name, resp.StatusCode)
		}
	}
	r, _ := http.NewRequest("POST", "http://shop.example/", bytes.NewReader(make([]byte, 2048)))
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("body at the cap: %d, want 200", resp.StatusCode)
	}
}

// TestShaping measures a download under a per-source cap and a site cap:
// each must come within 10% of its cap.
func TestShaping(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Sites[0].ClientBandwidth = 1 * config.MiB
	_, addr, _ := startGuard(t, cfg, Options{})
	measure := func(from int, n int) float64 {
		start := time.Now()
		resp, body := get(t, client(t, from, addr), fmt.Sprintf("http://shop.example/bytes/%d", n))
		if resp.StatusCode != 200 || len(body) != n {
			t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(body))
		}
		return float64(n) / time.Since(start).Seconds()
	}
	rate := measure(2, 2<<20)
	if rate < 0.9*(1<<20) || rate > 1.1*(1<<20) {
		t.Errorf("per-source cap 1 MiB/s: measured %.0f B/s", rate)
	}
}

func TestUpstreamFailover(t *testing.T) {
	a := newEcho(t, "a")
	dead := newEcho(t, "dead")
	deadURL := dead.srv.URL
	dead.srv.Close() // connections to it are refused
	cfg := guardConfig(deadURL, a.srv.URL)
	cfg.Upstreams.FailAfter = 2
	g, addr, _ := startGuard(t, cfg, Options{})
	c := client(t, 2, addr)
	for i := range 6 {
		resp, body := get(t, c, "http://shop.example/")
		if resp.StatusCode != 200 || decodeEcho(t, body).Upstream != "a" {
			t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	host := strings.TrimPrefix(deadURL, "http://")
	if v := testutil.ToFloat64(g.metrics.upstreams.WithLabelValues("shop.example", host)); v != 0 {
		t.Errorf("the dead upstream's gauge is %v, want 0", v)
	}
	// A POST with a body is not replayed: it may fail, but it must not
	// reach the live upstream twice or hang.
	r, _ := http.NewRequest("POST", "http://shop.example/", strings.NewReader("payload"))
	if resp, err := c.Do(r); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != http.StatusBadGateway {
			t.Errorf("POST: %d", resp.StatusCode)
		}
	}
}

func TestStreamingAndUpgrade(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: second\n\n")
	})
	mux.HandleFunc("/ws", echoUpgrade)
	up := newServer(t, mux)
	_, addr, _ := startGuard(t, guardConfig(up), Options{})

	resp, err := client(t, 2, addr).Get("http://shop.example/stream")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event before the upstream finished: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if !strings.Contains(string(rest), "data: second") {
		t.Errorf("rest of the stream: %q", rest)
	}

	c := dialFrom(t, 3, addr)
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: shop.example\r\nUpgrade: echo-test\r\nConnection: Upgrade\r\n\r\n")
	cr := bufio.NewReader(c)
	uresp, err := http.ReadResponse(cr, nil)
	if err != nil || uresp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", uresp, err)
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		io.WriteString(c, msg)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := cr.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo through the upgraded connection: %q %v", got, err)
		}
	}
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestTLSSitesAndHTTP2(t *testing.T) {
	up := newEcho(t, "a")
	dir := t.TempDir()
	certA, keyA, a := selfSigned(t, dir, "a", "a.example")
	certB, keyB, b := selfSigned(t, dir, "b", "*.b.example")
	cfg := guardConfig(up.srv.URL)
	cfg.Listen = ""
	cfg.ListenTLS = "127.0.0.1:0"
	cfg.Sites = []config.GuardSite{
		{Hosts: []string{"a.example"}, Upstreams: []string{up.srv.URL}, TLS: config.TLS{CertFile: certA, KeyFile: keyA}},
		{Hosts: []string{"*.b.example"}, Upstreams: []string{up.srv.URL}, TLS: config.TLS{CertFile: certB, KeyFile: keyB}},
	}
	_, _, addr := startGuard(t, cfg, Options{})
	for _, tc := range []struct {
		host string
		cert *x509.Certificate
	}{{"a.example", a}, {"www.b.example", b}} {
		pool := x509.NewCertPool()
		pool.AddCert(tc.cert)
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		tr := &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: tc.host},
			ForceAttemptHTTP2: true,
		}
		resp, body := get(t, &http.Client{Transport: tr}, "https://"+tc.host+"/x")
		tr.CloseIdleConnections()
		got := decodeEcho(t, body)
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || got.Proto != "https" || got.Host != tc.host || !strings.Contains(got.Forwarded, "proto=https") {
			t.Errorf("%s: status %d proto %s, upstream saw %+v", tc.host, resp.StatusCode, resp.Proto, got)
		}
	}
	// No certificate for an unknown name: the handshake fails.
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "unknown.example", InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Error("handshake for a name without a certificate succeeded")
	}
}

func TestMetricsCollector(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Sites[0].Limits.Rate, cfg.Sites[0].Limits.Burst = 100, 100
	g, addr, _ := startGuard(t, cfg, Options{})
	get(t, client(t, 2, addr), "http://shop.example/")
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Collector())
	n, err := testutil.GatherAndCount(reg, "bulwark_guard_requests_total", "bulwark_guard_limit_table_entries", "bulwark_guard_open_connections", "bulwark_guard_upstream_up")
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("gathered %d series, want at least 5", n)
	}
	if v := testutil.ToFloat64(g.metrics.requests.WithLabelValues("shop.example", "200")); v != 1 {
		t.Errorf("requests{shop.example,200} = %v", v)
	}
}

// TestWAF runs the OWASP CRS in front of a site: block mode answers an
// SQL injection and an XSS with 403 and counts them, detect mode passes
// them on and logs the rules, benign requests pass either way.
func TestWAF(t *testing.T) {
	up := newEcho(t, "a")
	var log syncBuffer
	cfg := guardConfig(up.srv.URL)
	cfg.Sites[0].WAF = "block"
	cfg.Sites = append(cfg.Sites, config.GuardSite{Hosts: []string{"watch.example"}, Upstreams: []string{up.srv.URL}, WAF: "detect"})
	g, addr, _ := startGuard(t, cfg, Options{AccessLog: &log})
	c := client(t, 2, addr)
	sqli := "/?id=1%27%20OR%20%271%27%3D%271"
	post := func(host, path string) int {
		resp, err := c.PostForm("http://"+host+path, map[string][]string{"comment": {"<script>alert(1)</script>"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if resp, _ := get(t, c, "http://shop.example"+sqli); resp.StatusCode != http.StatusForbidden {
		t.Errorf("SQL injection in block mode: %d, want 403", resp.StatusCode)
	}
	if got := post("shop.example", "/comment"); got != http.StatusForbidden {
		t.Errorf("XSS in block mode: %d, want 403", got)
	}
	if resp, _ := get(t, c, "http://shop.example/products?page=2"); resp.StatusCode != 200 {
		t.Errorf("a benign request in block mode: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, "http://watch.example"+sqli); resp.StatusCode != 200 {
		t.Errorf("SQL injection in detect mode: %d, want 200", resp.StatusCode)
	}
	if v := testutil.ToFloat64(g.metrics.blocks.WithLabelValues("waf")); v != 2 {
		t.Errorf("blocks{waf} = %v, want 2", v)
	}
	if v := testutil.ToFloat64(g.metrics.waf.WithLabelValues("watch.example", "block")); v != 1 {
		t.Errorf("waf matches in detect mode = %v, want 1", v)
	}
	lines := log.Lines(t)
	if len(lines) != 4 || lines[0]["blocked"] != "waf" || lines[0]["waf_rules"] == nil || lines[3]["blocked"] != nil || lines[3]["waf_rules"] == nil {
		t.Errorf("access log:\n%v", lines)
	}
}

// echoUpgrade is an upstream's WebSocket-like endpoint: it switches
// protocols to "echo-test" and echoes what it reads until either side
// closes; without that Upgrade header it answers 426.
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "echo-test" {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo-test\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	io.Copy(conn, rw)
}

// TestSpoofedClientHeaders: whatever client-address and forwarding headers
// an untrusted client sends, in whatever case, the upstream sees only the
// guard's: X-Real-Ip and X-Forwarded-For name the real peer, the proto and
// host are the guard's, and the other client-address headers are gone.
func TestSpoofedClientHeaders(t *testing.T) {
	for _, k := range spoofable {
		if http.CanonicalHeaderKey(k) != k {
			t.Fatalf("spoofable key %q is not canonical (%q): the guard would not remove it", k, http.CanonicalHeaderKey(k))
		}
	}
	up := newEcho(t, "a")
	_, addr, _ := startGuard(t, guardConfig(up.srv.URL), Options{})
	req, err := http.NewRequest("GET", "http://shop.example/who", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x-real-ip", "True-Client-IP", "CF-Connecting-IP", "X-CLIENT-IP", "X-Cluster-Client-IP", "fastly-client-ip"} {
		req.Header[k] = []string{"6.6.6.6"} // sent as written, canonicalised by the guard's server
	}
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	// Underscore spellings, which CGI-style upstreams read as the same
	// variable (HTTP_X_REAL_IP).
	for _, k := range []string{"X_Real_IP", "x_forwarded_for", "CF_Connecting_IP", "X_Forwarded_Proto", "Forwarded_"} {
		req.Header[k] = []string{"6.6.6.6"}
	}
	resp, err := client(t, 5, addr).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	got := decodeEcho(t, body)
	if v := got.Header.Values("X-Real-Ip"); len(v) != 1 || v[0] != "127.0.0.5" {
		t.Errorf("X-Real-Ip at the upstream = %q, want only 127.0.0.5", v)
	}
	for _, k := range spoofable[1:] {
		if v := got.Header.Values(k); len(v) > 0 {
			t.Errorf("%s reached the upstream: %q", k, v)
		}
	}
	for k, v := range got.Header {
		if strings.Contains(k, "_") && guardOwned(http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))) {
			t.Errorf("%s reached the upstream: %q", k, v)
		}
	}
	if v := got.Header.Get("Forwarded_"); v != "6.6.6.6" {
		t.Errorf("Forwarded_ (not a header the guard sets) at the upstream = %q, want it passed on", v)
	}
	if got.XFF != "127.0.0.5" || got.Proto != "http" || got.Header.Get("X-Forwarded-Host") != "shop.example" {
		t.Errorf("forwarding headers at the upstream: X-Forwarded-For %q, -Proto %q, -Host %q; want 127.0.0.5, http, shop.example",
			got.XFF, got.Proto, got.Header.Get("X-Forwarded-Host"))
	}
	if !strings.Contains(got.Forwarded, "for=127.0.0.5") || strings.Contains(got.Forwarded, "6.6.6.6") {
		t.Errorf("Forwarded at the upstream = %q, want the peer only", got.Forwarded)
	}
}
