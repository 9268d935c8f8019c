package copier

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// TestCopyResumes: a copy whose destination goes away after some packs
// fails and saves no snapshot; the next copy reuses what the first one's
// checkpoints indexed, copies only the rest, and verifies.
func TestCopyResumes(t *testing.T) {
	for _, shared := range []bool{true, false} {
		name := map[bool]string{true: "shared parameters", false: "different keys"}[shared]
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			must(t, os.MkdirAll(data, 0o755))
			for i := range 16 {
				must(t, os.WriteFile(filepath.Join(data, string(rune('a'+i))), random(uint64(100+i), 1<<20), 0o600))
			}
			src, _ := repotest.New(t, repotest.Options{PackSize: 1 << 20})
			backup(t, src, data)
			snaps := snapshotsOf(t, src)
			dir := filepath.Join(t.TempDir(), "dst")
			be, err := local.Create(dir)
			must(t, err)
			o := repo.InitOptions{KDF: repotest.FastKDF, PackSize: 1 << 20, CacheDir: "-"}
			if shared {
				o.CopyFrom = src
			}
			dst, err := repo.Init(ctx, be, []byte(repotest.Password), o)
			must(t, err)
			dst.Close()
			open := func(be backend.Backend) *repo.Repository {
				r, err := repo.Open(ctx, be, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
				must(t, err)
				must(t, r.LoadIndex(ctx))
				r.CheckpointPacks = 3
				return r
			}

			lb, err := local.Open(dir)
			must(t, err)
			d1 := open(&repotest.CutBackend{Backend: lb, Packs: 9})
			if _, err := Copy(ctx, src, d1, snaps, Options{}); err == nil {
				t.Fatal("copy succeeded though its destination went away")
			}
			_ = d1.Flush(ctx) // wait for the uploads still running
			after := repotest.Open(t, dir, repotest.Password)
			if n := len(snapshotsOf(t, after)); n != 0 {
				t.Fatalf("%d snapshots after a failed copy", n)
			}
			files, err := after.LoadIndexFiles(ctx)
			must(t, err)
			var indexed int64 // plaintext bytes the checkpoints list
			for _, f := range files {
				must(t, f.Err)
				for _, p := range f.File.Packs {
					for _, b := range p.Blobs {
						indexed += int64(b.RawLength)
					}
				}
			}

			lb2, err := local.Open(dir)
			must(t, err)
			d2 := open(lb2)
			res, err := Copy(ctx, src, d2, snaps, Options{})
			must(t, err)
			total := int64(16 << 20)
			t.Logf("interrupted copy: %d checkpoints listing %d bytes, %d bytes uploaded; resumed: %d blobs, %d bytes copied of %d, verified %v (%d blobs)",
				d1.Stats().Checkpoints.Load(), indexed, d1.Stats().BytesStored.Load(), res.Blobs, res.Bytes, total, res.Verified, res.BlobsNeeded)
			if !res.Verified || len(res.Copied) != 1 {
				t.Fatalf("resumed copy: %+v", res)
			}
			// The cut came after 9 packs; checkpoints list at least 6
			// (about 4 MiB), and the resumed copy moves only the rest.
			if indexed < 4<<20 || res.Bytes > total-indexed+64<<10 {
				t.Errorf("resumed copy moved %d of %d bytes, the checkpoints of the first listed %d", res.Bytes, total, indexed)
			}
			check(t, repotest.Open(t, dir, repotest.Password))
			restoreAndCompare(t, repotest.Open(t, dir, repotest.Password), res.Copied[0].Copy, data)
		})
	}
}
