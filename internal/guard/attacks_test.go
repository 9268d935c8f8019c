package guard

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// These tests replay what an independent review of the guard found an
// attacker could do, each fixed since.

// A ban decided while the attacker holds a keep-alive connection ends
// that connection's requests too, not only new connections.
func TestBanReachesOpenConnections(t *testing.T) {
	ctx := context.Background()
	bans, err := detect.Open(ctx, storetest.SQLite(t, detect.Migrations), detect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := newEcho(t, "a")
	_, addr, _ := startGuard(t, guardConfig(up.srv.URL), Options{Bans: bans})
	c := client(t, 7, addr)
	if resp, _ := get(t, c, "http://shop.example/"); resp.StatusCode != 200 {
		t.Fatalf("before the ban: %d", resp.StatusCode)
	}
	if _, err := bans.Add(ctx, detect.Ban{Net: netip.MustParsePrefix("127.0.0.7/32"), Reason: "attack", Origin: "user:t"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	resp, _ := get(t, c, "http://shop.example/")
	if resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Errorf("on the open connection after the ban: %d, close %v; want 403 and the connection closed", resp.StatusCode, resp.Close)
	}
}

// Bodies the guard refuses (too large, chunked) do not count against the
// upstream's health.
func TestClientBodyErrorsSpareUpstreams(t *testing.T) {
	a, b := newEcho(t, "a"), newEcho(t, "b")
	cfg := guardConfig(a.srv.URL, b.srv.URL)
	cfg.Sites[0].MaxBodyBytes = 2 * config.KiB
	g, addr, _ := startGuard(t, cfg, Options{})
	c := client(t, 2, addr)
	for range 6 {
		r, _ := http.NewRequest("POST", "http://shop.example/", io.MultiReader(bytes.NewReader(make([]byte, 64<<10))))
		r.ContentLength = -1
		if resp, err := c.Do(r); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("chunked body over the cap: %d, want 413", resp.StatusCode)
			}
		}
	}
	for _, u := range g.sites[0].pool.ups {
		if u.downUntil.Load() != 0 || u.fails.Load() != 0 {
			t.Errorf("upstream %s blamed for client bodies: %d failures", u.url.Host, u.fails.Load())
		}
	}
}

// Dot segments cannot climb out of an upstream's path prefix, and an
// encoded slash reaches the upstream still encoded.
func TestUpstreamPathPrefix(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
	}))
	_, addr, _ := startGuard(t, guardConfig(up+"/app"), Options{})
	for _, tc := range []struct {
		path string
		want int
	}{{"/x", 200}, {"/../admin", 400}, {"/..%2Fadmin", 400}, {"/a/%2e%2e/b", 400}, {"/files/a%2Fb", 200}} {
		c := dialFrom(t, 2, addr)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n", tc.path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"/app/x", "/app/files/a%2Fb"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("upstream saw %q, want %q", seen, want)
	}
}

// A client that stops reading a large response loses its request and
// connection after timeouts.idle without progress (slow read).
func TestSlowRead(t *testing.T) {
	up := newEcho(t, "a")
	cfg := guardConfig(up.srv.URL)
	cfg.Timeouts.Idle = config.Duration(time.Second)
	g, addr, _ := startGuard(t, cfg, Options{})
	c := dialFrom(t, 2, addr)
	fmt.Fprintf(c, "GET /bytes/%d HTTP/1.1\r\nHost: shop.example\r\n\r\n", 200<<20)
	waitFor(t, "the stalled response's connection to close", func() bool { return g.open.Load() == 0 })
}

// An HTTP/2 :authority that is not a valid host (HTTP/2 does not check
// it) gets 400 instead of reaching the upstream with an empty Host.
func TestHTTP2BadAuthority(t *testing.T) {
	a := newEcho(t, "a")
	certA, keyA, _ := selfSigned(t, t.TempDir(), "a", "shop.example")
	cfg := guardConfig(a.srv.URL)
	cfg.Listen, cfg.ListenTLS = "", "127.0.0.1:0"
	cfg.Sites[0].TLS = config.TLS{CertFile: certA, KeyFile: keyA}
	_, _, addr := startGuard(t, cfg, Options{})
	tc, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "shop.example", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	io.WriteString(tc, http2.ClientPreface)
	fr := http2.NewFramer(tc, tc)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "shop.example:443<"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	status := ""
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for status == "" {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			dec.Write(f.HeaderBlockFragment())
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		}
	}
	if status != "400" {
		t.Errorf("invalid :authority: status %s, want 400", status)
	}
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"shop.example": true, "shop.example:8080": true, "127.0.0.1": true, "[::1]:443": true, "[::1]": true,
		"": false, "shop.example:443<": false, "shop.example:x": false, "a b": false, "user@shop.example": false,
		"shop.example/x": false,
	} {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
}
