package vault_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// BenchmarkSave stores 16 MiB packs (the repository's pack size) one at a
// time, as a backup does, into a local directory and into a vault over
// loopback TLS with an append-only token (so the vault checks every
// pack's SHA-256). The ratio of the two is the vault's throughput target.
func BenchmarkSave(b *testing.B) {
	const size = 16 << 20
	objs := make([][]byte, 4)
	for i := range objs {
		objs[i] = make([]byte, size)
		if _, err := rand.Read(objs[i]); err != nil {
			b.Fatal(err)
		}
	}
	// Every iteration stores a new object: the first bytes make it unique.
	next := func(i int) (backend.Handle, []byte) {
		d := objs[i%len(objs)]
		copy(d, fmt.Sprintf("%016d", i))
		sum := sha256.Sum256(d)
		return backend.Handle{Type: backend.PackFile, Name: hex.EncodeToString(sum[:])}, d
	}
	run := func(b *testing.B, be backend.Backend) {
		b.SetBytes(size)
		b.ResetTimer()
		for i := range b.N {
			h, d := next(i)
			if err := be.Save(context.Background(), h, d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("local", func(b *testing.B) {
		be, err := local.Create(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		run(b, be)
	})
	b.Run("vault", func(b *testing.B) {
		v := vaulttest.Start(b, vault.Options{})
		tok := v.Token(b, vault.TokenSpec{Name: "bench", Mode: vault.ModeAppendOnly})
		be, err := vclient.Create(context.Background(), v.URL+"/bench", vclient.Options{Token: tok, RootCAs: v.Pool(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = be.Close() })
		run(b, be)
	})
}
