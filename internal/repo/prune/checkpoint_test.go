package prune

import (
	"errors"
	"reflect"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

// TestPruneAfterInterruptedBackup: a backup that wrote checkpoints and
// was then interrupted leaves indexed packs no snapshot uses, and packs
// after its last checkpoint that no index lists. While the backup still
// holds its shared lock (it may be running), prune refuses and changes
// nothing; once the lock is gone, prune removes both kinds, the
// repository checks clean without warnings and the snapshot restores.
func TestPruneAfterInterruptedBackup(t *testing.T) {
	f := newFixture(t, makeStates(t, 1, 30, 30<<10), nil)
	dir := f.dir

	r := open(t, dir)
	r.CheckpointPacks = 3
	lock, err := r.Lock(ctx, false, 0)
	must(t, err)
	for i := range 20 {
		_, _, err := r.SaveBlob(ctx, repo.DataBlob, content(uint64(7e6+i), 400<<10))
		must(t, err)
	}
	// Wait for the uploads without writing Flush's index: the state a
	// killed backup leaves.
	tail, err := r.FlushPacks(ctx)
	must(t, err)
	cps := int(r.Stats().Checkpoints.Load())
	checkpointed := int(r.Stats().Packs.Load()) - len(tail)
	if cps < 2 || len(tail) == 0 || checkpointed != 3*cps {
		t.Fatalf("test premise: %d checkpoints listing %d packs, %d packs after the last", cps, checkpointed, len(tail))
	}
	for _, w := range check(t, dir) {
		t.Logf("check before prune: %s", w)
	}

	before := listing(t, dir)
	if _, err := Prune(ctx, openBare(t, dir), Options{}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("prune while the backup holds its lock: %v, want ErrLocked", err)
	}
	if after := listing(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatal("prune changed the repository while a backup held its lock")
	}

	must(t, lock.Unlock())
	rep, err := Prune(ctx, openBare(t, dir), Options{MaxUnusedPercent: DefaultMaxUnusedPercent})
	must(t, err)
	if rep.Remove.Packs != checkpointed || rep.Unreferenced.Packs != len(tail) || rep.Repack.Packs != 0 {
		t.Errorf("remove %+v (want %d checkpointed packs), unreferenced %+v (want %d), repack %+v",
			rep.Remove, checkpointed, rep.Unreferenced, len(tail), rep.Repack)
	}
	if rep.IndexFilesRemoved < cps {
		t.Errorf("%d index files removed, want at least the %d checkpoints", rep.IndexFilesRemoved, cps)
	}
	// Nothing of the interrupted backup is left: no pack, no index entry.
	r2 := open(t, dir)
	for i := range 20 {
		id := r2.Secrets().BlobID(content(uint64(7e6+i), 400<<10))
		if _, ok := r2.Index().Lookup(repo.DataBlob, id); ok {
			t.Errorf("blob %d of the interrupted backup is still indexed", i)
		}
	}
	n, _ := packBytes(t, dir)
	if n != len(r2.Index().Packs()) {
		t.Errorf("%d packs stored, %d indexed", n, len(r2.Index().Packs()))
	}
	if w := check(t, dir); len(w) > 0 {
		t.Errorf("warnings after prune: %v", w)
	}
	f.restoreAndCompare(t, dir, 0)
}
