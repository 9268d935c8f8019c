package repo_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// noLockRefresh stores everything but lock refreshes (every lock write
// after the first fails), as storage that is unreachable for a while.
type noLockRefresh struct {
	backend.Backend
	locks int
}

func (b *noLockRefresh) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.LockFile {
		if b.locks++; b.locks > 1 {
			return repotest.ErrGone
		}
	}
	return b.Backend.Save(ctx, h, data)
}

// TestLapsedLockStopsWrites: a session whose lock was not refreshed for
// StaleAfter (another process may have found it stale and pruned) writes
// no further checkpoint, and its Flush and SaveSnapshot fail with
// ErrLockLapsed; a lock refreshed in time changes nothing.
func TestLapsedLockStopsWrites(t *testing.T) {
	cases := []struct {
		name           string
		refresh, stale time.Duration
		wait           time.Duration // after the checkpoint; 0: twice stale
		failRefresh    bool
		removeLock     bool
		want           error
	}{
		// The session outlives its stale time by a second, while a
		// refresher that ran even once in two seconds keeps it fresh (a
		// loaded machine running the race detector can delay a 20 ms
		// ticker by far more than 600 ms).
		{name: "refreshed in time", refresh: 20 * time.Millisecond, stale: 2 * time.Second, wait: 3 * time.Second},
		{name: "not refreshed (machine asleep)", refresh: time.Hour, stale: 600 * time.Millisecond, want: repo.ErrLockLapsed},
		{name: "refresh failing (storage unreachable)", refresh: 20 * time.Millisecond, stale: 600 * time.Millisecond, failRefresh: true, want: repo.ErrLockLapsed},
		{name: "lock removed by another process", refresh: 20 * time.Millisecond, stale: 600 * time.Millisecond, removeLock: true, want: repo.ErrLockLapsed},
	}
	oldRefresh, oldStale := repo.RefreshInterval, repo.StaleAfter
	t.Cleanup(func() { repo.RefreshInterval, repo.StaleAfter = oldRefresh, oldStale })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo.RefreshInterval, repo.StaleAfter = c.refresh, c.stale
			_, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
			var be backend.Backend
			be, err := local.Open(dir)
			must(t, err)
			if c.failRefresh {
				be = &noLockRefresh{Backend: be}
			}
			r, err := repo.Open(ctx, be, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
			must(t, err)
			r.CheckpointPacks, r.CheckpointInterval = 2, -1
			l, err := r.Lock(ctx, false, 0)
			must(t, err)
			defer l.Unlock()
			rng := rand.NewChaCha8([32]byte{13})
			save := func(n int) {
				b := make([]byte, 900<<10)
				for range n {
					_, _ = rng.Read(b)
					_, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
					must(t, err)
				}
			}
			save(3) // a checkpoint while the lock is fresh
			for deadline := time.Now().Add(c.stale); r.Stats().Checkpoints.Load() == 0 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if r.Stats().Checkpoints.Load() != 1 {
				t.Fatalf("test premise: no checkpoint within %v of taking the lock", c.stale)
			}
			if c.removeLock { // as `repo unlock`, or a host that judged it stale
				var names []string
				must(t, be.List(ctx, backend.LockFile, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil }))
				for _, n := range names {
					must(t, be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: n}))
				}
			}
			wait := c.wait
			if wait == 0 {
				wait = 2 * c.stale
			}
			time.Sleep(wait)
			save(3)
			err = r.Flush(ctx)
			if !errors.Is(err, c.want) {
				t.Fatalf("Flush: %v, want %v", err, c.want)
			}
			_, serr := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Paths: []string{"/x"}, Hostname: "h"})
			if !errors.Is(serr, c.want) {
				t.Fatalf("SaveSnapshot: %v, want %v", serr, c.want)
			}
			files := indexFiles(t, dir)
			if c.want != nil {
				t.Logf("Flush: %v", err)
				// Only the checkpoint written before the lapse.
				if len(files) != 1 || len(files[0].File.Packs) != 2 {
					t.Errorf("%d index files after the lapse, want the one checkpoint before it", len(files))
				}
			} else if len(indexedPacks(t, dir, files)) != 6 {
				t.Errorf("%d packs indexed, want 6", len(indexedPacks(t, dir, files)))
			}
		})
	}
}
