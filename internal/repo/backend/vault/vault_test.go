package vault_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/backendtest"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// fastRetry keeps tests quick while still retrying.
var fastRetry = retry.Policy{Attempts: 5, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

func TestConformance(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "admin"})
	var n atomic.Int64
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		name := fmt.Sprintf("conf%d", n.Add(1))
		b, err := vclient.Create(context.Background(), v.URL+"/"+name, vclient.Options{Token: tok, CAFile: v.CertFile, Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name, url string
		o         vclient.Options
		want      string
	}{
		{"plain http", "http://127.0.0.1:1/web", vclient.Options{Token: "bwv_x"}, "plain http is refused"},
		{"http insecure remote", "http://192.0.2.1:1/web", vclient.Options{Token: "bwv_x", Insecure: true}, "plain http is refused"},
		{"no token", "https://127.0.0.1:1/web", vclient.Options{}, "no token"},
		{"no name", "https://127.0.0.1:1/", vclient.Options{Token: "bwv_x"}, "HOST:PORT/NAME"},
		{"two segments", "https://127.0.0.1:1/a/b", vclient.Options{Token: "bwv_x"}, "HOST:PORT/NAME"},
		{"user info", "https://tok@127.0.0.1:1/web", vclient.Options{Token: "bwv_x"}, "BULWARK_VAULT_TOKEN"},
		{"other scheme", "ftp://127.0.0.1:1/web", vclient.Options{Token: "bwv_x"}, "scheme must be https"},
		{"missing CA file", "https://127.0.0.1:1/web", vclient.Options{Token: "bwv_x", CAFile: "/nonexistent"}, "CA file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vclient.New(tc.url, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%q): err = %v, want one containing %q", tc.url, err, tc.want)
			}
			if strings.Contains(fmt.Sprint(err), "tok@") {
				t.Errorf("error shows credentials: %v", err)
			}
		})
	}
	if _, err := vclient.New("http://127.0.0.1:1/web", vclient.Options{Token: "bwv_x", Insecure: true}); err != nil {
		t.Errorf("http on loopback with Insecure: %v", err)
	}
}

// TestStatusMapping checks the errors an append-only client meets, and a
// wrong certificate and token, through the client.
func TestStatusMapping(t *testing.T) {
	ctx := context.Background()
	v := vaulttest.Start(t, vault.Options{})
	admin := v.Token(t, vault.TokenSpec{Name: "admin"})
	ao := v.Token(t, vault.TokenSpec{Name: "ao", Mode: vault.ModeAppendOnly})
	fb, err := vclient.Create(ctx, v.URL+"/web", vclient.Options{Token: admin, CAFile: v.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("snapshot bytes")
	h := backend.Handle{Type: backend.SnapshotFile, Name: fmt.Sprintf("%x", sha256.Sum256(data))}
	if err := fb.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	b, err := vclient.New(v.URL+"/web", vclient.Options{Token: ao, CAFile: v.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	perm := func(err error) bool { return retry.IsPermanent(ctx, err) }
	if err := b.Remove(ctx, h); !errors.Is(err, backend.ErrForbidden) || !perm(err) || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("Remove: %v", err)
	}
	if err := b.Replace(ctx, h, data); !errors.Is(err, backend.ErrForbidden) {
		t.Errorf("Replace: %v", err)
	}
	if err := b.Save(ctx, h, data); !errors.Is(err, backend.ErrExists) {
		t.Errorf("Save existing: %v", err)
	}
	if _, err := b.Load(ctx, backend.Handle{Type: backend.KeyFile, Name: "nope"}, 0, 0); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Load missing: %v", err)
	}
	if _, err := b.Load(ctx, h, 0, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Load beyond: %v", err)
	}
	bad := backend.Handle{Type: backend.SnapshotFile, Name: strings.Repeat("0", 64)}
	var ve *vclient.Error
	if err := b.Save(ctx, bad, data); !errors.As(err, &ve) || ve.Status != 422 || !perm(err) {
		t.Errorf("Save under a wrong hash: %v", err)
	}
	wrong, err := vclient.New(v.URL+"/web", vclient.Options{Token: "bwv_wrong", CAFile: v.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Stat(ctx, h); !errors.Is(err, vclient.ErrTokenRejected) || !perm(err) {
		t.Errorf("wrong token: %v", err)
	}
	// The system roots do not trust the vault's self-signed certificate.
	untrusted, err := vclient.New(v.URL+"/web", vclient.Options{Token: ao})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusted.Stat(ctx, h); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	if got := b.Location(); got != v.URL+"/web" {
		t.Errorf("Location = %q", got)
	}
}
