package prune

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// lockBackend gives a local backend S3 object-lock semantics: objects
// carry a lock expiry, and Remove or Replace of a locked object is refused
// whoever asks. (The S3 backend's own tests run the same rules against a
// real server; this double lets prune's decisions be tested in detail.)
type lockBackend struct {
	backend.Backend
	mu    sync.Mutex
	until map[backend.Handle]time.Time
	now   func() time.Time
	auto  time.Duration // new objects (not locks) are locked this long
}

func (b *lockBackend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := b.Backend.Save(ctx, h, data); err != nil {
		return err
	}
	if h.Type != backend.LockFile {
		b.mu.Lock()
		b.until[h] = b.now().Add(b.auto)
		b.mu.Unlock()
	}
	return nil
}

var _ backend.Retainer = (*lockBackend)(nil)

func (b *lockBackend) RetainUntil(_ context.Context, h backend.Handle) (time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.until[h], nil
}

func (b *lockBackend) ExtendRetention(_ context.Context, h backend.Handle, t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.After(b.until[h]) {
		b.until[h] = t
	}
	return nil
}

func (b *lockBackend) isLocked(h backend.Handle) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.until[h].After(b.now())
}

func (b *lockBackend) Remove(ctx context.Context, h backend.Handle) error {
	if b.isLocked(h) {
		return fmt.Errorf("%s: %w (object lock)", h, backend.ErrForbidden)
	}
	return b.Backend.Remove(ctx, h)
}

func (b *lockBackend) Replace(ctx context.Context, h backend.Handle, data []byte) error {
	if b.isLocked(h) {
		return fmt.Errorf("%s: %w (object lock)", h, backend.ErrForbidden)
	}
	return b.Backend.Replace(ctx, h, data)
}

// lockAll locks every object but locks/ until t.
func (b *lockBackend) lockAll(t *testing.T, until time.Time) {
	for _, typ := range backend.Types() {
		if typ == backend.LockFile {
			continue
		}
		must(t, b.Backend.List(ctx, typ, func(fi backend.FileInfo) error {
			b.until[backend.Handle{Type: typ, Name: fi.Name}] = until
			return nil
		}))
	}
}

// TestPruneObjectLock: packs under a lock are neither removed nor
// repacked; what kept snapshots need gets its lock extended; once the
// locks of unused data expire, the next prune removes it.
func TestPruneObjectLock(t *testing.T) {
	f := newFixture(t, makeStates(t, 6, 90, 60<<10), nil)
	dir := f.dir
	f.forget(t, dir, 0, 1, 2)
	nBefore, before := packBytes(t, dir)

	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	const ret = 30 * 24 * time.Hour
	lb := &lockBackend{until: map[backend.Handle]time.Time{}, now: clock, auto: ret}
	openLocked := func() *repo.Repository {
		be, err := local.Open(dir)
		must(t, err)
		lb.Backend = be
		r, err := repo.Open(ctx, lb, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
		must(t, err)
		return r
	}
	r := openLocked()
	lb.lockAll(t, now.Add(10*24*time.Hour))

	rep, err := Prune(ctx, r, Options{MaxUnusedPercent: DefaultMaxUnusedPercent, Retention: ret, Now: clock})
	must(t, err)
	nAfter, after := packBytes(t, dir)
	if rep.Remove.Packs != 0 || rep.Repack.Packs != 0 || rep.Locked.Packs == 0 || nAfter != nBefore || after != before {
		t.Fatalf("prune under locks: remove %+v repack %+v locked %+v; packs %d -> %d", rep.Remove, rep.Repack, rep.Locked, nBefore, nAfter)
	}
	if rep.LocksExtended == 0 {
		t.Fatal("no lock extended")
	}
	// Every kept snapshot's lock now runs for the whole retention.
	for k := 3; k < 6; k++ {
		h := backend.Handle{Type: backend.SnapshotFile, Name: repo.Hex(f.snaps[k].ID)}
		if u, _ := lb.RetainUntil(ctx, h); !u.Equal(now.Add(ret)) {
			t.Errorf("snapshot %d locked until %v, want %v", k, u, now.Add(ret))
		}
	}
	check(t, dir)
	for k := 3; k < 6; k++ {
		f.restoreAndCompare(t, dir, k)
	}

	// A second run right away extends nothing (every lock is fresh).
	rep, err = Prune(ctx, openLocked(), Options{MaxUnusedPercent: DefaultMaxUnusedPercent, Retention: ret, Now: clock})
	must(t, err)
	if rep.LocksExtended != 0 {
		t.Errorf("second prune extended %d locks", rep.LocksExtended)
	}

	// 11 days on, the locks of packs holding only forgotten data have
	// expired (they were not extended): they go. Packs still in use were
	// extended and stay.
	now = now.Add(11 * 24 * time.Hour)
	rep, err = Prune(ctx, openLocked(), Options{MaxUnusedPercent: DefaultMaxUnusedPercent, Retention: ret, Now: clock})
	must(t, err)
	if rep.Remove.Packs == 0 {
		t.Errorf("after expiry: remove %+v, locked %+v; want the unused packs removed", rep.Remove, rep.Locked)
	}
	check(t, dir)
	for k := 3; k < 6; k++ {
		f.restoreAndCompare(t, dir, k)
	}
}
