package vault_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStreamedUploadReadableByLocal stores objects larger than the copy
// buffer and the writeback step through an append-only token, then reads
// them with the local backend straight from the data directory: the
// streaming writer keeps the local layout, and nothing temporary is left.
func TestStreamedUploadReadableByLocal(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	a := &attacker{t: t, v: v, c: v.HTTPClient(t), token: tok}
	v.Create(t, tok, "s")
	sizes := []int{0, 1, 1 << 20, 1<<20 + 1, 9<<20 + 7}
	want := map[string]string{} // name -> SHA-256 of the content
	for _, n := range sizes {
		body := randomBytes(t, n)
		h := backend.Handle{Type: backend.PackFile, Name: sha(body)}
		if st, msg := a.do(http.MethodPut, vault.ObjectPath("s", h), "", body, nil); st != http.StatusCreated {
			t.Fatalf("PUT %d bytes: %d %s", n, st, msg)
		}
		want[h.Name] = sha(body)
	}
	// Create, not Open: the repository has no config object.
	be, err := local.Create(filepath.Join(v.Data, "repos", "s"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error {
		b, err := be.Load(context.Background(), backend.Handle{Type: backend.PackFile, Name: fi.Name}, 0, 0)
		got[fi.Name] = sha(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects read back by the local backend (-want +got):\n%s", diff)
	}
	if n, err := be.CleanTemp(context.Background(), 0); err != nil || n != 0 {
		t.Errorf("CleanTemp after uploads: removed %d, err %v; want 0 temporary files", n, err)
	}
}

// TestShortBodyStoresNothing sends a PUT whose body stops half way and
// closes the connection: the vault, which writes while receiving, must
// remove what it wrote and store nothing.
func TestShortBodyStoresNothing(t *testing.T) {
	f := newFixture(t)
	before := tree(t, f.v.Data)
	body := randomBytes(t, 3<<20)
	p := vault.ObjectPath("r1", backend.Handle{Type: backend.PackFile, Name: sha(body)})
	c, err := tls.Dial("tcp", f.v.Addr, &tls.Config{RootCAs: f.v.Pool(t), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", p, f.v.Addr, f.clientTok, len(body))
	if _, err := c.Write(body[:len(body)/2+12345]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The handler notices the cut when its read fails; wait for its log line.
	for i := 0; !strings.Contains(f.v.Log.String(), "incomplete body"); i++ {
		if i > 500 {
			t.Fatalf("no refusal logged for the cut upload; log:\n%s", f.v.Log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if diff := cmp.Diff(before, tree(t, f.v.Data)); diff != "" {
		t.Errorf("a cut upload changed the vault's files (-before +after):\n%s", diff)
	}
	if u := vault.TokenUsage(f.v.Data, token(t, f.v, "client")); u != 0 {
		t.Errorf("usage after a cut upload = %d, want 0", u)
	}
}

func token(t *testing.T, v *vaulttest.Vault, name string) vault.Token {
	t.Helper()
	toks, err := vault.ListTokens(v.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Name == name {
			return tok
		}
	}
	t.Fatalf("no token %q", name)
	return vault.Token{}
}

func readNumber(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// TestQuotaHoldsAcrossCrashes kills the vault (no clean shutdown) after
// every upload and keeps uploading until the quota refuses: the bytes
// really stored never exceed the quota, the durable bound always covers
// what is stored, and a crash overcharges by at most the quota's rest.
func TestQuotaHoldsAcrossCrashes(t *testing.T) {
	const quota, objSize = 100_000, 7_000
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "small", Mode: vault.ModeAppendOnly, Quota: quota})
	v.Create(t, tok, "q")
	tk := token(t, v, "small")
	bound := filepath.Join(v.Data, "usage", tk.SHA256+".bound")
	var stored int64
	for i := 0; i < 40; i++ {
		a := &attacker{t: t, v: v, c: v.HTTPClient(t), token: tok}
		body := randomBytes(t, objSize)
		st, msg := a.do(http.MethodPut, vault.ObjectPath("q", backend.Handle{Type: backend.PackFile, Name: sha(body)}), "", body, nil)
		if st == http.StatusInsufficientStorage {
			break
		}
		if st != http.StatusCreated {
			t.Fatalf("upload %d: %d %s", i, st, msg)
		}
		stored += objSize
		if b := readNumber(t, bound); b < stored {
			t.Fatalf("after upload %d: durable bound %d < %d bytes stored", i, b, stored)
		}
		v.Kill()
		v.Restart(t)
	}
	if stored > quota {
		t.Errorf("stored %d bytes through a token with a quota of %d", stored, quota)
	}
	// Each crash may overcharge by one step (1/16 of the quota here), so
	// a crash after every 7,000-byte upload still leaves room for half.
	if stored < quota/3 {
		t.Errorf("stored only %d bytes of a %d-byte quota: crashes overcharge too much", stored, quota)
	}
	t.Logf("stored %d of a %d-byte quota with a crash after every upload", stored, quota)
}

// TestUsageAfterRestart: a vault that shuts down cleanly (Close) records
// exact usage, so the next one charges exactly what was stored; after a
// crash the next one charges at least that and at most 64 MiB more.
func TestUsageAfterRestart(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "big", Mode: vault.ModeAppendOnly})
	v.Create(t, tok, "u")
	tk := token(t, v, "big")
	var stored int64
	put := func(n int) {
		t.Helper()
		a := &attacker{t: t, v: v, c: v.HTTPClient(t), token: tok}
		body := randomBytes(t, n)
		if st, msg := a.do(http.MethodPut, vault.ObjectPath("u", backend.Handle{Type: backend.PackFile, Name: sha(body)}), "", body, nil); st != http.StatusCreated {
			t.Fatalf("PUT: %d %s", st, msg)
		}
		stored += int64(n)
	}
	for _, n := range []int{1000, 2 << 20, 5} {
		put(n)
	}
	if got := vault.TokenUsage(v.Data, tk); got != stored {
		t.Errorf("usage while running = %d, want %d", got, stored)
	}
	bound := filepath.Join(v.Data, "usage", tk.SHA256+".bound")
	if b := readNumber(t, bound); b < stored || b > stored+64<<20 {
		t.Errorf("bound while running = %d, want within [%d, %d]", b, stored, stored+64<<20)
	}

	// Clean shutdown: the bound becomes the exact count.
	v.Kill()
	if err := v.Server.Close(); err != nil {
		t.Fatal(err)
	}
	if b := readNumber(t, bound); b != stored {
		t.Errorf("bound after Close = %d, want exactly %d", b, stored)
	}
	v.Restart(t)
	put(7)
	if got := vault.TokenUsage(v.Data, tk); got != stored {
		t.Errorf("usage after a clean restart and one upload = %d, want %d", got, stored)
	}

	// Crash: charged from the bound.
	v.Kill()
	v.Restart(t)
	put(11)
	if got := vault.TokenUsage(v.Data, tk); got < stored || got > stored+64<<20 {
		t.Errorf("usage after a crash and one upload = %d, want within [%d, %d]", got, stored, stored+64<<20)
	}
}
