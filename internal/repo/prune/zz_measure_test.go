package prune

import (
	"os"
	"testing"
	"time"
	"fmt"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

func TestZZMeasure(t *testing.T) {
	if os.Getenv("MEASURE") == "" { t.Skip() }
	r, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
	src := t.TempDir()
	// 6 states, each 40 MB: 2000 files of 4..36 KB + 2 x 4 MB; state k rewrites 1/3 of the files.
	t0 := time.Date(2026,1,1,0,0,0,0,time.UTC)
	var ids []int
	for k := 0; k < 6; k++ {
		for i := 0; i < 20000; i++ {
			if k == 0 || (i+k)%3 == 0 {
				os.MkdirAll(filepath.Join(src, fmt.Sprintf("d%02d", i%200)), 0o755)
				os.WriteFile(filepath.Join(src, fmt.Sprintf("d%02d", i%200), fmt.Sprintf("f%d", i)), content(uint64(k*100000+i), 4096+i*13%12288), 0o644)
			}
		}
		for j := 0; j < 2; j++ {
			if k == 0 || (j+k)%2 == 0 {
				os.WriteFile(filepath.Join(src, fmt.Sprintf("big%d", j)), content(uint64(k*100000+50000+j), 4<<20), 0o644)
			}
		}
		_, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Time: t0.Add(time.Duration(k) * time.Hour)})
		must(t, err)
		ids = append(ids, k)
	}
	n, size := packBytes(t, dir)
	t.Logf("repo: %d packs, %d MB", n, size>>20)
	snaps, _, _ := open(t, dir).Snapshots(ctx)
	r2 := open(t, dir)
	for _, s := range snaps[:3] { must(t, r2.RemoveSnapshot(ctx, s.ID)) }
	start := time.Now()
	rep, err := Prune(ctx, openBare(t, dir), Options{MaxUnusedPercent: 5, DryRun: true})
	must(t, err)
	t.Logf("dry run %v: %d trees, %d blobs; keep %+v repack %+v remove %+v", time.Since(start), rep.Trees, rep.UsedBlobs, rep.Keep, rep.Repack, rep.Remove)
	start = time.Now()
	rep, err = Prune(ctx, openBare(t, dir), Options{MaxUnusedPercent: 5})
	must(t, err)
	n2, size2 := packBytes(t, dir)
	t.Logf("prune %v: keep %+v repack %+v (used %d MB) remove %+v written %+v freed %d MB -> %d packs %d MB", time.Since(start), rep.Keep, rep.Repack, rep.RepackUsedBytes>>20, rep.Remove, rep.Written, rep.BytesFreed>>20, n2, size2>>20)
	start = time.Now()
	rep, err = Prune(ctx, openBare(t, dir), Options{MaxUnusedPercent: 5})
	must(t, err)
	t.Logf("second prune %v nothing=%v", time.Since(start), rep.NothingToDo)
}
