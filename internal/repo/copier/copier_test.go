package copier

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/checker"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
)

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func random(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// source writes a tree: small files, a 5 MiB file (several chunks), an
// empty file, a symlink and a sparse file.
func source(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "src")
	must(t, os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755))
	for i := range 20 {
		must(t, os.WriteFile(filepath.Join(dir, "sub", "f"+string(rune('a'+i))), random(uint64(i), 1000+i*37), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(dir, "sub", "deeper", "big"), random(99, 5<<20), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644))
	must(t, os.Symlink("sub/fa", filepath.Join(dir, "link")))
	f, err := os.Create(filepath.Join(dir, "sparse"))
	must(t, err)
	_, err = f.WriteAt([]byte("end"), 20<<20)
	must(t, err)
	must(t, f.Close())
	return dir
}

func backup(t *testing.T, r *repo.Repository, dir string) *repo.Snapshot {
	t.Helper()
	res, err := archiver.Backup(ctx, r, []string{dir}, archiver.Options{Host: "h"})
	must(t, err)
	return res.Snapshot
}

// restoreAndCompare restores snapshot id of r and compares it with dir.
func restoreAndCompare(t *testing.T, r *repo.Repository, id string, dir string) {
	t.Helper()
	s, err := r.FindSnapshot(ctx, id, repo.Filter{})
	must(t, err)
	target := t.TempDir()
	_, err = restorer.Restore(ctx, r, s, target, restorer.Options{Verify: true})
	must(t, err)
	repotest.CompareDirs(t, dir, filepath.Join(target, dir), repotest.CompareOptions{})
}

func check(t *testing.T, r *repo.Repository) {
	t.Helper()
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	must(t, err)
	if !rep.OK {
		t.Fatalf("check: %+v", rep.Errors)
	}
}

// newDest makes a destination repository, sharing src's parameters when
// shared is set.
func newDest(t *testing.T, src *repo.Repository, shared bool) (*repo.Repository, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dst")
	be, err := local.Create(dir)
	must(t, err)
	o := repo.InitOptions{KDF: repotest.FastKDF, CacheDir: t.TempDir()}
	if shared {
		o.CopyFrom = src
	}
	dst, err := repo.Init(ctx, be, []byte(repotest.Password), o)
	must(t, err)
	return dst, dir
}

func snapshotsOf(t *testing.T, r *repo.Repository) []*repo.Snapshot {
	t.Helper()
	s, _, err := r.Snapshots(ctx)
	must(t, err)
	return s
}

func TestCopy(t *testing.T) {
	for _, shared := range []bool{true, false} {
		name := map[bool]string{true: "shared parameters", false: "different keys"}[shared]
		t.Run(name, func(t *testing.T) {
			data := source(t)
			src, _ := repotest.New(t, repotest.Options{})
			s1 := backup(t, src, data)
			dst, dstDir := newDest(t, src, shared)

			res, err := Copy(ctx, src, dst, snapshotsOf(t, src), Options{})
			must(t, err)
			if len(res.Copied) != 1 || res.SameIDs != shared || !res.Verified || res.Blobs == 0 {
				t.Fatalf("first copy: %+v", res)
			}
			copies := snapshotsOf(t, dst)
			if len(copies) != 1 || copies[0].Original != repo.Hex(s1.ID) || !copies[0].Time.Equal(s1.Time) ||
				copies[0].Hostname != "h" || (shared && copies[0].Tree != s1.Tree) {
				t.Fatalf("copy: %+v", copies)
			}
			restoreAndCompare(t, dst, res.Copied[0].Copy, data)
			check(t, repotest.Open(t, dstDir, repotest.Password))

			// Again: nothing to do.
			res, err = Copy(ctx, src, dst, snapshotsOf(t, src), Options{})
			must(t, err)
			if len(res.Copied) != 0 || len(res.Skipped) != 1 || res.Blobs != 0 {
				t.Errorf("second copy of the same snapshot: %+v", res)
			}

			// A changed file: only its blobs move.
			must(t, os.WriteFile(filepath.Join(data, "sub", "fa"), random(1000, 3000), 0o644))
			backup(t, src, data)
			res, err = Copy(ctx, src, dst, snapshotsOf(t, src), Options{})
			must(t, err)
			if len(res.Copied) != 1 || len(res.Skipped) != 1 {
				t.Fatalf("copy after a change: %+v", res)
			}
			// The changed file's chunk and the trees on its path (root,
			// data dir, sub, and the virtual path directories).
			if res.Blobs > 12 || res.Bytes > 64<<10 {
				t.Errorf("copy after changing one small file moved %d blobs, %d bytes", res.Blobs, res.Bytes)
			}
			restoreAndCompare(t, dst, res.Copied[0].Copy, data)
			check(t, repotest.Open(t, dstDir, repotest.Password))
		})
	}
}

// A write-only destination (an offsite credential) can receive copies; it
// remembers what it copied in its cache.
func TestCopyToWriteOnly(t *testing.T) {
	data := source(t)
	src, _ := repotest.New(t, repotest.Options{})
	backup(t, src, data)
	full, dstDir := newDest(t, src, true)
	_, err := full.AddKey(ctx, []byte("write only"), true, repotest.FastKDF, crypto.KeyFile{})
	must(t, err)
	cache := t.TempDir()
	openWO := func() *repo.Repository {
		be, err := local.Open(dstDir)
		must(t, err)
		wo, err := repo.Open(ctx, be, []byte("write only"), repo.OpenOptions{CacheDir: cache})
		must(t, err)
		must(t, wo.LoadIndex(ctx))
		if wo.CanRead() {
			t.Fatal("the write-only key can read")
		}
		return wo
	}
	res, err := Copy(ctx, src, openWO(), snapshotsOf(t, src), Options{})
	must(t, err)
	if len(res.Copied) != 1 || !res.Verified {
		t.Fatalf("copy: %+v", res)
	}
	res, err = Copy(ctx, src, openWO(), snapshotsOf(t, src), Options{})
	must(t, err)
	if len(res.Copied) != 0 || len(res.Skipped) != 1 {
		t.Errorf("second copy with the cache: %+v", res)
	}
	dst := repotest.Open(t, dstDir, repotest.Password)
	check(t, dst)
	restoreAndCompare(t, dst, "latest", data)

	// The source must be readable.
	if _, err := Copy(ctx, openWO(), src, nil, Options{}); !errors.Is(err, repo.ErrNeedFullKey) {
		t.Errorf("copy from a write-only key: %v", err)
	}
}

// A blob missing from the source fails the copy and stores no snapshot.
func TestCopyMissingBlob(t *testing.T) {
	data := source(t)
	src, srcDir := repotest.New(t, repotest.Options{})
	backup(t, src, data)
	// Remove every pack of the source: blobs become unreadable.
	packs, err := filepath.Glob(filepath.Join(srcDir, "data", "*", "*"))
	must(t, err)
	for _, p := range packs {
		must(t, os.Remove(p))
	}
	dst, _ := newDest(t, src, false)
	if _, err := Copy(ctx, src, dst, snapshotsOf(t, src), Options{}); err == nil {
		t.Fatal("copy with missing source packs succeeded")
	}
	if n := len(snapshotsOf(t, dst)); n != 0 {
		t.Errorf("%d snapshots in the destination after a failed copy", n)
	}
}
