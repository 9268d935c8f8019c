package vault_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/cpu"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// TestTransportReusesTLS13Connections checks what the vault's throughput
// rests on: every connection is TLS 1.3 (with AES-GCM where the CPU has
// AES instructions), and uploads reuse kept-alive connections instead of
// paying a handshake each: 40 sequential saves use one connection, and 4
// workers saving in parallel use at most 4 more.
func TestTransportReusesTLS13Connections(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	be, err := vclient.Create(context.Background(), v.URL+"/tls", vclient.Options{Token: tok, RootCAs: v.Pool(t), Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	save := func(i int) error {
		data := []byte(fmt.Sprintf("object %d %s", i, make([]byte, i*1000)))
		sum := sha256.Sum256(data)
		return be.Save(context.Background(), backend.Handle{Type: backend.PackFile, Name: hex.EncodeToString(sum[:])}, data)
	}
	for i := range 40 {
		if err := save(i); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(v.Conns()); got != 1 {
		t.Errorf("40 sequential saves used %d connections, want 1", got)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*25)
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				errs <- save(1000 + w*100 + i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	conns := v.Conns()
	if len(conns) > 5 {
		t.Errorf("4 parallel workers after 1 warm connection used %d connections in all, want at most 5", len(conns))
	}
	aes := (runtime.GOARCH == "amd64" && cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ) || (runtime.GOARCH == "arm64" && cpu.ARM64.HasAES && cpu.ARM64.HasPMULL)
	for _, cs := range conns {
		if cs.Version != tls.VersionTLS13 {
			t.Errorf("connection negotiated %s, want TLS 1.3", tls.VersionName(cs.Version))
		}
		suite := tls.CipherSuiteName(cs.CipherSuite)
		if aes && cs.CipherSuite != tls.TLS_AES_128_GCM_SHA256 && cs.CipherSuite != tls.TLS_AES_256_GCM_SHA384 {
			t.Errorf("connection uses %s on a CPU with AES instructions, want AES-GCM", suite)
		}
	}
	t.Logf("%d connections; first: %s %s", len(conns), tls.VersionName(conns[0].Version), tls.CipherSuiteName(conns[0].CipherSuite))
}
