package repair_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/repair"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// parity128 is the default scheme of the issue.
var parity128 = &parity.Params{DataShards: 128, ParityShards: 2}

// fixture is a repository with two snapshots of one generated tree: the
// first of it as generated, the second after changing a few files, so the
// second shares chunks and unchanged directories' trees with the first.
type fixture struct {
	dir      string    // this test's copy of the repository
	pristine string    // the shared original: read it, never change it
	path     string    // the directory backed up
	expect   [2]string // its content at each snapshot
	snaps    [2]*repo.Snapshot
}

// write creates a file with the given content.
func write(t testing.TB, p string, data []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o644))
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// genTree writes about 7 MiB of incompressible files: three large ones of
// several chunks, and 40 small ones in four directories, a symlink, an
// empty file and an empty directory; then sets every mtime.
func genTree(t testing.TB, dir string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	write(t, filepath.Join(dir, "big", "a.bin"), randBytes(rng, 3<<20+1234))
	write(t, filepath.Join(dir, "big", "b.bin"), randBytes(rng, 2<<20+777))
	write(t, filepath.Join(dir, "big", "c.bin"), randBytes(rng, 1<<20+55))
	for i := range 40 {
		write(t, filepath.Join(dir, "small", fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%02d.txt", i)), randBytes(rng, 1000+rng.IntN(20000)))
	}
	write(t, filepath.Join(dir, "empty"), nil)
	must(t, os.MkdirAll(filepath.Join(dir, "empty-dir"), 0o755))
	must(t, os.Symlink("big/a.bin", filepath.Join(dir, "link")))
	var paths []string
	must(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			paths = append(paths, p)
		}
		return err
	}))
	mt := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	for i := len(paths) - 1; i >= 0; i-- {
		must(t, os.Chtimes(paths[i], mt, mt))
		mt = mt.Add(time.Second)
	}
}

// fixtures are built once per package run (with and without parity) in
// directories TestMain removes; each test works on its own copy of the
// repository and only reads the source directories.
var fixtures = map[bool]*sharedFixture{false: {}, true: {}}

type sharedFixture struct {
	once sync.Once
	f    *fixture
	base string
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range fixtures {
		if s.base != "" {
			os.RemoveAll(s.base)
		}
	}
	os.Exit(code)
}

// newFixture returns a fresh copy of the repository with two snapshots of
// a generated tree; pristine is the shared original, never to be changed.
func newFixture(t testing.TB, par *parity.Params) *fixture {
	t.Helper()
	s := fixtures[par != nil]
	s.once.Do(func() {
		base, err := os.MkdirTemp("", "repair-fixture")
		must(t, err)
		s.base = base
		s.f = buildFixture(t, base, par)
	})
	if s.f == nil {
		t.Fatal("the fixture could not be built (see the first test that failed)")
	}
	f := *s.f
	f.dir = copyRepo(t, s.f.pristine)
	return &f
}

// buildFixture backs up a generated tree twice into a new repository.
func buildFixture(t testing.TB, base string, par *parity.Params) *fixture {
	ctx := context.Background()
	f := &fixture{path: filepath.Join(base, "src"), pristine: filepath.Join(base, "repo")}
	genTree(t, f.path, 1)
	be, err := local.Create(f.pristine)
	must(t, err)
	r, err := repo.Init(ctx, be, []byte(repotest.Password), repo.InitOptions{KDF: repotest.FastKDF,
		Parity: par, PackSize: 1 << 20, CacheDir: "-"})
	must(t, err)
	defer r.Close()
	backup := func(i int) {
		res, err := archiver.Backup(ctx, r, []string{f.path}, archiver.Options{NoParent: true, Host: "test",
			Time: snapTime(i), Warn: func(p string, err error) { t.Errorf("backup warning %s: %v", p, err) }})
		must(t, err)
		f.snaps[i] = res.Snapshot
	}
	backup(0)
	f.expect[0] = filepath.Join(base, "expect0")
	out, err := exec.Command("cp", "-a", f.path, f.expect[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	write(t, filepath.Join(f.path, "small", "d1", "f01.txt"), randBytes(rng, 5000))
	write(t, filepath.Join(f.path, "small", "d4", "new.txt"), randBytes(rng, 3000))
	write(t, filepath.Join(f.path, "big", "d.bin"), randBytes(rng, 1<<20+99))
	must(t, os.Remove(filepath.Join(f.path, "small", "d2", "f02.txt")))
	mt := time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC)
	for _, p := range []string{"small/d1/f01.txt", "small/d4/new.txt", "big/d.bin", "small/d1", "small/d2", "small/d4", "small", "big", "."} {
		must(t, os.Chtimes(filepath.Join(f.path, p), mt, mt))
	}
	backup(1)
	f.expect[1] = f.path
	return f
}

// copyRepo copies a repository directory.
func copyRepo(t testing.TB, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

func snapTime(i int) time.Time { return time.Date(2025, 1, 1+i, 0, 0, 0, 0, time.UTC) }

// open opens the repository without loading its index, as the CLI does.
func open(t testing.TB, dir string) *repo.Repository {
	t.Helper()
	be, err := local.Open(dir)
	must(t, err)
	r, err := repo.Open(context.Background(), be, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	return r
}

// runRepair repairs the repository at dir.
func runRepair(t testing.TB, dir string, o repair.Options) *repair.Report {
	t.Helper()
	r := open(t, dir)
	defer r.Close()
	rep, err := repair.Repair(context.Background(), r, o)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	return rep
}

// restoreAll restores every snapshot of the repository and compares each
// with what it must equal (want, by snapshot time): the source as backed
// up, or a copy without the lost files.
func restoreAll(t testing.TB, dir string, want map[time.Time]string) {
	t.Helper()
	ctx := context.Background()
	r := repotest.Open(t, dir, repotest.Password)
	defer r.Close()
	snaps, bad, err := r.Snapshots(ctx)
	must(t, err)
	if len(bad) > 0 {
		t.Fatalf("unreadable snapshots: %v", bad)
	}
	if len(snaps) != len(want) {
		t.Fatalf("%d snapshots, want %d", len(snaps), len(want))
	}
	for _, s := range snaps {
		exp, ok := want[s.Time]
		if !ok {
			t.Fatalf("snapshot %s of %v: unexpected", repo.Short(s.ID), s.Time)
		}
		dst := t.TempDir()
		st, err := restorer.Restore(ctx, r, s, dst, restorer.Options{Verify: true,
			Warn: func(p string, err error) { t.Errorf("restore warning %s: %v", p, err) }})
		if err != nil {
			t.Fatalf("restore %s: %v", repo.Short(s.ID), err)
		}
		if st.Verified != st.Files {
			t.Errorf("restore %s: verified %d of %d files", repo.Short(s.ID), st.Verified, st.Files)
		}
		repotest.CompareDirs(t, exp, filepath.Join(dst, s.Paths[0]), repotest.CompareOptions{IgnoreOwner: os.Geteuid() != 0})
	}
}

// identity is what the intact snapshots restore to.
func (f *fixture) identity() map[time.Time]string {
	return map[time.Time]string{snapTime(0): f.expect[0], snapTime(1): f.expect[1]}
}

// without copies src (the content of the backed-up directory base) and
// removes the lost paths (absolute snapshot paths below base) from the
// copy, emptying lost directories ("/x/d/") and keeping every directory's
// mtime, so that it equals a restore of the salvaged snapshot.
func without(t testing.TB, src, base string, lost []string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "expect")
	out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	for _, p := range lost {
		rel, err := filepath.Rel(base, strings.TrimSuffix(p, "/"))
		must(t, err)
		target := filepath.Join(dst, rel)
		if strings.HasSuffix(p, "/") {
			ents, err := os.ReadDir(target)
			must(t, err)
			for _, e := range ents {
				must(t, os.RemoveAll(filepath.Join(target, e.Name())))
			}
		} else {
			must(t, os.Remove(target))
		}
	}
	must(t, filepath.Walk(dst, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		orig, err := os.Stat(filepath.Join(src, rel))
		must(t, err)
		return os.Chtimes(p, orig.ModTime(), orig.ModTime())
	}))
	return dst
}

// dirState reads every file of a repository directory but locks.
func dirState(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	must(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "locks/") {
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	}))
	return out
}

// sameState reports the differences between two directory states.
func sameState(t testing.TB, want, got map[string][]byte) {
	t.Helper()
	var diffs []string
	for p, b := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, "removed "+p)
		case !bytes.Equal(b, g):
			diffs = append(diffs, "changed "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "added "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("repository differs: %s", strings.Join(diffs, ", "))
	}
}

// packFile is the path of pack id in a local repository.
func packFile(dir string, id repo.ID) string {
	h := repo.Hex(id)
	return filepath.Join(dir, "data", h[:2], h)
}

func parityFile(dir string, id repo.ID) string {
	h := repo.Hex(id)
	return filepath.Join(dir, "parity", h[:2], h)
}

// packInfo describes the packs of a repository from its index.
type packInfo struct {
	id    repo.ID
	typ   uint8
	size  int64
	blobs []index.Location
	ids   []repo.ID
}

func packs(t testing.TB, dir string) []packInfo {
	t.Helper()
	r := repotest.Open(t, dir, repotest.Password)
	defer r.Close()
	m := map[repo.ID]*packInfo{}
	r.Index().Each(func(id repo.ID, loc index.Location) {
		p := m[loc.Pack]
		if p == nil {
			p = &packInfo{id: loc.Pack, typ: loc.Type}
			m[loc.Pack] = p
		}
		p.blobs = append(p.blobs, loc)
		p.ids = append(p.ids, id)
	})
	var out []packInfo
	for _, p := range m {
		fi, err := os.Stat(packFile(dir, p.id))
		must(t, err)
		p.size = fi.Size()
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return repo.Hex(out[i].id) < repo.Hex(out[j].id) })
	return out
}

func ofType(ps []packInfo, typ uint8) []packInfo {
	var out []packInfo
	for _, p := range ps {
		if p.typ == typ {
			out = append(out, p)
		}
	}
	return out
}

// flipBit flips one bit of a file in place.
func flipBit(t testing.TB, path string, off int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	must(t, err)
	b[0] ^= 1 << bit
	_, err = f.WriteAt(b, off)
	must(t, err)
}

// filesByChunk maps every chunk and tree of a snapshot to the paths that
// use it: files for chunks, directories ("/x/d/") for trees.
func filesByChunk(t testing.TB, r *repo.Repository, s *repo.Snapshot) (chunks, trees map[repo.ID][]string) {
	t.Helper()
	chunks, trees = map[repo.ID][]string{}, map[repo.ID][]string{}
	var walk func(id repo.ID, dir string)
	walk = func(id repo.ID, dir string) {
		trees[id] = append(trees[id], dir)
		tr, err := r.LoadTree(context.Background(), id)
		must(t, err)
		for _, n := range tr.Nodes {
			p := dir + n.Name
			for _, c := range n.Content {
				if !c.IsHole() {
					chunks[repo.ID(c.ID)] = append(chunks[repo.ID(c.ID)], p)
				}
			}
			if n.Type == tree.TypeDir {
				walk(repo.ID(*n.Subtree), p+"/")
			}
		}
	}
	walk(s.Tree, "/")
	return chunks, trees
}

// expectLost lists the files of snapshot s that use one of the chunks.
func expectLost(t testing.TB, dir string, s *repo.Snapshot, lostChunks []repo.ID) []string {
	r := repotest.Open(t, dir, repotest.Password)
	defer r.Close()
	byChunk, _ := filesByChunk(t, r, s)
	set := map[string]bool{}
	for _, c := range lostChunks {
		for _, p := range byChunk[c] {
			set[p] = true
		}
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// salvagedFor finds the report entry for the original snapshot s.
func salvagedFor(rep *repair.Report, s *repo.Snapshot) *repair.Salvaged {
	for i := range rep.Snapshots.Salvaged {
		if rep.Snapshots.Salvaged[i].Original == repo.Hex(s.ID) {
			return &rep.Snapshots.Salvaged[i]
		}
	}
	return nil
}

// appendOnly refuses Replace, like an append-only backend.
type appendOnly struct{ backend.Backend }

func (a appendOnly) Replace(_ context.Context, h backend.Handle, _ []byte) error {
	return fmt.Errorf("replace %s: %w", h, backend.ErrForbidden)
}

func sha(b []byte) repo.ID { return sha256.Sum256(b) }
