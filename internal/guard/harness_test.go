package guard

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// The harness runs a real guard on loopback in front of real upstream
// servers, and clients that each bind their own source address
// (127.0.0.2, 127.0.0.3, ...: the whole of 127.0.0.0/8 is loopback on
// Linux), so per-source limits see distinct sources.

// echo is an upstream that reports what it received.
type echo struct {
	srv  *httptest.Server
	name string
	hits sync.Map // path -> count, unused by most tests
}

type echoReply struct {
	Upstream  string      `json:"upstream"`
	Host      string      `json:"host"`
	Path      string      `json:"path"`
	XFF       string      `json:"xff"`
	Forwarded string      `json:"forwarded"`
	Proto     string      `json:"proto"`
	BodyBytes int64       `json:"body_bytes"`
	Header    http.Header `json:"header"`
}

func newEcho(t *testing.T, name string) *echo {
	t.Helper()
	e := &echo{name: name}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoReply{Upstream: name, Host: r.Host, Path: r.URL.RequestURI(), XFF: r.Header.Get("X-Forwarded-For"),
			Forwarded: r.Header.Get("Forwarded"), Proto: r.Header.Get("X-Forwarded-Proto"), BodyBytes: n, Header: r.Header})
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if a := r.URL.Query().Get("account"); a != "" {
			w.Header().Set(config.DefaultAccountHeader, a) // as an application naming its signed-in user
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// guardConfig is a guard section with one site, shop.example, in front of
// the given upstream URLs, listening on a free loopback port.
func guardConfig(upstreams ...string) config.Guard {
	g := config.Default().Guard
	g.Listen = "127.0.0.1:0"
	g.AccessLog = "off"
	g.Sites = []config.GuardSite{{Hosts: []string{"shop.example"}, Upstreams: upstreams}}
	return g
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is an access log the test can read while the guard writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// testNoFast makes startGuard's guards serve plain HTTP through net/http
// only (TestPlainThroughNetHTTP).
var testNoFast bool

// startGuard runs a guard for the test and returns it with its plain and
// TLS addresses.
func startGuard(t *testing.T, cfg config.Guard, opt Options) (*Guard, string, string) {
	t.Helper()
	g, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	g.noFast = testNoFast
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	plain, secure := g.Addrs()
	return g, plain, secure
}

// client returns an HTTP client whose connections come from 127.0.0.N
// and go to addr whatever the URL's host (so URLs can name sites).
func client(t *testing.T, n int, addr string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		MaxIdleConnsPerHost: 100,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// dialFrom opens a raw TCP connection from 127.0.0.N to addr.
func dialFrom(t *testing.T, n int, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from 127.0.0.%d: %v", addr, n, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, body
}

func decodeEcho(t *testing.T, body []byte) echoReply {
	t.Helper()
	var r echoReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("upstream reply %q: %v", body, err)
	}
	return r
}

// isClosed reports whether the peer closed c (or reset it) within d
// without sending anything.
func isClosed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := bufio.NewReader(c).ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// selfSigned writes a certificate for hosts and its key into dir.
func selfSigned(t *testing.T, dir, name string, hosts ...string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return certFile, keyFile, c
}

var _ = fmt.Sprintf
var _ = tls.VersionTLS12

func netipPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// refusedAtAccept reports whether a connection from 127.0.0.N is closed
// by the guard without a byte sent (the reset may even fail the dial).
func refusedAtAccept(t *testing.T, n int, addr string) bool {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return true
	}
	defer c.Close()
	return isClosed(c, 2*time.Second)
}

// viaProxy sends a request through a proxy at 127.0.0.N that names the
// client xff, and returns the status.
func viaProxy(t *testing.T, n int, addr, xff string) int {
	t.Helper()
	r, _ := http.NewRequest("GET", "http://shop.example/", nil)
	r.Header.Set("X-Forwarded-For", xff)
	resp, err := client(t, n, addr).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
