package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
)

// testTime is the fixed clock of the tests.
var testTime = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// sampleMessage is a firing alert with every field set.
func sampleMessage() Message {
	return Message{
		Title:    "Disk almost full on web1",
		Text:     "filesystem_used_percent{mountpoint=\"/\"} is 93.2, above 90.\nFree some space or grow the volume.",
		Severity: events.SeverityCritical,
		State:    StateFiring,
		Alert:    "disk-full/web1:/",
		Rule:     "disk-full",
		Labels:   map[string]string{"mountpoint": "/", "host": "web1"},
		Time:     testTime.Add(-2 * time.Minute),
		Host:     "web1",
		Links:    []Link{{Title: "Console", URL: "https://bulwark.example.net/alerts/disk-full"}},
	}
}

// fakeClock is a settable clock whose Sleep advances it instead of
// waiting, recording the waits.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: testTime} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// env is a getenv over a map.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// noFiles is a readFile that finds nothing.
func noFiles(name string) ([]byte, error) {
	return nil, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
}

// mustNew builds the sender of ch or fails the test.
func mustNew(t *testing.T, ch config.Channel, getenv func(string) string) Sender {
	t.Helper()
	s, err := New(ch, getenv, noFiles)
	if err != nil {
		t.Fatalf("New(%s): %v", ch.Name, err)
	}
	return s
}

// testCert returns a self-signed certificate for 127.0.0.1 and localhost,
// and a pool trusting it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bulwark notify test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
