package prune

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/checker"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// content returns size pseudo-random (incompressible) bytes for a file
// version, the same for the same version in every state.
func content(version uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(version, 0x5eed))
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// makeStates writes n directories, each a state of the same tree of small
// files: state k rewrites every file whose number is k modulo n and adds a
// few, so consecutive states share most blobs and each state has some of
// its own. Each directory is left untouched afterwards (the reference for
// restores).
func makeStates(t testing.TB, n, files, maxSize int) []string {
	t.Helper()
	base := t.TempDir()
	version := make([]uint64, files)
	for i := range version {
		version[i] = uint64(i)
	}
	var dirs []string
	for k := 0; k < n; k++ {
		dir := filepath.Join(base, fmt.Sprintf("state%d", k))
		must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
		if k > 0 {
			for i := range version {
				if i%n == k {
					version[i] = uint64(1000*k + i)
				}
			}
		}
		for i, v := range version {
			size := 4096 + int(v*7919%uint64(maxSize))
			p := filepath.Join(dir, fmt.Sprintf("f%03d", i))
			if i%3 == 0 {
				p = filepath.Join(dir, "sub", fmt.Sprintf("f%03d", i))
			}
			must(t, os.WriteFile(p, content(v, size), 0o644))
		}
		for j := 0; j < 3; j++ {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("new%d-%d", k, j)), content(uint64(1e6+10*k+j), 9000), 0o600))
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

type fixture struct {
	dir    string
	states []string
	snaps  []*repo.Snapshot
}

// newFixture backs up every state into a fresh repository with 1 MiB packs.
func newFixture(t testing.TB, states []string, par *parity.Params) *fixture {
	t.Helper()
	r, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20, Parity: par})
	f := &fixture{dir: dir, states: states}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for k, st := range states {
		res, err := archiver.Backup(ctx, r, []string{st}, archiver.Options{Time: t0.Add(time.Duration(k) * time.Hour), NoParent: true})
		must(t, err)
		f.snaps = append(f.snaps, res.Snapshot)
	}
	return f
}

// copyRepo copies a fixture's repository, so one fixture serves many cases.
func (f *fixture) copyRepo(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	must(t, os.CopyFS(dst, os.DirFS(f.dir)))
	return dst
}

func open(t testing.TB, dir string) *repo.Repository {
	return repotest.Open(t, dir, repotest.Password)
}

// openBare opens without loading the index (Prune does not use it).
func openBare(t testing.TB, dir string) *repo.Repository {
	t.Helper()
	be, err := local.Open(dir)
	must(t, err)
	r, err := repo.Open(ctx, be, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	return r
}

// forget removes the snapshots with the given positions.
func (f *fixture) forget(t testing.TB, dir string, which ...int) {
	t.Helper()
	r := open(t, dir)
	for _, k := range which {
		must(t, r.RemoveSnapshot(ctx, f.snaps[k].ID))
	}
}

// check runs the full check with --read-data and fails on any error; it
// returns the warnings.
func check(t testing.TB, dir string) []checker.Problem {
	t.Helper()
	rep, err := checker.Check(ctx, open(t, dir), checker.Options{ReadData: true})
	must(t, err)
	for _, e := range rep.Errors {
		t.Errorf("check: %s", e)
	}
	return rep.Warnings
}

// restoreAndCompare restores snapshot k and compares it with its state.
func (f *fixture) restoreAndCompare(t testing.TB, dir string, k int) {
	t.Helper()
	r := open(t, dir)
	s, err := r.LoadSnapshot(ctx, f.snaps[k].ID)
	must(t, err)
	dst := t.TempDir()
	st, err := restorer.Restore(ctx, r, s, dst, restorer.Options{Verify: true})
	must(t, err)
	if st.Verified != st.Files {
		t.Errorf("snapshot %d: verified %d of %d files", k, st.Verified, st.Files)
	}
	repotest.CompareDirs(t, f.states[k], filepath.Join(dst, f.states[k]), repotest.CompareOptions{IgnoreOwner: true})
}

// listing maps every object file of a repository (locks aside) to its
// SHA-256, to show that nothing changed.
func listing(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "locks/") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = sha256.Sum256(b)
		return nil
	}))
	return out
}

func packBytes(t testing.TB, dir string) (n int, size int64) {
	t.Helper()
	must(t, open(t, dir).Backend().List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		n++
		size += fi.Size
		return nil
	}))
	return n, size
}

// usedBlobs walks the snapshots with the repository API (independently of
// the pruner) and returns every tree and data blob they use.
func usedBlobs(t testing.TB, r *repo.Repository) map[blobKey]bool {
	t.Helper()
	snaps, bad, err := r.Snapshots(ctx)
	must(t, err)
	if len(bad) > 0 {
		t.Fatalf("bad snapshots: %v", bad)
	}
	used := map[blobKey]bool{}
	var walk func(id repo.ID)
	walk = func(id repo.ID) {
		k := blobKey{id, repo.TreeBlob}
		if used[k] {
			return
		}
		used[k] = true
		tr, err := r.LoadTree(ctx, id)
		must(t, err)
		for _, n := range tr.Nodes {
			if n.Subtree != nil {
				walk(repo.ID(*n.Subtree))
			}
			for _, c := range n.Content {
				if !c.IsHole() {
					used[blobKey{repo.ID(c.ID), repo.DataBlob}] = true
				}
			}
		}
	}
	for _, s := range snaps {
		walk(s.Tree)
	}
	return used
}

// indexCopies counts the copies of every blob in the live index files.
func indexCopies(t testing.TB, r *repo.Repository) map[blobKey]int {
	t.Helper()
	files, err := r.LoadIndexFiles(ctx)
	must(t, err)
	super := map[repo.ID]bool{}
	for _, f := range files {
		must(t, f.Err)
		for _, s := range f.File.Supersedes {
			super[s] = true
		}
	}
	out := map[blobKey]int{}
	for _, f := range files {
		if super[f.Name] {
			continue
		}
		for _, p := range f.File.Packs {
			for _, b := range p.Blobs {
				out[blobKey{b.ID, b.Type}]++
			}
		}
	}
	return out
}

// TestPruneAfterForget: forgetting half the snapshots and pruning frees
// space, leaves a repository that passes check --read-data, and the
// remaining snapshots restore byte for byte; a second prune has nothing to
// do.
func TestPruneAfterForget(t *testing.T) {
	f := newFixture(t, makeStates(t, 6, 90, 60<<10), nil)
	dir := f.dir
	f.forget(t, dir, 0, 1, 2)
	nBefore, before := packBytes(t, dir)

	rep, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: DefaultMaxUnusedPercent})
	must(t, err)
	nAfter, after := packBytes(t, dir)
	t.Logf("prune: %d packs %d bytes -> %d packs %d bytes; keep %+v repack %+v remove %+v written %+v in %.3fs",
		nBefore, before, nAfter, after, rep.Keep, rep.Repack, rep.Remove, rep.Written, rep.Duration)
	if rep.Snapshots != 3 || rep.Before.Bytes != before || rep.Before.Packs != nBefore {
		t.Errorf("report: %d snapshots, before %+v; want 3 and %d packs %d bytes", rep.Snapshots, rep.Before, nBefore, before)
	}
	if rep.BytesFreed <= 0 || after != before-rep.BytesFreed || rep.After.Bytes != after || rep.After.Packs != nAfter {
		t.Errorf("freed %d: %d -> %d bytes (report after %+v)", rep.BytesFreed, before, after, rep.After)
	}
	if rep.Remove.Packs+rep.Repack.Packs == 0 {
		t.Errorf("nothing removed or repacked: %+v", rep)
	}
	if rep.NewIndex == "" || rep.IndexFilesRemoved != 6 {
		t.Errorf("new index %q, %d old files removed; want 6", rep.NewIndex, rep.IndexFilesRemoved)
	}
	if w := check(t, dir); len(w) > 0 {
		t.Errorf("warnings after prune: %v", w)
	}
	for k := 3; k < 6; k++ {
		f.restoreAndCompare(t, dir, k)
	}
	files, err := open(t, dir).LoadIndexFiles(ctx)
	must(t, err)
	if len(files) != 1 || !files[0].File.Signed {
		t.Errorf("%d index files after prune, want one signed", len(files))
	}

	rep, err = Prune(ctx, open(t, dir), Options{MaxUnusedPercent: DefaultMaxUnusedPercent})
	must(t, err)
	if !rep.NothingToDo || rep.BytesFreed != 0 {
		t.Errorf("second prune: %+v, want nothing to do", rep)
	}
}

// TestRepackKeepsEveryUsedBlob: with a threshold of 0 every partly used
// pack is repacked, so afterwards the index holds exactly the used blobs,
// one copy each, and every one of them reads back.
func TestRepackKeepsEveryUsedBlob(t *testing.T) {
	f := newFixture(t, makeStates(t, 4, 80, 40<<10), nil)
	dir := f.dir
	f.forget(t, dir, 0, 2)
	want := usedBlobs(t, open(t, dir))
	rep, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: 0})
	must(t, err)
	if rep.Repack.Packs == 0 || rep.Written.Packs == 0 {
		t.Fatalf("nothing repacked: %+v", rep)
	}
	if rep.UsedBlobs != len(want) {
		t.Errorf("report: %d used blobs, the snapshots use %d", rep.UsedBlobs, len(want))
	}
	r := open(t, dir)
	got := indexCopies(t, r)
	for k := range want {
		if got[k] != 1 {
			t.Errorf("used blob %s/%d: %d copies in the index, want 1", repo.Short(k.id), k.t, got[k])
		}
		if _, err := r.LoadBlob(ctx, k.t, k.id, nil); err != nil {
			t.Errorf("used blob %s: %v", repo.Short(k.id), err)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("unused blob %s/%d still in the index", repo.Short(k.id), k.t)
		}
	}
	if w := check(t, dir); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
	f.restoreAndCompare(t, dir, 1)
	f.restoreAndCompare(t, dir, 3)
}

// TestPruneDryRun changes nothing, and plans what the real run then does.
func TestPruneDryRun(t *testing.T) {
	f := newFixture(t, makeStates(t, 4, 60, 40<<10), nil)
	dir := f.dir
	f.forget(t, dir, 0, 1)
	before := listing(t, dir)
	dry, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: 0, DryRun: true})
	must(t, err)
	if after := listing(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("dry run changed the repository")
	}
	if !dry.DryRun || dry.BytesFreed <= 0 {
		t.Errorf("dry run report: %+v", dry)
	}
	real, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: 0})
	must(t, err)
	if dry.Keep != real.Keep || dry.Repack != real.Repack || dry.Remove != real.Remove || dry.Before != real.Before ||
		dry.UsedBlobs != real.UsedBlobs || dry.Written.Packs != real.Written.Packs {
		t.Errorf("dry run planned\n%+v\nreal run did\n%+v", dry, real)
	}
	// The estimate of the repacked size is close (within a header record
	// per blob and a trailer per pack, plus compression differences: none
	// for random data).
	if d := dry.Written.Bytes - real.Written.Bytes; d < -4096 || d > 4096 {
		t.Errorf("estimated %d bytes written, wrote %d", dry.Written.Bytes, real.Written.Bytes)
	}

	// IgnoreSnapshots: a dry run as if snapshot 2 were forgotten too.
	dry, err = Prune(ctx, open(t, dir), Options{DryRun: true, IgnoreSnapshots: []repo.ID{f.snaps[2].ID}})
	must(t, err)
	if dry.Snapshots != 1 || dry.BytesFreed <= 0 {
		t.Errorf("dry run ignoring a snapshot: %d snapshots, frees %d", dry.Snapshots, dry.BytesFreed)
	}
}

// TestPruneUnreferenced: packs that no index lists (an interrupted backup)
// are removed with their parity, and parity whose pack is gone too.
func TestPruneUnreferenced(t *testing.T) {
	par := &parity.Params{DataShards: 16, ParityShards: 2}
	f := newFixture(t, makeStates(t, 2, 30, 30<<10), par)
	dir := f.dir
	// An interrupted backup: packs uploaded, no index written.
	r := open(t, dir)
	for i := 0; i < 40; i++ {
		_, _, err := r.SaveBlob(ctx, repo.DataBlob, content(uint64(5e6+i), 50<<10))
		must(t, err)
	}
	orphans, err := r.FlushPacks(ctx)
	must(t, err)
	if len(orphans) < 2 {
		t.Fatalf("%d orphan packs", len(orphans))
	}
	// A parity object whose pack never arrived.
	var ghost repo.ID
	ghost[0] = 0xee
	must(t, r.Backend().Save(ctx, backend.Handle{Type: backend.ParityFile, Name: repo.Hex(ghost)}, []byte("parity of nothing")))
	// A foreign file in data/ is left alone.
	must(t, os.WriteFile(filepath.Join(dir, "data", "README"), []byte("not a pack"), 0o600))

	rep, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: DefaultMaxUnusedPercent})
	must(t, err)
	if rep.Unreferenced.Packs != len(orphans) || rep.Remove.Packs != 0 || rep.Repack.Packs != 0 {
		t.Errorf("unreferenced %+v (want %d packs), remove %+v, repack %+v", rep.Unreferenced, len(orphans), rep.Remove, rep.Repack)
	}
	if rep.ParityRemoved != len(orphans)+1 {
		t.Errorf("%d parity objects removed, want %d", rep.ParityRemoved, len(orphans)+1)
	}
	if len(rep.ForeignFiles) != 1 || rep.ForeignFiles[0] != "data/README" {
		t.Errorf("foreign files %v", rep.ForeignFiles)
	}
	be := open(t, dir).Backend()
	for _, p := range orphans {
		for _, typ := range []backend.Type{backend.PackFile, backend.ParityFile} {
			if _, err := be.Stat(ctx, backend.Handle{Type: typ, Name: repo.Hex(p.ID)}); !errors.Is(err, backend.ErrNotExist) {
				t.Errorf("%s/%s still there: %v", typ, repo.Short(p.ID), err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "README")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
	os.Remove(filepath.Join(dir, "data", "README"))
	if w := check(t, dir); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
	f.restoreAndCompare(t, dir, 0)
	f.restoreAndCompare(t, dir, 1)
}

// TestPruneDuplicates: a blob stored in several packs is kept once.
func TestPruneDuplicates(t *testing.T) {
	f := newFixture(t, makeStates(t, 2, 40, 30<<10), nil)
	dir := f.dir
	r := open(t, dir)
	used := usedBlobs(t, r)
	n := 0
	for k := range used {
		if k.t != repo.DataBlob || n == 25 {
			continue
		}
		b, err := r.LoadBlob(ctx, k.t, k.id, nil)
		must(t, err)
		must(t, r.SaveBlobCopy(ctx, k.t, k.id, b))
		n++
	}
	must(t, r.Flush(ctx))
	if c := indexCopies(t, open(t, dir)); func() int {
		d := 0
		for _, v := range c {
			if v > 1 {
				d++
			}
		}
		return d
	}() != n {
		t.Fatalf("setup: expected %d duplicated blobs", n)
	}
	rep, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: 0})
	must(t, err)
	if rep.DuplicateBlobs != n {
		t.Errorf("report: %d duplicate blobs, want %d", rep.DuplicateBlobs, n)
	}
	for k, c := range indexCopies(t, open(t, dir)) {
		if c != 1 {
			t.Errorf("blob %s: %d copies after prune", repo.Short(k.id), c)
		}
	}
	if w := check(t, dir); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
	f.restoreAndCompare(t, dir, 1)
}

// openWriteOnly adds a write-only key to the repository at dir and opens
// the repository with it.
func openWriteOnly(t testing.TB, dir string) *repo.Repository {
	t.Helper()
	_, err := open(t, dir).AddKey(ctx, []byte("write-only password"), true, repotest.FastKDF, crypto.KeyFile{Host: "client"})
	must(t, err)
	be, err := local.Open(dir)
	must(t, err)
	wo, err := repo.Open(ctx, be, []byte("write-only password"), repo.OpenOptions{CacheDir: t.TempDir()})
	must(t, err)
	must(t, wo.LoadIndex(ctx))
	if wo.CanRead() {
		t.Fatal("the write-only key can read")
	}
	return wo
}

// TestPruneSignsWriteOnlyEntries: a backup made with a write-only key
// writes an unsigned index; prune with the full key verifies its packs and
// writes their entries into its signed index, which every client then
// trusts for deduplication.
func TestPruneSignsWriteOnlyEntries(t *testing.T) {
	states := makeStates(t, 3, 40, 30<<10)
	f := newFixture(t, states[:1], nil)
	dir := f.dir
	wo := openWriteOnly(t, dir)
	for _, st := range states[1:] {
		res, err := archiver.Backup(ctx, wo, []string{st}, archiver.Options{NoParent: true})
		must(t, err)
		f.snaps = append(f.snaps, res.Snapshot)
	}
	f.states = states
	files, err := open(t, dir).LoadIndexFiles(ctx)
	must(t, err)
	unsigned := 0
	for _, x := range files {
		if !x.File.Signed {
			unsigned++
		}
	}
	if unsigned != 2 {
		t.Fatalf("%d unsigned index files, want 2 (one per write-only backup)", unsigned)
	}
	// A fresh write-only client does not trust those entries.
	wo2 := openWriteOnlyAgain(t, dir)
	snapTree := f.snaps[2].Tree
	if wo2.Index().Has(repo.TreeBlob, snapTree) {
		t.Fatal("an unsigned entry is trusted by another client")
	}

	rep, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: DefaultMaxUnusedPercent})
	must(t, err)
	if rep.Verified.Packs == 0 || rep.VerifiedBlobs == 0 {
		t.Errorf("nothing verified: %+v", rep)
	}
	files, err = open(t, dir).LoadIndexFiles(ctx)
	must(t, err)
	if len(files) != 1 || !files[0].File.Signed {
		t.Fatalf("after prune: %d index files (signed: %v), want one signed", len(files), len(files) == 1 && files[0].File.Signed)
	}
	if !openWriteOnlyAgain(t, dir).Index().Has(repo.TreeBlob, snapTree) {
		t.Error("after prune the write-only backup's blobs are still untrusted")
	}
	check(t, dir)
	for k := range states {
		f.restoreAndCompare(t, dir, k)
	}
}

func openWriteOnlyAgain(t testing.TB, dir string) *repo.Repository {
	t.Helper()
	be, err := local.Open(dir)
	must(t, err)
	wo, err := repo.Open(ctx, be, []byte("write-only password"), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	must(t, wo.LoadIndex(ctx))
	return wo
}

// TestPruneForgedWriteOnlyEntry: a write-only key lists in its index a blob
// that is not where it claims (garbage). Prune refuses to sign that entry:
// it stops before deleting anything. With a threshold of 0 the pack is
// repacked instead, the forged entry is dropped (it was never read) and
// prune succeeds.
func TestPruneForgedWriteOnlyEntry(t *testing.T) {
	states := makeStates(t, 2, 30, 30<<10)
	f := newFixture(t, states[:1], nil)
	dir := f.dir
	wo := openWriteOnly(t, dir)
	res, err := archiver.Backup(ctx, wo, []string{states[1]}, archiver.Options{NoParent: true})
	must(t, err)
	f.snaps, f.states = append(f.snaps, res.Snapshot), states
	// Forge: rewrite the write-only index with one more entry in its
	// largest data pack, pointing past the last blob (into the header).
	files, err := wo.LoadIndexFiles(ctx)
	must(t, err)
	var orig repo.IndexFile
	for _, x := range files {
		if !x.File.Signed {
			orig = x
		}
	}
	forged := &index.File{Packs: orig.File.Packs}
	best := -1
	for i, p := range forged.Packs {
		if p.Blobs[0].Type == repo.DataBlob && (best < 0 || len(p.Blobs) > len(forged.Packs[best].Blobs)) {
			best = i
		}
	}
	p := &forged.Packs[best]
	last := p.Blobs[len(p.Blobs)-1]
	var fake repo.ID
	fake[0], fake[1] = 0xfa, 0x4e
	p.Blobs = append(append([]index.Blob(nil), p.Blobs...),
		index.Blob{Type: repo.DataBlob, ID: fake, Offset: last.Offset + last.Length, Length: 40, RawLength: 24})
	_, err = wo.SaveIndex(ctx, forged)
	must(t, err)
	must(t, wo.Backend().Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: repo.Hex(orig.Name)}))
	f.forget(t, dir, 0) // give prune something to delete

	before := listing(t, dir)
	_, err = Prune(ctx, open(t, dir), Options{MaxUnusedPercent: DefaultMaxUnusedPercent})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), repo.Hex(p.ID)) || !strings.Contains(err.Error(), "write-only") {
		t.Fatalf("prune with a forged entry: %v; want ErrDamaged naming pack %s", err, repo.Short(p.ID))
	}
	t.Logf("refused: %v", err)
	if after := listing(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatal("prune changed the repository before refusing")
	}

	rep, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: 0})
	must(t, err)
	if rep.Repack.Packs == 0 {
		t.Errorf("pack with the forged entry not repacked: %+v", rep)
	}
	if indexCopies(t, open(t, dir))[blobKey{fake, repo.DataBlob}] != 0 {
		t.Error("the forged entry reached the signed index")
	}
	check(t, dir)
	f.restoreAndCompare(t, dir, 1)
}

// TestPruneRefuses: a shared lock held by a backup, or a write-only key.
func TestPruneRefuses(t *testing.T) {
	f := newFixture(t, makeStates(t, 1, 5, 10<<10), nil)
	backup := open(t, f.dir)
	l, err := backup.Lock(ctx, false, 0)
	must(t, err)
	_, err = Prune(ctx, open(t, f.dir), Options{})
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("prune under a shared lock: %v", err)
	}
	must(t, l.Unlock())
	if _, err := Prune(ctx, open(t, f.dir), Options{}); err != nil {
		t.Errorf("prune after unlock: %v", err)
	}
	wo := openWriteOnly(t, f.dir)
	if _, err := Prune(ctx, wo, Options{}); !errors.Is(err, crypto.ErrWriteOnly) {
		t.Errorf("prune with a write-only key: %v", err)
	}
	if _, err := Prune(ctx, open(t, f.dir), Options{MaxUnusedPercent: 101}); err == nil {
		t.Error("101 percent accepted")
	}
}

// firstChunk returns the first chunk of the first file below tree id.
func firstChunk(t testing.TB, r *repo.Repository, id repo.ID) repo.ID {
	t.Helper()
	tr, err := r.LoadTree(ctx, id)
	must(t, err)
	for _, n := range tr.Nodes {
		if n.Type == tree.TypeFile && len(n.Content) > 0 {
			return repo.ID(n.Content[0].ID)
		}
	}
	for _, n := range tr.Nodes {
		if n.Subtree != nil {
			return firstChunk(t, r, repo.ID(*n.Subtree))
		}
	}
	t.Fatal("no file with content")
	return repo.ID{}
}

func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	must(t, os.Chmod(path, 0o600))
	b, err := os.ReadFile(path)
	must(t, err)
	b[off] ^= 0x40
	must(t, os.WriteFile(path, b, 0o600))
}

func objectPath(dir string, typ backend.Type, name string) string {
	if typ.Sharded() {
		return filepath.Join(dir, string(typ), name[:2], name)
	}
	return filepath.Join(dir, string(typ), name)
}

// TestPruneStopsOnDamage: an unreadable snapshot, tree or index file, or a
// used blob whose pack is gone, stops prune before it deletes anything, with
// an error that names the damaged object.
func TestPruneStopsOnDamage(t *testing.T) {
	f := newFixture(t, makeStates(t, 3, 40, 30<<10), nil)
	r := open(t, f.dir)
	treeLoc, ok := r.Index().Lookup(repo.TreeBlob, f.snaps[2].Tree)
	if !ok {
		t.Fatal("root tree not in the index")
	}
	chunk := firstChunk(t, r, f.snaps[2].Tree)
	dataLoc, ok := r.Index().Lookup(repo.DataBlob, chunk)
	if !ok {
		t.Fatal("chunk not in the index")
	}
	idxFiles := r.Index().Files()
	cases := []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"snapshot", func(dir string) {
			flipByte(t, objectPath(dir, backend.SnapshotFile, repo.Hex(f.snaps[1].ID)), 40)
		}, "snapshot " + repo.Hex(f.snaps[1].ID)},
		{"tree", func(dir string) {
			flipByte(t, objectPath(dir, backend.PackFile, repo.Hex(treeLoc.Pack)), int64(treeLoc.Offset)+3)
		}, "tree " + repo.Hex(f.snaps[2].Tree)},
		{"index", func(dir string) {
			flipByte(t, objectPath(dir, backend.IndexFile, repo.Hex(idxFiles[0])), 20)
		}, "index/" + repo.Hex(idxFiles[0])},
		{"missing pack", func(dir string) {
			must(t, os.Remove(objectPath(dir, backend.PackFile, repo.Hex(dataLoc.Pack))))
		}, "chunk " + repo.Hex(chunk)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := f.copyRepo(t)
			f.forget(t, dir, 0)
			c.damage(dir)
			before := listing(t, dir)
			_, err := Prune(ctx, openBare(t, dir), Options{MaxUnusedPercent: 0})
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "repo repair") {
				t.Fatalf("error %v; want ErrDamaged naming %q and suggesting repair", err, c.want)
			}
			if after := listing(t, dir); !reflect.DeepEqual(before, after) {
				t.Error("prune changed the repository before stopping")
			}
		})
	}
}

// crashBackend fails every write and removal after the first n (locks
// aside), as if the process died there: everything after a crash point is
// simply not done.
type crashBackend struct {
	backend.Backend
	left atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (b *crashBackend) op(h backend.Handle) error {
	if h.Type == backend.LockFile {
		return nil
	}
	if b.left.Add(-1) < 0 {
		return errCrash
	}
	return nil
}

func (b *crashBackend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := b.op(h); err != nil {
		return err
	}
	return b.Backend.Save(ctx, h, data)
}

func (b *crashBackend) Replace(ctx context.Context, h backend.Handle, data []byte) error {
	if err := b.op(h); err != nil {
		return err
	}
	return b.Backend.Replace(ctx, h, data)
}

func (b *crashBackend) Remove(ctx context.Context, h backend.Handle) error {
	if err := b.op(h); err != nil {
		return err
	}
	return b.Backend.Remove(ctx, h)
}

func openCrashing(t testing.TB, dir string, ops int64) (*repo.Repository, *crashBackend) {
	t.Helper()
	be, err := local.Open(dir)
	must(t, err)
	cb := &crashBackend{Backend: be}
	cb.left.Store(ops)
	r, err := repo.Open(ctx, cb, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	return r, cb
}

// TestPruneCrashAtEveryStep stops prune after each of its writes and
// removals in turn. After every stop the repository passes check
// --read-data, the remaining snapshots restore byte for byte, and the next
// prune finishes the job (no unreferenced leftovers).
func TestPruneCrashAtEveryStep(t *testing.T) {
	f := newFixture(t, makeStates(t, 4, 48, 40<<10), &parity.Params{DataShards: 8, ParityShards: 2})
	f.forget(t, f.dir, 0, 2)
	// Count the steps of an uninterrupted prune.
	dir := f.copyRepo(t)
	r, cb := openCrashing(t, dir, 1<<40)
	rep, err := Prune(ctx, r, Options{MaxUnusedPercent: 0})
	must(t, err)
	steps := int(1<<40 - cb.left.Load())
	t.Logf("prune: %d writes and removals (repack %d packs, remove %d, write %d, %d index files, %d parity)",
		steps, rep.Repack.Packs, rep.Remove.Packs, rep.Written.Packs, rep.IndexFilesRemoved, rep.ParityRemoved)
	if rep.Repack.Packs == 0 || rep.Remove.Packs == 0 || steps < 10 {
		t.Fatalf("the fixture does not exercise prune: %+v", rep)
	}
	stride := 1
	if testing.Short() {
		stride = 4
	}
	for n := 0; n < steps; n += stride {
		t.Run(fmt.Sprintf("after%d", n), func(t *testing.T) {
			t.Parallel()
			dir := f.copyRepo(t)
			r, _ := openCrashing(t, dir, int64(n))
			if _, err := Prune(ctx, r, Options{MaxUnusedPercent: 0}); !errors.Is(err, errCrash) {
				t.Fatalf("prune stopped after %d steps: %v, want the simulated crash", n, err)
			}
			check(t, dir)
			f.restoreAndCompare(t, dir, 1)
			f.restoreAndCompare(t, dir, 3)
			if _, err := Prune(ctx, open(t, dir), Options{MaxUnusedPercent: 0}); err != nil {
				t.Fatalf("prune after the crash: %v", err)
			}
			if w := check(t, dir); len(w) > 0 {
				t.Errorf("leftovers after the second prune: %v", w)
			}
		})
	}
}

// TestPruneTwiceWithOneHandle: a second prune through the same Repository
// repacks blobs the first one already repacked (SaveBlobCopy forgets what it
// copied at each FlushPacks), and loses nothing.
func TestPruneTwiceWithOneHandle(t *testing.T) {
	f := newFixture(t, makeStates(t, 4, 48, 40<<10), nil)
	dir := f.dir
	f.forget(t, dir, 0)
	r := openBare(t, dir)
	if _, err := Prune(ctx, r, Options{MaxUnusedPercent: 0}); err != nil {
		t.Fatal(err)
	}
	f.forget(t, dir, 1, 2)
	_, err := Prune(ctx, r, Options{MaxUnusedPercent: 0})
	if err != nil {
		t.Fatalf("second prune with the same handle: %v", err)
	}
	check(t, dir)
	f.restoreAndCompare(t, dir, 3)
	if _, err := Prune(ctx, openBare(t, dir), Options{MaxUnusedPercent: 0}); err != nil {
		t.Fatalf("prune with a fresh handle: %v", err)
	}
	if w := check(t, dir); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
	f.restoreAndCompare(t, dir, 3)
}

// TestPruneNoSnapshots: with every snapshot forgotten, prune removes every
// pack and leaves an empty, valid index.
func TestPruneNoSnapshots(t *testing.T) {
	f := newFixture(t, makeStates(t, 2, 20, 20<<10), &parity.Params{DataShards: 4, ParityShards: 1})
	f.forget(t, f.dir, 0, 1)
	rep, err := Prune(ctx, openBare(t, f.dir), Options{MaxUnusedPercent: DefaultMaxUnusedPercent})
	must(t, err)
	if n, _ := packBytes(t, f.dir); n != 0 || rep.After.Packs != 0 || rep.Remove.Packs != rep.Before.Packs || rep.NewIndex == "" {
		t.Errorf("%d packs left; report %+v", n, rep)
	}
	entries, err := os.ReadDir(filepath.Join(f.dir, "parity"))
	must(t, err)
	for _, e := range entries {
		sub, _ := os.ReadDir(filepath.Join(f.dir, "parity", e.Name()))
		if len(sub) > 0 {
			t.Errorf("parity left in parity/%s: %d objects", e.Name(), len(sub))
		}
	}
	if w := check(t, f.dir); len(w) > 0 {
		t.Errorf("warnings: %v", w)
	}
	rep, err = Prune(ctx, openBare(t, f.dir), Options{})
	must(t, err)
	if !rep.NothingToDo {
		t.Errorf("second prune: %+v", rep)
	}
}
