package checker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

var modes = []struct {
	name     string
	readData bool
}{{"structure", false}, {"read-data", true}}

func TestCleanRepository(t *testing.T) {
	for _, kind := range []string{"plain", "parity"} {
		l := readLayout(t, base(t, kind))
		if len(l.dataPacks) < 3 || len(l.treePacks) < 1 || len(l.snapshots) != 2 || len(l.indexes) != 2 {
			t.Fatalf("%s base repository too small to test: %d data packs, %d tree packs, %d snapshots, %d index files",
				kind, len(l.dataPacks), len(l.treePacks), len(l.snapshots), len(l.indexes))
		}
		var total int64
		for _, s := range l.packSizes {
			total += s
		}
		for _, m := range modes {
			t.Run(kind+"/"+m.name, func(t *testing.T) {
				r := openRepo(t, l.dir, repotest.Password)
				rep := check(t, r, Options{ReadData: m.readData})
				if !rep.OK || len(rep.Warnings) > 0 || len(rep.Skipped) > 0 {
					t.Fatalf("clean repository:\n%s", dump(rep))
				}
				s := rep.Stats
				packs := len(l.dataPacks) + len(l.treePacks)
				if s.Packs != packs || s.PacksIndexed != packs || s.Snapshots != 2 || s.IndexFiles != 2 || s.UnsignedIndexFiles != 0 || s.Keys != 1 {
					t.Errorf("stats %+v; want %d packs, 2 snapshots, 2 index files, 1 key", s, packs)
				}
				if s.Trees < 20 || s.Blobs != l.idx.Len() {
					t.Errorf("stats %+v; want at least 20 trees and %d blobs", s, l.idx.Len())
				}
				if m.readData && (s.PacksRead != packs || s.BytesRead != total || s.BlobsRead < s.Blobs) {
					t.Errorf("stats %+v; want %d packs and %d bytes read, at least %d blobs", s, packs, total, s.Blobs)
				}
				if !m.readData && (s.PacksRead != 0 || s.BytesRead != 0) {
					t.Errorf("stats %+v: read data without ReadData", s)
				}
			})
		}
	}
}

// TestBitFlips flips one bit at a time at random positions of every kind
// of object and requires `check --read-data` to report the object each
// time. Index files and snapshots must be caught without --read-data too.
// Each flip is undone before the next, so every check sees a repository
// with exactly one damaged bit; the copy is compared with the base at the
// end.
func TestBitFlips(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		flips int
	}{{"plain", 200}, {"parity", 60}} {
		if testing.Short() {
			tc.flips /= 5
		}
		t.Run(tc.kind, func(t *testing.T) {
			src := base(t, tc.kind)
			dir := copyRepo(t, src)
			l := readLayout(t, dir)
			r := openRepo(t, dir, repotest.Password)
			type target struct {
				what  string
				typ   backend.Type
				names []string
			}
			targets := []target{
				{"data pack", backend.PackFile, l.dataPacks},
				{"tree pack", backend.PackFile, l.treePacks},
				{"index", backend.IndexFile, l.indexes},
				{"snapshot", backend.SnapshotFile, l.snapshots},
			}
			if tc.kind == "parity" {
				targets = append(targets[:2], target{"parity", backend.ParityFile, l.parity})
			}
			rnd := mrand.New(mrand.NewPCG(42, uint64(len(tc.kind))))
			counts := map[string]int{}
			for i := range tc.flips {
				tg := targets[i%len(targets)]
				name := tg.names[rnd.IntN(len(tg.names))]
				p := l.path(tg.typ, name)
				size := fileSize(t, p)
				var bit int64
				switch i / len(targets) % 4 {
				case 0: // the last 64 bytes: trailer, end of header, checksums
					bit = (size-min(size, 64))*8 + rnd.Int64N(min(size, 64)*8)
				case 1: // the first 64 bytes
					bit = rnd.Int64N(min(size, 64) * 8)
				default:
					bit = rnd.Int64N(size * 8)
				}
				obj := backend.Handle{Type: tg.typ, Name: name}.String()
				flipBit(t, p, bit)
				rep := check(t, r, Options{ReadData: true})
				if !hasProblem(rep.Errors, match{obj, ""}) {
					t.Errorf("flip %d: bit %d (byte %d of %d) of %s %s: check --read-data does not name it:\n%s",
						i, bit, bit/8, size, tg.what, obj, dump(rep))
				}
				if tc.kind == "parity" && tg.typ == backend.PackFile && !hasProblem(rep.Errors, match{obj, "repairable with `bulwark repo repair`"}) {
					t.Errorf("flip %d: %s: damage not described as repairable:\n%s", i, obj, dump(rep))
				}
				if tg.typ == backend.IndexFile || tg.typ == backend.SnapshotFile {
					if rep := check(t, r, Options{}); !hasProblem(rep.Errors, match{obj, ""}) {
						t.Errorf("flip %d: bit %d of %s: the structural check does not name it:\n%s", i, bit, obj, dump(rep))
					}
				}
				flipBit(t, p, bit)
				counts[tg.what]++
			}
			t.Logf("%d flips: %v", tc.flips, counts)
			if rep := check(t, r, Options{ReadData: true}); !rep.OK {
				t.Fatalf("after undoing the flips:\n%s", dump(rep))
			}
			if digest(t, dir, false) != digest(t, src, false) {
				t.Fatal("the copy differs from the base after undoing every flip")
			}
		})
	}
}

// damage is one way to damage a repository and what check must report.
type damage struct {
	name string
	kind string // base repository: "plain" (default) or "parity"
	// apply damages the copy in l.dir (r is open on it) and returns the
	// expected errors and warnings; none expected means a clean check.
	apply func(t *testing.T, l *layout, r *repo.Repository) (errs, warns []match)
	// only restricts the modes ("structure" or "read-data"); empty = both.
	only string
}

func TestDamage(t *testing.T) {
	ctx := context.Background()
	cases := []damage{
		{name: "truncated pack", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			p := l.path(backend.PackFile, l.dataPacks[0])
			must(t, os.Truncate(p, fileSize(t, p)-100))
			return []match{{"data/" + l.dataPacks[0], ""}, {"snapshots/*", "is unreadable"}}, nil
		}},
		{name: "pack truncated by one byte", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			p := l.path(backend.PackFile, l.treePacks[0])
			must(t, os.Truncate(p, fileSize(t, p)-1))
			return []match{{"data/" + l.treePacks[0], ""}}, nil
		}},
		{name: "truncated index", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			p := l.path(backend.IndexFile, l.indexes[0])
			must(t, os.Truncate(p, fileSize(t, p)/2))
			return []match{{"index/" + l.indexes[0], "content does not match its name"}}, []match{{"data/*", "not referenced by any index"}}
		}},
		{name: "truncated snapshot", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			must(t, os.Truncate(l.path(backend.SnapshotFile, l.snapshots[1]), 40))
			return []match{{"snapshots/" + l.snapshots[1], "content does not match its name"}}, nil
		}},
		{name: "deleted pack", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			must(t, os.Remove(l.path(backend.PackFile, l.dataPacks[0])))
			return []match{{"data/" + l.dataPacks[0], "missing"}, {"snapshots/*", "chunks unavailable (first: chunk"},
				{"snapshots/*", "its pack data/" + l.dataPacks[0] + " is missing"}}, nil
		}},
		{name: "deleted index files", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			for _, n := range l.indexes {
				must(t, os.Remove(l.path(backend.IndexFile, n)))
			}
			return []match{{"snapshots/" + l.snapshots[0], "not in the index"}, {"snapshots/" + l.snapshots[1], "not in the index"}},
				[]match{{"data/" + l.dataPacks[0], "not referenced by any index (perhaps listed by an index file that is lost or damaged: `bulwark repo repair` rebuilds the index from the packs)"}}
		}},
		{name: "deleted index of the first backup", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			first := indexOf(t, l, r, snapshotTree(t, r, l.snapshots[0]))
			must(t, os.Remove(l.path(backend.IndexFile, first)))
			return []match{{"snapshots/" + l.snapshots[0], "not in the index"}}, []match{{"data/*", "not referenced by any index"}}
		}},
		{name: "deleted tree pack", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			loc, ok := l.idx.Lookup(index.TreeBlob, snapshotTree(t, r, l.snapshots[0]))
			if !ok {
				t.Fatal("root tree not indexed")
			}
			pk := repo.Hex(loc.Pack)
			must(t, os.Remove(l.path(backend.PackFile, pk)))
			return []match{{"data/" + pk, "missing"}, {"snapshots/" + l.snapshots[0], `"/": tree ` + repo.Short(snapshotTree(t, r, l.snapshots[0])) + ": its pack data/" + pk + " is missing"}}, nil
		}},
		{name: "foreign files", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			id := strings.Repeat("ab", 32)
			write(t, filepath.Join(l.dir, "data", "junk"), "x")
			write(t, filepath.Join(l.dir, "data", "ab", "notanid"), "x")
			write(t, filepath.Join(l.dir, "data", "00", id), "x")
			write(t, filepath.Join(l.dir, "index", "foo.txt"), "x")
			write(t, filepath.Join(l.dir, "index", strings.ToUpper(id)), "x")
			write(t, filepath.Join(l.dir, "snapshots", "README"), "x")
			write(t, filepath.Join(l.dir, "keys", "key.bak"), "x")
			must(t, os.MkdirAll(filepath.Join(l.dir, "data", "zz", "deeper"), 0o700))
			t.Cleanup(func() {
				for _, p := range []string{"data/junk", "data/ab/notanid", "data/00/" + id, "index/foo.txt", "snapshots/README", "keys/key.bak"} {
					if _, err := os.Stat(filepath.Join(l.dir, p)); err != nil {
						t.Errorf("foreign file %s: %v (check must not remove it)", p, err)
					}
				}
			})
			return []match{{"data/junk", "foreign file"}, {"data/ab/notanid", "foreign file"},
				{"data/00/" + id, "misplaced object: in shard directory 00/, belongs in ab/"},
				{"index/foo.txt", "foreign file"}, {"index/" + strings.ToUpper(id), "foreign file"},
				{"snapshots/README", "foreign file"}, {"keys/key.bak", "foreign file"}, {"data/zz/", "foreign directory"}}, nil
		}},
		{name: "stale temporary files", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			shard := l.dataPacks[0][:2]
			p1 := filepath.Join(l.dir, "data", shard, ".tmp-123")
			p2 := filepath.Join(l.dir, "index", ".tmp-456")
			write(t, p1, "partial pack")
			write(t, p2, "partial index")
			old(t, p1)
			old(t, p2)
			write(t, filepath.Join(l.dir, "snapshots", ".tmp-789"), "a write in flight")
			return nil, []match{{"data/" + shard + "/.tmp-123", "temporary file of a write interrupted"}, {"index/.tmp-456", "safe to delete"}}
		}},
		{name: "unreferenced pack", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			buf := make([]byte, 100<<10)
			rand.Read(buf)
			if _, _, err := r.SaveBlob(ctx, repo.DataBlob, buf); err != nil {
				t.Fatal(err)
			}
			written, err := r.FlushPacks(ctx) // no index file: as if the backup was killed
			if err != nil || len(written) != 1 {
				t.Fatalf("FlushPacks: %v, %d packs", err, len(written))
			}
			return nil, []match{{"data/" + repo.Hex(written[0].ID), "not referenced by any index (left by an interrupted backup or prune; `bulwark repo prune` removes it)"}}
		}},
		{name: "stale and unreadable locks", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			r.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			lk, err := r.Lock(ctx, true, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lk.Unlock() })
			r.Now = time.Now
			garbage := []byte("not a lock")
			name := repo.Hex(sha256.Sum256(garbage))
			write(t, filepath.Join(l.dir, "locks", name), string(garbage))
			return nil, []match{{"locks/*", "stale exclusive lock of PID"}, {"locks/" + name, "unreadable lock"}}
		}},
		{name: "live lock", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			lk, err := r.Lock(ctx, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lk.Unlock() })
			return nil, nil
		}},
		{name: "index disagrees with pack header", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			f := l.files[0].File
			lie := &index.File{Supersedes: []repo.ID{l.files[0].Name}}
			for _, p := range f.Packs {
				p.Blobs = append([]index.Blob(nil), p.Blobs...)
				lie.Packs = append(lie.Packs, p)
			}
			lie.Packs[0].Blobs[0].RawLength++
			id, err := r.SaveIndex(ctx, lie)
			if err != nil {
				t.Fatal(err)
			}
			return []match{{"index/" + repo.Hex(id), "pack data/" + repo.Hex(lie.Packs[0].ID) + ": lists "}}, nil
		}},
		{name: "superseded index", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			same := &index.File{Supersedes: []repo.ID{l.files[0].Name}, Packs: l.files[0].File.Packs}
			if _, err := r.SaveIndex(ctx, same); err != nil {
				t.Fatal(err)
			}
			return nil, nil
		}},
		{name: "damaged superseded index", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			same := &index.File{Supersedes: []repo.ID{l.files[0].Name}, Packs: l.files[0].File.Packs}
			if _, err := r.SaveIndex(ctx, same); err != nil {
				t.Fatal(err)
			}
			flipBit(t, l.path(backend.IndexFile, repo.Hex(l.files[0].Name)), 800)
			return []match{{"index/" + repo.Hex(l.files[0].Name), "content does not match its name"}}, nil
		}},
		{name: "damaged second key", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			id, err := r.AddKey(ctx, []byte("second"), false, repotest.FastKDF, repoKeyMeta())
			if err != nil {
				t.Fatal(err)
			}
			flipBit(t, l.path(backend.KeyFile, id), 8*20)
			return []match{{"keys/" + id, "content does not match its name"}}, nil
		}},
		{name: "key file that does not parse", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			data := []byte(`{"version":1,"kdf":"scrypt"}`)
			name := repo.Hex(sha256.Sum256(data))
			write(t, filepath.Join(l.dir, "keys", name), string(data))
			return []match{{"keys/" + name, "kdf"}}, nil
		}},
		{name: "snapshot of a missing tree", apply: func(t *testing.T, l *layout, r *repo.Repository) ([]match, []match) {
			s := &repo.Snapshot{Time: time.Now(), Tree: repo.ID{1, 2, 3}, Paths: []string{"/x"}, Hostname: "h"}
			id, err := r.SaveSnapshot(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			return []match{{"snapshots/" + repo.Hex(id), `"/": tree 01020300: not in the index`}}, nil
		}},
		{name: "missing type directory", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			must(t, os.RemoveAll(filepath.Join(l.dir, "snapshots")))
			return []match{{"snapshots/", "cannot list"}}, nil
		}},
		{name: "flipped pack bit", only: "read-data", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			p := l.path(backend.PackFile, l.dataPacks[1])
			flipBit(t, p, 8*100+3)
			return []match{{"data/" + l.dataPacks[1], "content does not match its name"},
				{"data/" + l.dataPacks[1], "blob 0 of "}, {"snapshots/*", "damaged in data/" + l.dataPacks[1]}}, nil
		}},
		{name: "missing parity object", kind: "parity", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			must(t, os.Remove(l.path(backend.ParityFile, l.dataPacks[0])))
			return []match{{"parity/" + l.dataPacks[0], "missing: pack data/" + l.dataPacks[0] + " has no parity object"}}, nil
		}},
		{name: "truncated parity object", kind: "parity", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			p := l.path(backend.ParityFile, l.treePacks[0])
			must(t, os.Truncate(p, fileSize(t, p)-1))
			return []match{{"parity/" + l.treePacks[0], ""}}, nil
		}},
		{name: "orphaned parity object", kind: "parity", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			id := strings.Repeat("cd", 32)
			write(t, filepath.Join(l.dir, "parity", "cd", id), "x")
			return nil, []match{{"parity/" + id, "orphaned"}}
		}},
		{name: "parity shards damaged beyond repair", kind: "parity", only: "read-data", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			name := l.dataPacks[0]
			p := l.path(backend.PackFile, name)
			size := fileSize(t, p)
			shard := parity.ShardSize(size, testParity.DataShards)
			for i := range 3 { // three of the eight data shards; two parity shards
				flipBit(t, p, 8*(int64(i)*shard+10))
			}
			return []match{{"data/" + name, "parity: 3 of 10 shards"}, {"data/" + name, "only 2 can be rebuilt: not repairable from parity"}}, nil
		}},
		{name: "parity object damaged, pack intact", kind: "parity", only: "read-data", apply: func(t *testing.T, l *layout, _ *repo.Repository) ([]match, []match) {
			p := l.path(backend.ParityFile, l.dataPacks[0])
			flipBit(t, p, 8*(fileSize(t, p)-5))
			return []match{{"parity/" + l.dataPacks[0], "1 of 10 shards (parity 1) damaged, the pack itself is intact"}}, nil
		}},
	}
	for _, dc := range cases {
		for _, m := range modes {
			if dc.only != "" && dc.only != m.name {
				continue
			}
			t.Run(dc.name+"/"+m.name, func(t *testing.T) {
				kind := dc.kind
				if kind == "" {
					kind = "plain"
				}
				dir := copyRepo(t, base(t, kind))
				l := readLayout(t, dir)
				r := openRepo(t, dir, repotest.Password)
				wantErrs, wantWarns := dc.apply(t, l, r)
				r = openRepo(t, dir, repotest.Password) // a fresh process, in effect
				before := digest(t, dir, true)
				rep := check(t, r, Options{ReadData: m.readData})
				if after := digest(t, dir, true); after != before {
					t.Errorf("the check changed the repository")
				}
				for _, w := range wantErrs {
					if !hasMatch(rep.Errors, w) {
						t.Errorf("no error %s: %q", w.object, w.text)
					}
				}
				for _, w := range wantWarns {
					if !hasMatch(rep.Warnings, w) {
						t.Errorf("no warning %s: %q", w.object, w.text)
					}
				}
				if len(wantErrs) == 0 && !rep.OK {
					t.Errorf("errors where none were expected")
				}
				if len(wantWarns) == 0 && len(rep.Warnings) > 0 {
					t.Errorf("warnings where none were expected")
				}
				if t.Failed() {
					t.Logf("report:\n%s", dump(rep))
				}
			})
		}
	}
}

// hasMatch is hasProblem with "type/*" matching any object of the type.
func hasMatch(ps []Problem, m match) bool {
	if prefix, ok := strings.CutSuffix(m.object, "*"); ok {
		for _, p := range ps {
			if strings.HasPrefix(p.Object, prefix) && strings.Contains(p.Message, m.text) {
				return true
			}
		}
		return false
	}
	return hasProblem(ps, m)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, data string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o700))
	must(t, os.WriteFile(p, []byte(data), 0o600))
}

func snapshotTree(t *testing.T, r *repo.Repository, name string) repo.ID {
	t.Helper()
	id, err := repo.ParseID(name)
	must(t, err)
	s, err := r.LoadSnapshot(context.Background(), id)
	must(t, err)
	return s.Tree
}

// indexOf returns the index file that lists tree blob id.
func indexOf(t *testing.T, l *layout, r *repo.Repository, id repo.ID) string {
	t.Helper()
	for _, f := range l.files {
		for _, p := range f.File.Packs {
			for _, b := range p.Blobs {
				if b.ID == id && b.Type == index.TreeBlob {
					return repo.Hex(f.Name)
				}
			}
		}
	}
	t.Fatalf("no index lists tree %s", repo.Short(id))
	return ""
}

func TestWriteOnlyKey(t *testing.T) {
	ctx := context.Background()
	dir := copyRepo(t, base(t, "parity"))
	l := readLayout(t, dir)
	full := openRepo(t, dir, repotest.Password)
	if _, err := full.AddKey(ctx, []byte("write only"), true, repotest.FastKDF, repoKeyMeta()); err != nil {
		t.Fatal(err)
	}
	r := openRepo(t, dir, "write only")
	if r.CanRead() {
		t.Fatal("the write-only key can read")
	}
	for _, m := range modes {
		rep := check(t, r, Options{ReadData: m.readData})
		if !rep.OK || len(rep.Warnings) > 0 {
			t.Fatalf("%s: clean repository, write-only key:\n%s", m.name, dump(rep))
		}
		if len(rep.Skipped) != 2 || !strings.Contains(rep.Skipped[0], "write-only key") {
			t.Errorf("%s: skipped %q; want pack and snapshot contents", m.name, rep.Skipped)
		}
		s := rep.Stats
		if s.Snapshots != 2 || s.Trees != 0 || s.BlobsRead != 0 || s.PacksIndexed != s.Packs {
			t.Errorf("%s: stats %+v", m.name, s)
		}
		if m.readData && s.PacksRead != s.Packs {
			t.Errorf("%s: read %d of %d packs", m.name, s.PacksRead, s.Packs)
		}
	}

	// A backup by the write-only key adds an unsigned index file; both keys
	// find the repository clean.
	must(t, r.LoadIndex(ctx))
	src := t.TempDir()
	write(t, filepath.Join(src, "new.txt"), "written with a write-only key")
	if _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Host: "client"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*repo.Repository{r, openRepo(t, dir, repotest.Password)} {
		rep := check(t, k, Options{ReadData: true})
		if !rep.OK || len(rep.Warnings) > 0 || rep.Stats.UnsignedIndexFiles != 1 || rep.Stats.Snapshots != 3 {
			t.Fatalf("after a write-only backup (full key: %v): %+v\n%s", k.CanRead(), rep.Stats, dump(rep))
		}
	}

	// What a write-only key still detects.
	pk := l.dataPacks[0]
	flipBit(t, l.path(backend.PackFile, pk), 8*1000)
	rep := check(t, r, Options{ReadData: true})
	if !hasProblem(rep.Errors, match{"data/" + pk, "repairable with `bulwark repo repair`"}) {
		t.Errorf("write-only read-data misses a flipped bit in data/%s:\n%s", pk, dump(rep))
	}
	flipBit(t, l.path(backend.PackFile, pk), 8*1000)

	sn := l.snapshots[0]
	flipBit(t, l.path(backend.SnapshotFile, sn), 8*60)
	rep = check(t, r, Options{})
	if !hasProblem(rep.Errors, match{"snapshots/" + sn, "content does not match its name"}) {
		t.Errorf("write-only check misses a flipped bit in snapshots/%s:\n%s", sn, dump(rep))
	}
	flipBit(t, l.path(backend.SnapshotFile, sn), 8*60)

	p := l.path(backend.PackFile, l.treePacks[0])
	data, err := os.ReadFile(p)
	must(t, err)
	must(t, os.Truncate(p, int64(len(data))-1))
	rep = check(t, r, Options{})
	if !hasProblem(rep.Errors, match{"data/" + l.treePacks[0], ""}) {
		t.Errorf("write-only check misses a truncated pack:\n%s", dump(rep))
	}
	must(t, os.WriteFile(p, data, 0o600))

	must(t, os.Remove(l.path(backend.PackFile, l.dataPacks[1])))
	rep = check(t, r, Options{})
	if !hasProblem(rep.Errors, match{"data/" + l.dataPacks[1], "missing"}) {
		t.Errorf("write-only check misses a deleted pack:\n%s", dump(rep))
	}
}

func TestSubsetReadsItsPacks(t *testing.T) {
	l := readLayout(t, base(t, "plain"))
	r := openRepo(t, l.dir, repotest.Password)
	n := len(l.packSizes)
	total := 0
	for k := 1; k <= 3; k++ {
		want := 0
		for name := range l.packSizes {
			id, _ := repo.ParseID(name)
			if int(id[0])%3 == k-1 {
				want++
			}
		}
		rep := check(t, r, Options{ReadData: true, Subset: Subset{N: k, M: 3}})
		if !rep.OK || rep.Stats.PacksRead != want {
			t.Errorf("subset %d/3: read %d packs, want %d\n%s", k, rep.Stats.PacksRead, want, dump(rep))
		}
		total += rep.Stats.PacksRead
	}
	if total != n {
		t.Errorf("subsets 1/3, 2/3, 3/3 read %d packs in all, want %d", total, n)
	}
	for _, pct := range []float64{0.001, 50, 100} {
		rep := check(t, r, Options{ReadData: true, Subset: Subset{Percent: pct}})
		want := int(math.Ceil(float64(n) * pct / 100))
		if rep.Stats.PacksRead != want {
			t.Errorf("subset %v%%: read %d of %d packs, want %d", pct, rep.Stats.PacksRead, n, want)
		}
	}
	if _, err := Check(context.Background(), r, Options{ReadData: true, Subset: Subset{N: 3, M: 2}}); err == nil {
		t.Error("Check accepted subset 3/2")
	}
}

func TestCancelled(t *testing.T) {
	r := openRepo(t, base(t, "plain"), repotest.Password)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Check(ctx, r, Options{ReadData: true})
	if !errors.Is(err, context.Canceled) || rep != nil {
		t.Fatalf("Check on a cancelled context: %v, %v", rep, err)
	}
}

func TestProgress(t *testing.T) {
	r := openRepo(t, base(t, "plain"), repotest.Password)
	p := &Progress{}
	rep := check(t, r, Options{ReadData: true, Progress: p})
	if p.Phase() != "done" || p.Bytes.Load() != rep.Stats.BytesRead || p.TotalBytes.Load() != rep.Stats.BytesRead || p.Errors.Load() != 0 {
		t.Errorf("progress: phase %q, %d/%d bytes, %d errors; report read %d bytes", p.Phase(), p.Bytes.Load(), p.TotalBytes.Load(), p.Errors.Load(), rep.Stats.BytesRead)
	}
}
