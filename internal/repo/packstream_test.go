package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

var errInjected = errors.New("injected write failure")

// recStager is the local backend recording the writes into its staged
// objects; the write numbered failAt (from 1; 0: none) fails.
type recStager struct {
	*local.Backend
	mu     sync.Mutex
	stages int
	writes []int
	failAt int
}

func (b *recStager) Stage(ctx context.Context, t backend.Type) (backend.Staged, error) {
	s, err := b.Backend.Stage(ctx, t)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.stages++
	b.mu.Unlock()
	return &recStaged{s, b}, nil
}

type recStaged struct {
	backend.Staged
	b *recStager
}

func (s *recStaged) Write(p []byte) (int, error) {
	s.b.mu.Lock()
	s.b.writes = append(s.b.writes, len(p))
	fail := len(s.b.writes) == s.b.failAt
	s.b.mu.Unlock()
	if fail {
		return 0, errInjected
	}
	return s.Staged.Write(p)
}

// tempFiles lists the in-flight writes (".tmp-*") left in a repository.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			found = append(found, p)
		}
		return err
	})
	must(t, err)
	return found
}

// streamBlobs returns n blobs of up to max bytes, half random, half text.
func streamBlobs(seed uint64, n, max int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, 1+rng.IntN(max))
		for j := range b {
			if i%2 == 0 {
				b[j] = byte(rng.Uint32())
			} else {
				b[j] = "streamed packs "[j%15]
			}
		}
		b[0] = byte(i) // distinct text blobs
		out[i] = b
	}
	return out
}

// TestStreamedPacks: with a Stager backend, a data pack reaches the
// backend in pieces no larger than a stream buffer (or one blob, when that
// is larger) instead of in one pack-sized write, and the committed packs
// are whole: each is named by its hash and every blob reads back. A
// failing write fails the session and leaves no temp file; so does closing
// a session with a pack still open; with parity on, packs are built in
// memory and nothing is staged.
func TestStreamedPacks(t *testing.T) {
	const packSize = 4 << 20
	open := func(t *testing.T, failAt int, par *parity.Params) (*repo.Repository, *recStager) {
		lb, err := local.Create(filepath.Join(t.TempDir(), "repo"))
		must(t, err)
		rb := &recStager{Backend: lb, failAt: failAt}
		r, err := repo.Init(ctx, rb, []byte(repotest.Password),
			repo.InitOptions{KDF: repotest.FastKDF, PackSize: packSize, Parity: par, CacheDir: "-"})
		must(t, err)
		return r, rb
	}
	blobs := streamBlobs(1, 40, 1536<<10) // about 30 MB: several packs

	t.Run("stored", func(t *testing.T) {
		r, rb := open(t, 0, nil)
		ids := make([]repo.ID, len(blobs))
		for i, b := range blobs {
			id, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
			must(t, err)
			ids[i] = id
		}
		must(t, r.Flush(ctx))
		must(t, r.Close())
		largest := 0
		for _, b := range blobs {
			largest = max(largest, len(b))
		}
		limit := max(repo.StreamPiece, largest+16) + 64<<10 // a piece, or the tail with header and trailer
		for i, n := range rb.writes {
			if n > limit {
				t.Fatalf("write %d of %d bytes into a staged pack, want at most %d", i, n, limit)
			}
		}
		r2 := repotest.Open(t, rb.Location(), repotest.Password)
		packs := r2.Index().Packs()
		if len(packs) < 5 || rb.stages != len(packs) || len(rb.writes) < 3*len(packs) {
			t.Fatalf("%d packs from %d staged objects in %d writes; want at least 5 packs, one staged object each, several writes each",
				len(packs), rb.stages, len(rb.writes))
		}
		for _, p := range packs {
			data, err := rb.Load(ctx, backend.Handle{Type: backend.PackFile, Name: repo.Hex(p)}, 0, 0)
			must(t, err)
			if sha256.Sum256(data) != p || len(data) > packSize {
				t.Fatalf("pack %s: %d bytes that do not hash to its name, or more than pack_size", repo.Short(p), len(data))
			}
		}
		for i, id := range ids {
			got, err := r2.LoadBlob(ctx, repo.DataBlob, id, nil)
			must(t, err)
			if !bytes.Equal(got, blobs[i]) {
				t.Fatalf("blob %d differs", i)
			}
		}
		if tmp := tempFiles(t, rb.Location()); len(tmp) > 0 {
			t.Fatalf("temp files left: %v", tmp)
		}
	})

	t.Run("failed write", func(t *testing.T) {
		r, rb := open(t, 3, nil)
		var err error
		for _, b := range blobs {
			if _, _, err = r.SaveBlob(ctx, repo.DataBlob, b); err != nil {
				break
			}
		}
		if err == nil {
			err = r.Flush(ctx)
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("session with a failing write: err = %v, want the injected failure", err)
		}
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, []byte("after")); err == nil {
			t.Fatal("a save after a failed pack write succeeded")
		}
		must(t, r.Close())
		if tmp := tempFiles(t, rb.Location()); len(tmp) > 0 {
			t.Fatalf("temp files left: %v", tmp)
		}
	})

	t.Run("closed unflushed", func(t *testing.T) {
		r, rb := open(t, 0, nil)
		for _, b := range blobs[:2] {
			_, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
			must(t, err)
		}
		if rb.stages != 1 {
			t.Fatalf("%d staged objects for an open pack, want 1", rb.stages)
		}
		must(t, r.Close())
		if tmp := tempFiles(t, rb.Location()); len(tmp) > 0 {
			t.Fatalf("temp files left: %v", tmp)
		}
	})

	t.Run("parity", func(t *testing.T) {
		r, rb := open(t, 0, &parity.Params{DataShards: 8, ParityShards: 1})
		for _, b := range blobs[:8] {
			_, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
			must(t, err)
		}
		must(t, r.Flush(ctx))
		if rb.stages != 0 {
			t.Fatalf("%d packs staged with parity on, want 0 (parity needs the whole pack)", rb.stages)
		}
	})
}
