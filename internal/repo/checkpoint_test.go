package repo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/checker"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
)

// randomFiles writes n files of size random (incompressible) bytes.
func randomFiles(t *testing.T, seed uint64, n, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	must(t, os.MkdirAll(dir, 0o755))
	rng := rand.NewChaCha8([32]byte{byte(seed), 1})
	b := make([]byte, size)
	for i := range n {
		_, _ = rng.Read(b)
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), b, 0o600))
	}
	return dir
}

// indexFiles reads the index files of the repository at dir afresh.
func indexFiles(t *testing.T, dir string) []repo.IndexFile {
	t.Helper()
	r := repotest.Open(t, dir, repotest.Password)
	files, err := r.LoadIndexFiles(ctx)
	must(t, err)
	for _, f := range files {
		must(t, f.Err)
	}
	return files
}

// dataPacks returns the pack files in data/ of the repository at dir.
func dataPacks(t *testing.T, dir string) map[repo.ID]bool {
	t.Helper()
	be, err := local.Open(dir)
	must(t, err)
	out := map[repo.ID]bool{}
	must(t, be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, err := repo.ParseID(fi.Name)
		out[id] = err == nil
		return err
	}))
	return out
}

// indexedPacks maps every pack the index files list to how many list it,
// and checks that each is in data/: an index never names a pack that was
// not stored.
func indexedPacks(t *testing.T, dir string, files []repo.IndexFile) map[repo.ID]int {
	t.Helper()
	present := dataPacks(t, dir)
	out := map[repo.ID]int{}
	for _, f := range files {
		for _, p := range f.File.Packs {
			out[p.ID]++
			if !present[p.ID] {
				t.Errorf("index/%s lists pack %s, which is not stored", repo.Short(f.Name), repo.Short(p.ID))
			}
		}
	}
	return out
}

// stepClock is a clock that moves on by step every time it is read.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// TestCheckpoints: a session that uploads more packs than the threshold
// (or for longer than the interval) writes checkpoint index files while it
// runs; Flush writes the rest; every pack is listed exactly once.
func TestCheckpoints(t *testing.T) {
	cases := []struct {
		name     string
		packs    int
		interval time.Duration
		step     time.Duration // the clock moves by step at every reading; 0: real clock
		// maxPer is the most packs a checkpoint may list, and
		// minCheckpoints the fewest checkpoints, for 24 data packs.
		maxPer, minCheckpoints int
		wantFiles              int // exact index file count; 0: not checked
	}{
		{name: "every 4 packs", packs: 4, interval: -1, maxPer: 4, minCheckpoints: 5},
		{name: "every 5 minutes", packs: -1, interval: 5 * time.Minute, step: 2 * time.Minute, maxPer: 4, minCheckpoints: 5},
		{name: "off", packs: -1, interval: -1, wantFiles: 1},
		// 1 GiB at 1 MiB packs, 5 minutes: a 24 MiB session writes one.
		{name: "defaults", wantFiles: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
			r.CheckpointPacks, r.CheckpointInterval = c.packs, c.interval
			if c.step > 0 {
				r.Now = (&stepClock{now: time.Now(), step: c.step}).Now
			}
			// 24 blobs of 900 KiB: one per 1 MiB pack, saved from
			// three goroutines.
			rng := rand.NewChaCha8([32]byte{7})
			blobs := make([][]byte, 24)
			for i := range blobs {
				blobs[i] = make([]byte, 900<<10)
				_, _ = rng.Read(blobs[i])
			}
			var wg sync.WaitGroup
			for w := range 3 {
				wg.Go(func() {
					for i := w; i < len(blobs); i += 3 {
						if _, _, err := r.SaveBlob(ctx, repo.DataBlob, blobs[i]); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			must(t, r.Flush(ctx))

			st := r.Stats()
			files := indexFiles(t, dir)
			if got := int(st.IndexFiles.Load()); got != len(files) {
				t.Errorf("Stats().IndexFiles = %d, %d index files stored", got, len(files))
			}
			if c.wantFiles > 0 && len(files) != c.wantFiles {
				t.Errorf("%d index files, want %d", len(files), c.wantFiles)
			}
			cps := int(st.Checkpoints.Load())
			if cps < c.minCheckpoints || (cps != len(files) && cps != len(files)-1) {
				t.Errorf("%d checkpoints, %d index files; want at least %d checkpoints and Flush's file at most", cps, len(files), c.minCheckpoints)
			}
			for _, f := range files {
				if c.maxPer > 0 && len(f.File.Packs) > c.maxPer {
					t.Errorf("index/%s lists %d packs, threshold %d", repo.Short(f.Name), len(f.File.Packs), c.maxPer)
				}
				if !f.File.Signed {
					t.Errorf("index/%s written by a full key is not signed", repo.Short(f.Name))
				}
			}
			listed := indexedPacks(t, dir, files)
			if len(listed) != len(dataPacks(t, dir)) || len(listed) != int(st.Packs.Load()) {
				t.Errorf("%d packs indexed, %d stored, %d uploaded", len(listed), len(dataPacks(t, dir)), st.Packs.Load())
			}
			for p, n := range listed {
				if n != 1 {
					t.Errorf("pack %s is listed by %d index files", repo.Short(p), n)
				}
			}
			// Every blob is found by a new session.
			r2 := repotest.Open(t, dir, repotest.Password)
			for _, b := range blobs {
				if _, added, err := r2.SaveBlob(ctx, repo.DataBlob, b); err != nil || added {
					t.Fatalf("a blob of the first session was stored again (added %v, err %v)", added, err)
				}
			}
		})
	}
}

// TestInterruptedBackupResumes: a backup whose backend goes away for good
// (or whose context is cancelled) after some packs leaves index files
// covering the packs up to its last checkpoint and nothing unusable; the
// next backup of the same files uploads only the rest, checks clean and
// restores. A write-only key resumes from its own, unsigned checkpoints
// when its local cache remembers them, and re-uploads without a cache
// (it cannot tell its own unsigned index from another client's).
func TestInterruptedBackupResumes(t *testing.T) {
	const (
		files    = 24
		fileSize = 1 << 20
		cutAt    = 14 // packs stored before the backend goes away
		every    = 4  // packs per checkpoint
	)
	cases := []struct {
		name       string
		writeOnly  bool
		cache      bool
		cancel     bool
		wantResume bool
	}{
		{name: "backend gone", cache: true, wantResume: true},
		{name: "context cancelled", cancel: true, wantResume: true},
		{name: "write-only key with its cache", writeOnly: true, cache: true, wantResume: true},
		{name: "write-only key without a cache", writeOnly: true, wantResume: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := randomFiles(t, 3, files, fileSize)
			full, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
			pw := repotest.Password
			if c.writeOnly {
				pw = "client"
				_, err := full.AddKey(ctx, []byte(pw), true, repotest.FastKDF, crypto.KeyFile{})
				must(t, err)
			}
			cache := "-"
			if c.cache {
				cache = t.TempDir()
			}
			open := func(be backend.Backend) *repo.Repository {
				r, err := repo.Open(ctx, be, []byte(pw), repo.OpenOptions{CacheDir: cache})
				must(t, err)
				must(t, r.LoadIndex(ctx))
				r.CheckpointPacks = every
				return r
			}

			// First run: cut after cutAt packs.
			lb, err := local.Open(dir)
			must(t, err)
			cb := &repotest.CutBackend{Backend: lb, Packs: cutAt, Uploads: 3}
			bctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if c.cancel {
				cb.Cancel = cancel
			}
			r1 := open(cb)
			_, err = archiver.Backup(bctx, r1, []string{src}, archiver.Options{NoParent: true})
			if err == nil {
				t.Fatal("the backup succeeded though its backend went away")
			}
			if c.cancel && !errors.Is(err, context.Canceled) {
				t.Fatalf("backup error %v, want context.Canceled", err)
			}
			// Wait for what the dying session still had running: nothing
			// more reaches the backend.
			if err := r1.Flush(ctx); err == nil {
				t.Fatal("Flush after the cut succeeded")
			}
			st1 := r1.Stats()
			idx := indexFiles(t, dir)
			listed := indexedPacks(t, dir, idx)
			var rawIndexed int64
			for _, f := range idx {
				if f.File.Signed == c.writeOnly {
					t.Errorf("index/%s: signed %v with a write-only key %v", repo.Short(f.Name), f.File.Signed, c.writeOnly)
				}
				for _, p := range f.File.Packs {
					for _, b := range p.Blobs {
						rawIndexed += int64(b.RawLength)
					}
				}
			}
			t.Logf("interrupted run: %d packs (%d bytes) uploaded, %d checkpoints list %d packs, %d bytes of files",
				st1.Packs.Load(), st1.BytesStored.Load(), len(idx), len(listed), rawIndexed)
			// Usually the checkpoints cover the packs up to the last
			// multiple of `every` below the cut; the last one may have
			// lost the race with the cut, so at least one is required.
			if len(idx) != int(st1.Checkpoints.Load()) || len(listed) < every {
				t.Fatalf("after a cut at %d packs: %d index files (%d checkpoints) listing %d packs; want the packs up to the last checkpoint",
					cutAt, len(idx), st1.Checkpoints.Load(), len(listed))
			}

			// Second run, a new process on a working backend.
			lb2, err := local.Open(dir)
			must(t, err)
			r2 := open(lb2)
			res, err := archiver.Backup(ctx, r2, []string{src}, archiver.Options{NoParent: true})
			must(t, err)
			st2 := r2.Stats()
			total := int64(files * fileSize)
			t.Logf("resumed run: %d packs, %d bytes stored, %d bytes of files new (of %d)",
				st2.Packs.Load(), st2.BytesStored.Load(), st2.BytesRaw.Load(), total)
			if c.wantResume {
				// Only what no checkpoint covered, and the trees.
				if got, want := st2.BytesRaw.Load(), total-rawIndexed+64<<10; got > want {
					t.Errorf("resumed run stored %d bytes of new data, want at most %d (total %d, checkpointed %d)", got, want, total, rawIndexed)
				}
				if got, want := st2.BytesStored.Load(), total-rawIndexed+1<<20; got > want {
					t.Errorf("resumed run uploaded %d bytes, want at most %d (total %d, checkpointed %d)", got, want, total, rawIndexed)
				}
			} else if st2.BytesRaw.Load() < total {
				t.Errorf("a write-only key without a cache trusted unsigned index entries: %d of %d bytes new", st2.BytesRaw.Load(), total)
			}

			// A full key checks everything (reading all data) and restores.
			r := repotest.Open(t, dir, repotest.Password)
			rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
			must(t, err)
			if !rep.OK {
				t.Fatalf("check after the resumed backup: %v", rep.Errors)
			}
			t.Logf("check warnings: %v", rep.Warnings)
			target := t.TempDir()
			s, err := r.LoadSnapshot(ctx, res.Snapshot.ID)
			must(t, err)
			_, err = restorer.Restore(ctx, r, s, target, restorer.Options{Verify: true})
			must(t, err)
			repotest.CompareDirs(t, src, filepath.Join(target, src), repotest.CompareOptions{})
		})
	}
}

// TestCheckpointFailureIsRetried: a checkpoint that cannot be written
// does not fail the session; its packs are listed by a later checkpoint
// or by Flush, once each.
func TestCheckpointFailureIsRetried(t *testing.T) {
	_, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
	lb, err := local.Open(dir)
	must(t, err)
	fb := &failIndexBackend{Backend: lb}
	fb.left.Store(2) // the first two index writes fail
	r, err := repo.Open(ctx, fb, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	must(t, r.LoadIndex(ctx))
	r.CheckpointPacks = 3
	rng := rand.NewChaCha8([32]byte{9})
	b := make([]byte, 900<<10)
	for range 16 {
		_, _ = rng.Read(b)
		_, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
		must(t, err)
	}
	must(t, r.Flush(ctx))
	if fb.failed.Load() != 2 {
		t.Fatalf("test premise: %d index writes failed, want 2", fb.failed.Load())
	}
	files := indexFiles(t, dir)
	listed := indexedPacks(t, dir, files)
	if len(listed) != 16 {
		t.Errorf("%d of 16 packs indexed", len(listed))
	}
	for p, n := range listed {
		if n != 1 {
			t.Errorf("pack %s listed %d times", repo.Short(p), n)
		}
	}
}

// failIndexBackend fails the first `left` index writes.
type failIndexBackend struct {
	backend.Backend
	left, failed atomic.Int64
}

func (b *failIndexBackend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.IndexFile && b.left.Add(-1) >= 0 {
		b.failed.Add(1)
		return repotest.ErrGone
	}
	return b.Backend.Save(ctx, h, data)
}

// TestCheckpointOverhead measures what checkpoints cost in index bytes:
// the same blobs saved with a checkpoint every 2 packs and with none. The
// entries are the same (each pack listed once); each extra file adds its
// envelope (nonce, tag, key id, signature, zstd frame), about 150 bytes.
func TestCheckpointOverhead(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{11})
	blobs := make([][]byte, 64)
	for i := range blobs {
		blobs[i] = make([]byte, 250<<10)
		_, _ = rng.Read(blobs[i])
	}
	save := func(every int) *repo.SaveStats {
		r, _ := repotest.New(t, repotest.Options{PackSize: 1 << 20})
		r.CheckpointPacks, r.CheckpointInterval = every, -1
		for _, b := range blobs {
			_, _, err := r.SaveBlob(ctx, repo.DataBlob, b)
			must(t, err)
		}
		must(t, r.Flush(ctx))
		return r.Stats()
	}
	with, without := save(2), save(-1)
	files, bytes := with.IndexFiles.Load(), with.IndexBytes.Load()
	if without.IndexFiles.Load() != 1 || files < 8 {
		t.Fatalf("test premise: %d index files with checkpoints, %d without", files, without.IndexFiles.Load())
	}
	per := (bytes - without.IndexBytes.Load()) / (files - 1)
	t.Logf("%d packs, %d blobs: one index file of %d bytes without checkpoints; %d files, %d bytes with a checkpoint every 2 packs (%d bytes per extra file)",
		with.Packs.Load(), len(blobs), without.IndexBytes.Load(), files, bytes, per)
	if per > 256 {
		t.Errorf("each checkpoint costs %d bytes of index beyond its entries, want at most 256", per)
	}
}
