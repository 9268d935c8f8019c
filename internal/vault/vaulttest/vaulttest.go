// Package vaulttest runs a real vault server over TLS on 127.0.0.1 for
// tests: its own data directory, self-signed certificate and log, and
// the means to kill and restart it.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/certs"
	"github.com/bulwarkhq/bulwark/internal/vault"
)

// Vault is a running vault.
type Vault struct {
	// Data is the data directory.
	Data string
	// Addr is host:port, URL is https://Addr.
	Addr, URL string
	// CertFile is the vault's certificate (PEM).
	CertFile string
	// Server is the running server.
	Server *vault.Server
	// Log holds everything the vault logged.
	Log *SyncBuffer

	opts vault.Options
	// lifeMu serialises Kill and Restart, which tests call from the
	// goroutines of a fault injector as well as their own.
	lifeMu sync.Mutex
	hs     *http.Server
	done   chan struct{}

	connMu sync.Mutex
	conns  map[net.Conn]tls.ConnectionState // every connection that sent a request
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns the contents.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts a vault with options o (o.Data defaults to a temporary
// directory, o.Log to v.Log) and stops it when the test ends.
func Start(t testing.TB, o vault.Options) *Vault {
	t.Helper()
	if o.Data == "" {
		o.Data = t.TempDir()
	}
	v := &Vault{Data: o.Data, Log: &SyncBuffer{}}
	if o.Log == nil {
		o.Log = v.Log
	}
	v.opts = o
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v.Addr = ln.Addr().String()
	v.URL = "https://" + v.Addr
	v.serve(t, ln)
	t.Cleanup(v.Kill)
	return v
}

func (v *Vault) serve(t testing.TB, ln net.Listener) {
	t.Helper()
	certFile, keyFile, err := certs.EnsureSelfSigned(v.Data, v.Addr, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v.CertFile = certFile
	s, err := vault.New(v.opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := vault.TLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	v.Server = s
	v.hs = s.HTTPServer(cfg)
	v.hs.ConnState = func(c net.Conn, st http.ConnState) {
		// Active comes after the handshake, with the first request.
		if tc, ok := c.(*tls.Conn); ok && st == http.StateActive {
			cs := tc.ConnectionState()
			v.connMu.Lock()
			defer v.connMu.Unlock()
			if v.conns == nil {
				v.conns = map[net.Conn]tls.ConnectionState{}
			}
			v.conns[c] = cs
		}
	}
	v.done = make(chan struct{})
	go func(hs *http.Server, done chan struct{}) {
		defer close(done)
		if err := hs.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("vault: %v", err)
		}
	}(v.hs, v.done)
}

// Kill stops the vault at once, cutting every connection, as a crash
// would (the handlers of requests in flight may still be running).
func (v *Vault) Kill() {
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	v.killLocked()
}

func (v *Vault) killLocked() {
	if v.hs == nil {
		return
	}
	v.hs.Close()
	<-v.done
	v.hs = nil
}

// Restart kills the vault if it runs and starts a new server process (in
// effect) on the same address and data directory.
func (v *Vault) Restart(t testing.TB) {
	t.Helper()
	v.lifeMu.Lock()
	defer v.lifeMu.Unlock()
	v.killLocked()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", v.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart vault on %s: %v", v.Addr, err)
	}
	v.serve(t, ln)
}

// Conns returns the TLS state of every connection that has sent a request
// (a kept-alive connection counts once).
func (v *Vault) Conns() []tls.ConnectionState {
	v.connMu.Lock()
	defer v.connMu.Unlock()
	out := make([]tls.ConnectionState, 0, len(v.conns))
	for _, cs := range v.conns {
		out = append(out, cs)
	}
	return out
}

// Token adds a token and returns its secret.
func (v *Vault) Token(t testing.TB, spec vault.TokenSpec) string {
	t.Helper()
	secret, err := vault.AddToken(v.Data, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// Pool returns a pool trusting the vault's certificate.
func (v *Vault) Pool(t testing.TB) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(v.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in " + v.CertFile)
	}
	return pool
}

// HTTPClient returns a plain net/http client that trusts the vault, for
// requests as an attacker would send them.
func (v *Vault) HTTPClient(t testing.TB) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: v.Pool(t), MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// Create creates repository name with a full token (a raw POST).
func (v *Vault) Create(t testing.TB, token, name string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, v.URL+"/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := v.HTTPClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("create repository %s: %s", name, resp.Status)
	}
}
