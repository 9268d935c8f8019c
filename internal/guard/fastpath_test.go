package guard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpstream is an upstream speaking HTTP/1.1 by hand, for responses
// net/http's server would not write: it reads each request with
// http.ReadRequest and writes what answer returns for its path, closing
// the connection afterwards when close is true.
type rawUpstream struct {
	ln    net.Listener
	conns atomic.Int32 // connections accepted
	reqs  atomic.Int32
}

func newRawUpstream(t *testing.T, answer func(r *http.Request) (raw string, close bool)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, r.Body)
					u.reqs.Add(1)
					raw, closing := answer(r)
					if _, err := io.WriteString(c, raw); err != nil || closing {
						return
					}
				}
			})
		}
	})
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() }

// exchange writes raw to c and reads n responses (for the requests in raw,
// methods in order).
func exchange(t *testing.T, c net.Conn, raw string, methods ...string) []*http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		for err == nil && resp.StatusCode < 200 {
			resp, err = http.ReadResponse(br, &http.Request{Method: m}) // 1xx: the final one follows
		}
		if err != nil {
			t.Fatalf("response %d to %q: %v", len(out)+1, raw, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
	return out
}

// fastServed is how many requests g's fast path answered.
func fastServed(g *Guard) int64 {
	var n int64
	for _, fs := range g.fast {
		n += fs.served.Load()
	}
	return n
}

// bodyOf reads r's body (as often as asked).
func bodyOf(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	return string(b)
}

// TestFastPathHandoff: one connection carries requests the fast path
// serves and then, from the first it does not take, net/http serves the
// rest; each reaches the upstream intact.
func TestFastPathHandoff(t *testing.T) {
	up := newEcho(t, "a")
	g, addr, _ := startGuard(t, guardConfig(up.srv.URL), Options{})
	big := strings.Repeat("x", 9<<10)
	for _, tc := range []struct {
		name, second string
		bodyBytes    int64
		path         string // as the upstream sees it; "": /two
	}{
		{"chunked body", "POST /two HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 5, ""},
		{"expect", "POST /two HTTP/1.1\r\nHost: shop.example\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", 3, ""},
		{"HTTP/1.0", "GET /two HTTP/1.0\r\nHost: shop.example\r\nConnection: keep-alive\r\n\r\n", 0, ""},
		{"large head", "GET /two HTTP/1.1\r\nHost: shop.example\r\nX-Big: " + big + "\r\n\r\n", 0, ""},
		{"encoded path", "GET /t%77o HTTP/1.1\r\nHost: shop.example\r\n\r\n", 0, "/t%77o"},
		{"large body", "POST /two HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("b", 70000), 70000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, 2, addr)
			first := "POST /one HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 4\r\n\r\nabcd"
			third := "GET /three HTTP/1.1\r\nHost: shop.example\r\n\r\n"
			before := fastServed(g)
			rs := exchange(t, c, first+tc.second+third, "POST", "GET", "GET")
			if n := fastServed(g) - before; n != 1 {
				t.Errorf("the fast path answered %d requests, want 1 (the first)", n)
			}
			want := []struct {
				path  string
				bytes int64
			}{{"/one", 4}, {"/two", tc.bodyBytes}, {"/three", 0}}
			if tc.path != "" {
				want[1].path = tc.path
			}
			for i, r := range rs {
				if r.StatusCode != 200 {
					t.Fatalf("response %d: %s", i+1, r.Status)
				}
				e := decodeEcho(t, []byte(bodyOf(r)))
				if e.Path != want[i].path || e.BodyBytes != want[i].bytes || e.XFF != "127.0.0.2" || e.Header.Get("X-Real-Ip") != "127.0.0.2" {
					t.Errorf("response %d: %+v, want path %s with %d body bytes", i+1, e, want[i].path, want[i].bytes)
				}
			}
		})
	}
}

// TestFastPathForwarding: what the upstream receives from the fast path
// is what the net/http path sends: the client's fields but hop-by-hop and
// guard-owned ones (any spelling), the guard's forwarding fields, the
// path under the upstream's prefix, the body.
func TestFastPathForwarding(t *testing.T) {
	up := newEcho(t, "a")
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprint("fast=", fast), func(t *testing.T) {
			cfg := guardConfig(up.srv.URL + "/base")
			g, err := New(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			g.noFast = !fast
			if err := g.Start(); err != nil {
				t.Fatal(err)
			}
			defer g.Shutdown(context.Background())
			addr, _ := g.Addrs()
			c := dialFrom(t, 3, addr)
			defer func() {
				if got := fastServed(g) == 1; got != fast {
					t.Errorf("served by the fast path: %v, want %v", got, fast)
				}
			}()
			rs := exchange(t, c, "POST /p/q?x=%41&y HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 6.6.6.6\r\n"+
				"x_real_ip: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nKeep-Alive: 5\r\nProxy-Authorization: secret\r\n"+
				"X-App: 1\r\nx-app: 2\r\nContent-Length: 3\r\n\r\nabc", "POST")
			e := decodeEcho(t, []byte(bodyOf(rs[0])))
			h := e.Header
			if e.Path != "/base/p/q?x=%41&y" || e.BodyBytes != 3 || e.Host != "shop.example" || e.XFF != "127.0.0.3" ||
				e.Forwarded != "for=127.0.0.3;proto=http;host=shop.example" || e.Proto != "http" ||
				h.Get("X-Real-Ip") != "127.0.0.3" || h.Get("X-Forwarded-Host") != "shop.example" ||
				strings.Join(h.Values("X-App"), ",") != "1,2" {
				t.Errorf("upstream got %+v", e)
			}
			for _, k := range []string{"X_real_ip", "True-Client-Ip", "Keep-Alive", "Proxy-Authorization", "Connection"} {
				if _, ok := h[k]; ok {
					t.Errorf("%s reached the upstream: %q", k, h[k])
				}
			}
		})
	}
}

// TestFastPathResponses: the framings an upstream may use, passed on so
// the client and the upstream connection both stay in step.
func TestFastPathResponses(t *testing.T) {
	up := newRawUpstream(t, func(r *http.Request) (string, bool) {
		switch r.URL.Path {
		case "/chunked":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-Bulwark-Account: alice\r\n\r\n" +
				"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n", false
		case "/close-delimited":
			return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", true
		case "/early":
			return "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
		case "/nobody":
			return "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false
		case "/head":
			return "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", false
		case "/conflict":
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", true
		case "/hop":
			return "HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok", false
		case "/bye":
			return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye", true
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	log := &syncBuffer{}
	_, addr, _ := startGuard(t, guardConfig(up.url()), Options{AccessLog: log})
	c := dialFrom(t, 2, addr)
	req := func(method, path string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: shop.example\r\n\r\n"
	}
	rs := exchange(t, c, req("GET", "/chunked")+req("GET", "/early")+req("GET", "/nobody")+req("HEAD", "/head")+req("GET", "/hop")+req("GET", "/bye")+req("GET", "/after"),
		"GET", "GET", "GET", "HEAD", "GET", "GET", "GET")
	check := func(i, code int, body string) {
		t.Helper()
		if rs[i].StatusCode != code || bodyOf(rs[i]) != body {
			t.Errorf("response %d: %d %q, want %d %q", i+1, rs[i].StatusCode, bodyOf(rs[i]), code, body)
		}
	}
	check(0, 200, "hello world")
	if rs[0].Trailer.Get("X-Sum") != "42" || rs[0].Header.Get("X-Bulwark-Account") != "" {
		t.Errorf("chunked: trailer %q, account field %q", rs[0].Trailer, rs[0].Header.Get("X-Bulwark-Account"))
	}
	check(1, 200, "ok") // the 103 went by (http.ReadResponse skips 1xx)
	check(2, 204, "")
	if rs[2].Header.Get("X-A") != "1" {
		t.Errorf("204 lost its fields: %v", rs[2].Header)
	}
	check(3, 200, "")
	if rs[3].ContentLength != 1000 {
		t.Errorf("HEAD: Content-Length %d", rs[3].ContentLength)
	}
	check(4, 200, "ok")
	if rs[4].Header.Get("X-Private") != "" || rs[4].Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop fields passed on: %v", rs[4].Header)
	}
	check(5, 200, "bye")
	check(6, 200, "ok")
	if n := up.conns.Load(); n != 2 {
		t.Errorf("upstream connections: %d, want 2 (one reused for 5 requests, a new one after Connection: close)", n)
	}
	var sawAccount bool
	for _, l := range log.Lines(t) {
		sawAccount = sawAccount || l["account"] == "alice"
	}
	if !sawAccount {
		t.Error("the account the upstream named is not in the access log")
	}

	// A body delimited by the upstream closing: the client's connection
	// closes after it too.
	c2 := dialFrom(t, 2, addr)
	rs = exchange(t, c2, req("GET", "/close-delimited"), "GET")
	if bodyOf(rs[0]) != "until the end" || !rs[0].Close {
		t.Errorf("close-delimited: %q, close %v", bodyOf(rs[0]), rs[0].Close)
	}
	// Conflicting lengths: 502, never a guess.
	c3 := dialFrom(t, 2, addr)
	rs = exchange(t, c3, req("GET", "/conflict"), "GET")
	if rs[0].StatusCode != http.StatusBadGateway {
		t.Errorf("conflicting lengths: %s", rs[0].Status)
	}
}

// TestFastPathStaleUpstream: an upstream that closes a connection after
// each response without saying so costs no request an error: an
// idempotent one found its reused connection dead and went again on a new
// one, and a POST, which may not be sent twice, was never written to a
// connection the upstream had closed.
func TestFastPathStaleUpstream(t *testing.T) {
	up := newRawUpstream(t, func(r *http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
	})
	_, addr, _ := startGuard(t, guardConfig(up.url()), Options{})
	c := dialFrom(t, 2, addr)
	for i, m := range []string{"GET", "GET", "POST", "GET", "POST"} {
		time.Sleep(20 * time.Millisecond) // the upstream's FIN arrives
		raw := m + " / HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 1\r\n\r\nx"
		if rs := exchange(t, c, raw, m); rs[0].StatusCode != 200 || bodyOf(rs[0]) != "ok" {
			t.Fatalf("request %d (%s): %s", i+1, m, rs[0].Status)
		}
	}
	if n := up.reqs.Load(); n != 5 {
		t.Errorf("the upstream answered %d requests, want 5 (none twice)", n)
	}
}

// TestFastPathShutdown: shutting down closes the fast path's idle
// connections at once and lets a request in progress finish.
func TestFastPathShutdown(t *testing.T) {
	up := newRawUpstream(t, func(r *http.Request) (string, bool) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	g, err := New(guardConfig(up.url()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	addr, _ := g.Addrs()
	idle := dialFrom(t, 2, addr)
	exchange(t, idle, "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n", "GET")
	busy := dialFrom(t, 3, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: shop.example\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- g.Shutdown(ctx)
	}()
	if !isClosed(idle, 2*time.Second) {
		t.Error("an idle connection stayed open through shutdown")
	}
	rs := exchange(t, busy, "", "GET")
	if rs[0].StatusCode != 200 || bodyOf(rs[0]) != "ok" || !rs[0].Close {
		t.Errorf("the request in progress: %s %q, close %v", rs[0].Status, bodyOf(rs[0]), rs[0].Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestFastPathRefusedBody: a refused request's body is skipped when it is
// all there, so the next request on the connection is read from the right
// place; when it is not all there the connection closes after the answer.
func TestFastPathRefusedBody(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Sites[0].Limits.Rate, cfg.Sites[0].Limits.Burst = 1, 1
	g, addr, _ := startGuard(t, cfg, Options{})
	c := dialFrom(t, 4, addr)
	post := "POST /p HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 10\r\n\r\nGET /x HTT"
	rs := exchange(t, c, post+post+"GET /last HTTP/1.1\r\nHost: shop.example\r\n\r\n", "POST", "POST", "GET")
	for i, want := range []int{200, 429, 429} {
		if rs[i].StatusCode != want || rs[i].Close {
			t.Errorf("response %d: %s (close %v), want %d and the connection kept", i+1, rs[i].Status, rs[i].Close, want)
		}
	}
	if fastServed(g) != 3 {
		t.Errorf("fast path served %d, want 3", fastServed(g))
	}
	// A body announced but not sent: the answer, then the end.
	c2 := dialFrom(t, 4, addr)
	rs = exchange(t, c2, "POST /p HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 10\r\n\r\nab", "POST")
	if rs[0].StatusCode != 429 || !rs[0].Close || !isClosed(c2, 2*time.Second) {
		t.Errorf("refused with its body missing: %s, close %v", rs[0].Status, rs[0].Close)
	}
}

// TestPlainThroughNetHTTP runs the plain-HTTP tests, which the fast path
// serves, through the net/http path as well: a connection the fast path
// hands over must meet the same checks.
func TestPlainThroughNetHTTP(t *testing.T) {
	testNoFast = true
	defer func() { testNoFast = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"ProxyForwardsAndLogs", TestProxyForwardsAndLogs},
		{"RateLimit", TestRateLimit},
		{"ConnectionCaps", TestConnectionCaps},
		{"DenyList", TestDenyList},
		{"Slowloris", TestSlowloris},
		{"SlowPostAndUploads", TestSlowPostAndUploads},
		{"BodyTooLarge", TestBodyTooLarge},
		{"UpstreamFailover", TestUpstreamFailover},
		{"SpoofedClientHeaders", TestSpoofedClientHeaders},
		{"BanReachesOpenConnections", TestBanReachesOpenConnections},
		{"ClientBodyErrorsSpareUpstreams", TestClientBodyErrorsSpareUpstreams},
		{"UpstreamPathPrefix", TestUpstreamPathPrefix},
		{"SlowRead", TestSlowRead},
		{"BansEnforced", TestBansEnforced},
	} {
		t.Run(tc.name, tc.f)
	}
}

// TestFastPathBodyAfterHead: a body that arrives after its head (and is
// larger than the read buffer) reaches the upstream as a body, its bytes
// never read as the head's: the head the guard forwards is the one the
// client sent, whatever the body holds.
func TestFastPathBodyAfterHead(t *testing.T) {
	up := newEcho(t, "a")
	g, addr, _ := startGuard(t, guardConfig(up.srv.URL), Options{})
	c := dialFrom(t, 2, addr)
	const size = 20 << 10
	head := fmt.Sprintf("POST /big HTTP/1.1\r\nHost: shop.example\r\nX-App: keep\r\nContent-Length: %d\r\n\r\n", size)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, head)
	time.Sleep(50 * time.Millisecond)
	evil := "\r\nX-Real-Ip: 6.6.6.6\r\nContent-Length: 0\r\n\r\nGET /admin HTTP/1.1\r\nHost: shop.example\r\n\r\n"
	body := strings.Repeat(evil, size/len(evil)+1)[:size]
	rs := exchange(t, c, body, "POST")
	e := decodeEcho(t, []byte(bodyOf(rs[0])))
	if rs[0].StatusCode != 200 || e.Path != "/big" || e.BodyBytes != size || e.Header.Get("X-App") != "keep" ||
		e.Header.Get("X-Real-Ip") != "127.0.0.2" || len(e.Header.Values("X-Real-Ip")) != 1 {
		t.Errorf("upstream got %d %+v", rs[0].StatusCode, e)
	}
	if fastServed(g) != 1 {
		t.Errorf("fast path served %d, want 1", fastServed(g))
	}
	// The connection goes on in step.
	rs = exchange(t, c, "GET /next HTTP/1.1\r\nHost: shop.example\r\n\r\n", "GET")
	if e := decodeEcho(t, []byte(bodyOf(rs[0]))); e.Path != "/next" {
		t.Errorf("next request: %+v", e)
	}
}

// TestFastPathUpstreamOutOfStep: an upstream that sends more than its
// response (a body for a HEAD) or a malformed trailer neither reaches
// another request nor takes the guard down.
func TestFastPathUpstreamOutOfStep(t *testing.T) {
	up := newRawUpstream(t, func(r *http.Request) (string, bool) {
		switch r.URL.Path {
		case "/head-with-body":
			return "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nextra!!", false
		case "/bad-trailer":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum 42\r\nX-Good: 1\r\n\r\n", false
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext", false
	})
	_, addr, _ := startGuard(t, guardConfig(up.url()), Options{})
	c := dialFrom(t, 2, addr)
	rs := exchange(t, c, "HEAD /head-with-body HTTP/1.1\r\nHost: shop.example\r\n\r\nGET /bad-trailer HTTP/1.1\r\nHost: shop.example\r\n\r\n"+
		"GET /n HTTP/1.1\r\nHost: shop.example\r\n\r\n", "HEAD", "GET", "GET")
	if rs[0].StatusCode != 200 || rs[0].ContentLength != 7 {
		t.Errorf("HEAD: %s, length %d", rs[0].Status, rs[0].ContentLength)
	}
	if bodyOf(rs[1]) != "ok" || rs[1].Trailer.Get("X-Good") != "1" {
		t.Errorf("bad trailer: %q, trailer %v", bodyOf(rs[1]), rs[1].Trailer)
	}
	if bodyOf(rs[2]) != "next" {
		t.Errorf("after them: %q", bodyOf(rs[2]))
	}
	if n := up.conns.Load(); n != 2 {
		t.Errorf("upstream connections: %d, want 2 (the one with bytes past the HEAD response dropped)", n)
	}
}
