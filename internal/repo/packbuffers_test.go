package repo_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// earlyGated is the local backend seen as an EarlySaver only (not a
// Stager, so packs are built in memory), whose pack saves, once they have
// released their data, wait for gate: a disk slow to sync.
type earlyGated struct {
	backend.Backend
	gate chan struct{}
}

// stagerGated is the local backend, a Stager, whose staged packs wait for
// gate before they commit: a disk slow to sync.
type stagerGated struct {
	*local.Backend
	gate chan struct{}
}

func (g *stagerGated) Stage(ctx context.Context, t backend.Type) (backend.Staged, error) {
	s, err := g.Backend.Stage(ctx, t)
	if err != nil {
		return nil, err
	}
	return &gatedStaged{s, g.gate}, nil
}

type gatedStaged struct {
	backend.Staged
	gate chan struct{}
}

func (s *gatedStaged) Commit(ctx context.Context, name string) error {
	<-s.gate
	return s.Staged.Commit(ctx, name)
}

func (g *earlyGated) SaveEarly(ctx context.Context, h backend.Handle, data []byte, done func()) error {
	return g.Backend.(backend.EarlySaver).SaveEarly(ctx, h, data, func() {
		done()
		if h.Type == backend.PackFile {
			<-g.gate
		}
	})
}

// plainGated is the local backend seen through an interface that hides
// SaveEarly (as a wrapper that retries does), whose pack saves wait for
// gate before they start.
type plainGated struct {
	backend.Backend
	gate chan struct{}
}

func (g *plainGated) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.PackFile {
		<-g.gate
	}
	return g.Backend.Save(ctx, h, data)
}

// TestPackBuffers: while the backend is stuck saving a pack, a backup goes
// on filling packs until the pending ones hold maxPending buffers, and then
// waits. With an EarlySaver the stuck pack's buffer is already back, so the
// backup gets as far with two pack buffers as it does with three when the
// backend keeps the buffer until its Save returns. A Stager (the local
// backend) gets as far with two streaming packers, whose buffers are two
// small pieces each, not a pack (TestStreamedPacks). Once the backend moves
// again, every blob is stored intact.
func TestPackBuffers(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		wrap                     func(*local.Backend, chan struct{}) backend.Backend
		wantBuffers, wantPending int
	}{
		{"stager", func(b *local.Backend, g chan struct{}) backend.Backend { return &stagerGated{b, g} }, 2, 1},
		{"early saver", func(b *local.Backend, g chan struct{}) backend.Backend { return &earlyGated{b, g} }, 2, 1},
		{"plain backend", func(b *local.Backend, g chan struct{}) backend.Backend { return &plainGated{b, g} }, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb, err := local.Create(filepath.Join(t.TempDir(), "repo"))
			must(t, err)
			gate := make(chan struct{})
			r, err := repo.Init(ctx, tc.wrap(lb, gate), []byte(repotest.Password),
				repo.InitOptions{KDF: repotest.FastKDF, PackSize: 1 << 20, CacheDir: "-"})
			must(t, err)
			rng := rand.New(rand.NewPCG(5, 6))
			blobs := make([][]byte, 40) // 300 KiB each, incompressible: three a pack
			for i := range blobs {
				blobs[i] = make([]byte, 300<<10)
				for j := range blobs[i] {
					blobs[i][j] = byte(rng.Uint32())
				}
			}
			ids := make([]repo.ID, len(blobs))
			done := make(chan error, 1)
			go func() {
				for i, b := range blobs {
					id, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
					if err != nil {
						done <- err
						return
					}
					ids[i] = id
				}
				done <- r.Flush(ctx)
			}()
			deadline := time.Now().Add(30 * time.Second)
			// The saver may wait briefly while a pack is released; the
			// state to check is the one it stays in while the backend is
			// stuck.
			type state struct{ buffers, pending, waiting int }
			var last state
			for stable := 0; stable < 20; {
				var now state
				now.buffers, now.pending, now.waiting = repo.PackStateForTest(r)
				if now.waiting == 1 && now == last {
					stable++
				} else {
					stable = 0
				}
				last = now
				if time.Now().After(deadline) {
					t.Fatalf("the saver never settled waiting for a pending slot (last: %+v)", last)
				}
				time.Sleep(time.Millisecond)
			}
			if last.buffers != tc.wantBuffers || last.pending != tc.wantPending {
				t.Errorf("saver waiting with %d pack buffers and %d pending packs, want %d and %d",
					last.buffers, last.pending, tc.wantBuffers, tc.wantPending)
			}
			close(gate)
			must(t, <-done)
			if buffers, _, _ := repo.PackStateForTest(r); buffers != tc.wantBuffers {
				t.Errorf("%d pack buffers at the end, want %d", buffers, tc.wantBuffers)
			}
			r2 := repotest.Open(t, lb.Location(), repotest.Password)
			for i, id := range ids {
				got, err := r2.LoadBlob(ctx, repo.DataBlob, id, nil)
				must(t, err)
				if !bytes.Equal(got, blobs[i]) {
					t.Fatalf("blob %d differs after the save", i)
				}
			}
		})
	}
}
