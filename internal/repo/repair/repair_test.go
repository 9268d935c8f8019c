package repair_test

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/pack"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/repair"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// checkClean fails unless the report shows nothing damaged or lost.
func checkClean(t *testing.T, rep *repair.Report) {
	t.Helper()
	if len(rep.Packs.Damaged) > 0 || rep.DataLost() || len(rep.Packs.Missing) > 0 || len(rep.Snapshots.Salvaged) > 0 {
		t.Fatalf("unexpected damage or loss: %+v", rep)
	}
}

// TestParityRepairsBitFlips is the acceptance test for parity:
// single bits flipped at random positions of data and tree packs, and of
// parity objects, one at a time; after each repair the whole repository
// is byte for byte what it was, and every snapshot restores identical to
// its source.
func TestParityRepairsBitFlips(t *testing.T) {
	f := newFixture(t, parity128)
	restoreAll(t, f.dir, f.identity())
	ps := packs(t, f.dir)
	dataPacks, treePacks := ofType(ps, repo.DataBlob), ofType(ps, repo.TreeBlob)
	if len(dataPacks) < 4 || len(treePacks) < 2 {
		t.Fatalf("fixture has %d data and %d tree packs, want at least 4 and 2", len(dataPacks), len(treePacks))
	}
	orig := dirState(t, f.dir)
	flips, parityFlips := 100, 10
	if raceEnabled || testing.Short() {
		flips, parityFlips = 24, 4
	}
	rng := rand.New(rand.NewPCG(42, 7))
	inTree := 0
	for i := range flips {
		p := dataPacks[rng.IntN(len(dataPacks))]
		if i%4 == 0 {
			p = treePacks[rng.IntN(len(treePacks))]
			inTree++
		}
		off, bit := rng.Int64N(p.size), uint(rng.IntN(8))
		flipBit(t, packFile(f.dir, p.id), off, bit)
		rep := runRepair(t, f.dir, repair.Options{Forget: true})
		wantShard := int(off / parity.ShardSize(p.size, parity128.DataShards))
		if len(rep.Packs.Repaired) != 1 || rep.Packs.Repaired[0].ID != repo.Hex(p.id) || !slices.Equal(rep.Packs.Repaired[0].Shards, []int{wantShard}) {
			t.Fatalf("flip %d (pack %s byte %d bit %d): repaired %+v, want the pack with shard %d", i, repo.Short(p.id), off, bit, rep.Packs.Repaired, wantShard)
		}
		checkClean(t, rep)
		if rep.Index.Rewritten || len(rep.Packs.ParityWritten) > 0 || rep.Packs.NewPacks > 0 {
			t.Fatalf("flip %d: more than the pack was written: %+v", i, rep)
		}
		sameState(t, orig, dirState(t, f.dir))
		if (i+1)%(flips/4) == 0 {
			restoreAll(t, f.dir, f.identity())
		}
	}
	// A flip in a parity object: the object is written anew, identical.
	for i := range parityFlips {
		p := ps[rng.IntN(len(ps))]
		fi, err := os.Stat(parityFile(f.dir, p.id))
		must(t, err)
		flipBit(t, parityFile(f.dir, p.id), rng.Int64N(fi.Size()), uint(rng.IntN(8)))
		rep := runRepair(t, f.dir, repair.Options{Forget: true})
		want := []repair.ParityWrite{{Pack: repo.Hex(p.id), Reason: "damaged"}}
		if !slices.Equal(rep.Packs.ParityWritten, want) || len(rep.Packs.Repaired) > 0 {
			t.Fatalf("parity flip %d: parity written %+v, repaired %+v; want %+v", i, rep.Packs.ParityWritten, rep.Packs.Repaired, want)
		}
		checkClean(t, rep)
		sameState(t, orig, dirState(t, f.dir))
	}
	restoreAll(t, f.dir, f.identity())
	// An index file: rebuilt from the packs. A snapshot: corrected in place.
	for i := range 3 {
		ents, err := os.ReadDir(filepath.Join(f.dir, "index"))
		must(t, err)
		p := filepath.Join(f.dir, "index", ents[rng.IntN(len(ents))].Name())
		fi, err := os.Stat(p)
		must(t, err)
		flipBit(t, p, rng.Int64N(fi.Size()), uint(rng.IntN(8)))
		rep := runRepair(t, f.dir, repair.Options{Forget: true})
		if !rep.Index.Rewritten || len(rep.Index.Unreadable) != 1 || rep.Index.Unreadable[0].ID != filepath.Base(p) {
			t.Fatalf("index flip %d: %+v", i, rep.Index)
		}
		checkClean(t, rep)
	}
	restoreAll(t, f.dir, f.identity())
	state := dirState(t, f.dir)
	for i := range 3 {
		s := f.snaps[rng.IntN(2)]
		p := filepath.Join(f.dir, "snapshots", repo.Hex(s.ID))
		fi, err := os.Stat(p)
		must(t, err)
		flipBit(t, p, rng.Int64N(fi.Size()), uint(rng.IntN(8)))
		rep := runRepair(t, f.dir, repair.Options{Forget: true})
		if !slices.Equal(rep.Snapshots.Fixed, []string{repo.Hex(s.ID)}) {
			t.Fatalf("snapshot flip %d: fixed %v", i, rep.Snapshots.Fixed)
		}
		checkClean(t, rep)
		sameState(t, state, dirState(t, f.dir))
	}
	restoreAll(t, f.dir, f.identity())
	t.Logf("%d flips in packs (%d in tree packs), %d in parity objects, 3 in index files, 3 in snapshots: all repaired", flips, inTree, parityFlips)
}

// TestParityRepairsShards covers damage up to the parity shard count and
// a changed pack length, and a missing parity object.
func TestParityRepairsShards(t *testing.T) {
	f := newFixture(t, parity128)
	ps := ofType(packs(t, f.dir), repo.DataBlob)
	sort.Slice(ps, func(i, j int) bool { return ps[i].size > ps[j].size })
	p := ps[0]
	S := parity.ShardSize(p.size, parity128.DataShards)
	tests := []struct {
		name       string
		damage     func(t *testing.T, path string)
		wantShards []int
		wantSize   int64
	}{
		{name: "two shards", damage: func(t *testing.T, path string) {
			flipBit(t, path, 3*S+17, 0)
			flipBit(t, path, 90*S+5, 7)
		}, wantShards: []int{3, 90}},
		{name: "two bits in one shard", damage: func(t *testing.T, path string) {
			flipBit(t, path, 10*S, 1)
			flipBit(t, path, 11*S-1, 2)
		}, wantShards: []int{10}},
		{name: "truncated", damage: func(t *testing.T, path string) {
			must(t, os.Truncate(path, p.size-100))
		}, wantShards: []int{int((p.size - 100) / S)}, wantSize: p.size - 100},
		{name: "bytes appended", damage: func(t *testing.T, path string) {
			fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			must(t, err)
			_, err = fh.Write([]byte("garbage"))
			must(t, err)
			must(t, fh.Close())
		}, wantShards: []int{int((p.size - 1) / S)}, wantSize: p.size + 7},
		{name: "shard and parity shard", damage: func(t *testing.T, path string) {
			flipBit(t, path, 0, 0)
			fi, err := os.Stat(parityFile(filepath.Dir(filepath.Dir(filepath.Dir(path))), p.id))
			must(t, err)
			flipBit(t, parityFile(filepath.Dir(filepath.Dir(filepath.Dir(path))), p.id), fi.Size()-1, 3)
		}, wantShards: []int{0, parity128.DataShards + 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyRepo(t, f.dir)
			orig := dirState(t, dir)
			tc.damage(t, packFile(dir, p.id))
			rep := runRepair(t, dir, repair.Options{Forget: true})
			want := []repair.RepairedPack{{ID: repo.Hex(p.id), Shards: tc.wantShards, Size: tc.wantSize}}
			if len(rep.Packs.Repaired) != 1 || !slices.Equal(rep.Packs.Repaired[0].Shards, want[0].Shards) ||
				rep.Packs.Repaired[0].ID != want[0].ID || rep.Packs.Repaired[0].Size != tc.wantSize {
				t.Fatalf("repaired %+v, want %+v", rep.Packs.Repaired, want)
			}
			checkClean(t, rep)
			sameState(t, orig, dirState(t, dir))
		})
	}
	t.Run("parity object missing", func(t *testing.T) {
		dir := copyRepo(t, f.dir)
		orig := dirState(t, dir)
		must(t, os.Remove(parityFile(dir, p.id)))
		rep := runRepair(t, dir, repair.Options{Forget: true})
		if want := []repair.ParityWrite{{Pack: repo.Hex(p.id), Reason: "missing"}}; !slices.Equal(rep.Packs.ParityWritten, want) {
			t.Fatalf("parity written %+v, want %+v", rep.Packs.ParityWritten, want)
		}
		sameState(t, orig, dirState(t, dir))
	})
}

// lostBlobs returns the blobs of pack p that cover one of the offsets.
func lostBlobs(p packInfo, offs []int64) []repo.ID {
	var out []repo.ID
	for i, b := range p.blobs {
		for _, off := range offs {
			if off >= int64(b.Offset) && off < int64(b.Offset)+int64(b.Length) {
				out = append(out, p.ids[i])
				break
			}
		}
	}
	return out
}

// dataEnd is where a pack's header starts.
func dataEnd(p packInfo) int64 {
	var end int64
	for _, b := range p.blobs {
		end = max(end, int64(b.Offset)+int64(b.Length))
	}
	return end
}

// checkSalvage checks the salvage of every snapshot of f against the lost
// chunks (and the lost tree, if any), that the repository then restores
// exactly what was kept, and that a second run has nothing left to do.
func checkSalvage(t *testing.T, f *fixture, dir string, rep *repair.Report, lostChunks []repo.ID, lostTree *repo.ID) {
	t.Helper()
	want := map[time.Time]string{}
	salvaged := 0
	for i, s := range f.snaps {
		files := expectLost(t, f.pristine, s, lostChunks)
		if lostTree != nil {
			r := repotest.Open(t, f.pristine, repotest.Password)
			_, trees := filesByChunk(t, r, s)
			r.Close()
			files = append(files, trees[*lostTree]...)
			sort.Strings(files)
		}
		got := salvagedFor(rep, s)
		if len(files) == 0 {
			if got != nil {
				t.Errorf("snapshot %d: salvaged %+v, but it lost nothing", i, got)
			}
			want[s.Time] = f.expect[i]
			continue
		}
		salvaged++
		if got == nil {
			t.Fatalf("snapshot %d: not salvaged; it lost %q", i, files)
		}
		if !slices.Equal(got.Lost.Files, files) {
			t.Errorf("snapshot %d: lost files\n%q\nwant\n%q", i, got.Lost.Files, files)
		}
		if got.New == "" {
			t.Errorf("snapshot %d: no new snapshot saved", i)
		}
		want[s.Time] = without(t, f.expect[i], f.path, files)
	}
	if rep.Lost.Snapshots != salvaged || len(rep.Snapshots.Removed) != salvaged {
		t.Errorf("lost %+v, removed %d; want %d salvaged snapshots", rep.Lost, len(rep.Snapshots.Removed), salvaged)
	}
	restoreAll(t, dir, want)
	// Salvaged snapshots say what they lost, and name their original.
	r := repotest.Open(t, dir, repotest.Password)
	snaps, _, err := r.Snapshots(context.Background())
	r.Close()
	must(t, err)
	for _, s := range snaps {
		var rec *repair.Salvaged
		for i := range rep.Snapshots.Salvaged {
			if rep.Snapshots.Salvaged[i].New == repo.Hex(s.ID) {
				rec = &rep.Snapshots.Salvaged[i]
			}
		}
		if (rec == nil) != (s.Original == "") {
			t.Errorf("snapshot %s: original %q, report %+v", repo.Short(s.ID), s.Original, rec)
			continue
		}
		if rec != nil && (rec.Original != s.Original || s.Lost == nil || !slices.Equal(s.Lost.Files, rec.Lost.Files) ||
			s.Lost.Chunks != rec.Lost.Chunks || s.Lost.Trees != rec.Lost.Trees || s.Hostname != "test") {
			t.Errorf("snapshot %s: original %s lost %+v; report %+v", repo.Short(s.ID), s.Original, s.Lost, rec)
		}
	}
	again := runRepair(t, dir, repair.Options{Forget: true})
	if again.Changed() || again.DataLost() {
		t.Errorf("second repair changed something: %+v", again)
	}
}

// TestTooManyShardsSalvages: three damaged shards are more than 128+2
// parity can rebuild; the pack is salvaged instead.
func TestTooManyShardsSalvages(t *testing.T) {
	f := newFixture(t, parity128)
	ps := ofType(packs(t, f.dir), repo.DataBlob)
	sort.Slice(ps, func(i, j int) bool { return len(ps[i].blobs) > len(ps[j].blobs) })
	p := ps[0]
	if len(p.blobs) < 4 {
		t.Fatalf("largest pack has %d blobs", len(p.blobs))
	}
	S := parity.ShardSize(p.size, parity128.DataShards)
	end := dataEnd(p)
	rng := rand.New(rand.NewPCG(3, 3))
	shards := rng.Perm(int(end / S))[:3]
	dir := copyRepo(t, f.dir)
	var offs []int64
	for _, sh := range shards {
		off := int64(sh)*S + rng.Int64N(S)
		offs = append(offs, off)
		flipBit(t, packFile(dir, p.id), off, uint(rng.IntN(8)))
	}
	lost := lostBlobs(p, offs)
	rep := runRepair(t, dir, repair.Options{Forget: true})
	if len(rep.Packs.Damaged) != 1 || len(rep.Packs.Repaired) != 0 {
		t.Fatalf("damaged %+v, repaired %+v; want the one pack damaged", rep.Packs.Damaged, rep.Packs.Repaired)
	}
	d := rep.Packs.Damaged[0]
	if d.ID != repo.Hex(p.id) || d.Source != "header" || d.BlobsLost != len(lost) || d.BlobsSalvaged != len(p.blobs)-len(lost) ||
		!strings.Contains(d.Error, "too many damaged shards") {
		t.Fatalf("damaged pack %+v; want %d lost of %d blobs", d, len(lost), len(p.blobs))
	}
	if _, err := os.Stat(packFile(dir, p.id)); err != nil {
		t.Errorf("the damaged pack was not left in place: %v", err)
	}
	checkSalvage(t, f, dir, rep, lost, nil)
}

// TestNoParitySalvage: without parity, a damaged pack's intact blobs are
// copied to new packs, listed from its header or, when that is damaged,
// from the index.
func TestNoParitySalvage(t *testing.T) {
	f := newFixture(t, nil)
	ps := ofType(packs(t, f.dir), repo.DataBlob)
	sort.Slice(ps, func(i, j int) bool { return len(ps[i].blobs) > len(ps[j].blobs) })
	p := ps[0]
	end := dataEnd(p)
	tests := []struct {
		name       string
		off        int64
		wantSource string
		lost       []repo.ID
	}{
		{name: "blob", off: int64(p.blobs[1].Offset) + 20, wantSource: "header", lost: []repo.ID{p.ids[1]}},
		{name: "header", off: end + 10, wantSource: "index"},
		{name: "trailer key", off: p.size - 20, wantSource: "index", lost: p.ids},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyRepo(t, f.dir)
			flipBit(t, packFile(dir, p.id), tc.off, 4)
			rep := runRepair(t, dir, repair.Options{Forget: true})
			if len(rep.Packs.Damaged) != 1 {
				t.Fatalf("damaged %+v", rep.Packs.Damaged)
			}
			d := rep.Packs.Damaged[0]
			if d.Source != tc.wantSource || d.BlobsLost != len(tc.lost) || d.BlobsSalvaged != len(p.blobs)-len(tc.lost) ||
				!strings.Contains(d.Error, "parity is off") {
				t.Fatalf("damaged pack %+v; want source %q, %d lost", d, tc.wantSource, len(tc.lost))
			}
			if len(tc.lost) < len(p.blobs) && rep.Packs.NewPacks == 0 {
				t.Errorf("no new pack for the salvaged blobs")
			}
			checkSalvage(t, f, dir, rep, tc.lost, nil)
		})
	}
}

// TestPackDeleted: a deleted pack without parity loses exactly the files
// that used its chunks; a deleted tree blob empties its directory.
func TestPackDeleted(t *testing.T) {
	f := newFixture(t, nil)
	all := packs(t, f.dir)
	t.Run("data pack", func(t *testing.T) {
		ps := ofType(all, repo.DataBlob)
		sort.Slice(ps, func(i, j int) bool { return len(ps[i].blobs) > len(ps[j].blobs) })
		p := ps[0]
		dir := copyRepo(t, f.dir)
		must(t, os.Remove(packFile(dir, p.id)))
		rep := runRepair(t, dir, repair.Options{Forget: true})
		if !slices.Equal(rep.Packs.Missing, []string{repo.Hex(p.id)}) || !rep.Index.Rewritten {
			t.Fatalf("missing %v, index %+v", rep.Packs.Missing, rep.Index)
		}
		checkSalvage(t, f, dir, rep, p.ids, nil)
	})
	t.Run("tree blob", func(t *testing.T) {
		// A leaf directory used by both snapshots: flip a bit in its tree
		// blob (no parity: the blob is lost, the rest of the pack kept).
		r := repotest.Open(t, f.dir, repotest.Password)
		_, trees := filesByChunk(t, r, f.snaps[0])
		_, trees1 := filesByChunk(t, r, f.snaps[1])
		r.Close()
		var victim repo.ID
		for id, paths := range trees {
			if strings.HasSuffix(paths[0], "/small/d0/") && len(trees1[id]) > 0 {
				victim = id
			}
		}
		if victim == (repo.ID{}) {
			t.Fatal("no tree shared by both snapshots")
		}
		dir := copyRepo(t, f.dir)
		for _, p := range all {
			for i, id := range p.ids {
				if id == victim && p.blobs[i].Type == repo.TreeBlob {
					flipBit(t, packFile(dir, p.id), int64(p.blobs[i].Offset)+5, 1)
				}
			}
		}
		rep := runRepair(t, dir, repair.Options{Forget: true})
		if len(rep.Packs.Damaged) != 1 || rep.Packs.Damaged[0].BlobsLost != 1 {
			t.Fatalf("damaged %+v", rep.Packs.Damaged)
		}
		for _, s := range rep.Snapshots.Salvaged {
			if s.Lost.Trees != 1 || s.Lost.Chunks != 0 {
				t.Errorf("salvaged %+v: want 1 tree lost", s)
			}
		}
		checkSalvage(t, f, dir, rep, nil, &victim)
	})
	t.Run("root tree", func(t *testing.T) {
		dir := copyRepo(t, f.dir)
		var victim repo.ID
		for _, p := range all {
			if slices.Contains(p.ids, f.snaps[1].Tree) {
				victim = p.id
			}
		}
		must(t, os.Remove(packFile(dir, victim)))
		rep := runRepair(t, dir, repair.Options{Forget: true})
		got := salvagedFor(rep, f.snaps[1])
		if got == nil || !slices.Equal(got.Lost.Files, []string{"/"}) {
			t.Fatalf("salvaged %+v, want snapshot 1 with everything lost", rep.Snapshots.Salvaged)
		}
		r := repotest.Open(t, dir, repotest.Password)
		defer r.Close()
		id, err := repo.ParseID(got.New)
		must(t, err)
		s, err := r.LoadSnapshot(context.Background(), id)
		must(t, err)
		tr, err := r.LoadTree(context.Background(), s.Tree)
		must(t, err)
		if len(tr.Nodes) != 0 || s.Hostname != "test" || !s.Time.Equal(f.snaps[1].Time) || !slices.Equal(s.Paths, f.snaps[1].Paths) {
			t.Errorf("salvaged snapshot %+v with %d nodes; want the original's metadata and an empty tree", s, len(tr.Nodes))
		}
	})
}

// TestIndex: a deleted or damaged index is rebuilt from the packs; every
// pack no signed index vouches for is verified first.
func TestIndex(t *testing.T) {
	f := newFixture(t, nil)
	names := func(dir string) []string {
		ents, err := os.ReadDir(filepath.Join(dir, "index"))
		must(t, err)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	old := names(f.dir)
	if len(old) != 2 {
		t.Fatalf("%d index files, want one per backup", len(old))
	}
	npacks := len(packs(t, f.dir))
	tests := []struct {
		name         string
		damage       func(dir string)
		wantVerified int
		unreadable   int
	}{
		{name: "deleted", damage: func(dir string) {
			for _, n := range old {
				must(t, os.Remove(filepath.Join(dir, "index", n)))
			}
		}, wantVerified: npacks},
		{name: "bit flipped", damage: func(dir string) {
			flipBit(t, filepath.Join(dir, "index", old[0]), 40, 2)
		}, unreadable: 1, wantVerified: -1},
		{name: "truncated", damage: func(dir string) {
			must(t, os.Truncate(filepath.Join(dir, "index", old[1]), 10))
		}, unreadable: 1, wantVerified: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyRepo(t, f.dir)
			tc.damage(dir)
			before := len(names(dir))
			rep := runRepair(t, dir, repair.Options{Forget: true})
			checkClean(t, rep)
			if !rep.Index.Rewritten || rep.Index.Packs != npacks || len(rep.Index.Unreadable) != tc.unreadable {
				t.Fatalf("index %+v", rep.Index)
			}
			if tc.wantVerified >= 0 && rep.Packs.Verified != tc.wantVerified {
				t.Errorf("verified %d packs, want %d", rep.Packs.Verified, tc.wantVerified)
			}
			if tc.wantVerified < 0 && (rep.Packs.Verified == 0 || rep.Packs.Verified == npacks) {
				t.Errorf("verified %d of %d packs; want those of the damaged index only", rep.Packs.Verified, npacks)
			}
			if got := names(dir); !slices.Equal(got, []string{rep.Index.Written}) {
				t.Errorf("index files %v, want only %s", got, rep.Index.Written)
			}
			r := open(t, dir)
			files, err := r.LoadIndexFiles(context.Background())
			must(t, err)
			if len(files) != 1 || files[0].Err != nil || !files[0].File.Signed || len(files[0].File.Supersedes) != before {
				t.Errorf("new index: %+v", files)
			}
			r.Close()
			restoreAll(t, dir, f.identity())
		})
	}
}

// TestSnapshotBitFlips: a snapshot file with one flipped bit is corrected
// in place; with two it is reported and left alone.
func TestSnapshotBitFlips(t *testing.T) {
	f := newFixture(t, nil)
	path := filepath.Join(f.dir, "snapshots", repo.Hex(f.snaps[0].ID))
	orig, err := os.ReadFile(path)
	must(t, err)
	all := dirState(t, f.dir)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range 30 {
		off := rng.Int64N(int64(len(orig)))
		flipBit(t, path, off, uint(rng.IntN(8)))
		rep := runRepair(t, f.dir, repair.Options{Forget: true})
		if !slices.Equal(rep.Snapshots.Fixed, []string{repo.Hex(f.snaps[0].ID)}) {
			t.Fatalf("flip %d at byte %d: fixed %v", i, off, rep.Snapshots.Fixed)
		}
		checkClean(t, rep)
		sameState(t, all, dirState(t, f.dir))
	}
	flipBit(t, path, 3, 0)
	flipBit(t, path, 50, 0)
	damaged, err := os.ReadFile(path)
	must(t, err)
	rep := runRepair(t, f.dir, repair.Options{Forget: true})
	if len(rep.Snapshots.Unreadable) != 1 || rep.Snapshots.Unreadable[0].ID != repo.Hex(f.snaps[0].ID) || !rep.DataLost() {
		t.Fatalf("unreadable %+v", rep.Snapshots.Unreadable)
	}
	if after, err := os.ReadFile(path); err != nil || string(after) != string(damaged) {
		t.Errorf("the unreadable snapshot was changed or removed: %v", err)
	}
	must(t, os.Remove(path)) // restoreAll wants every snapshot readable
	restoreAll(t, f.dir, map[time.Time]string{snapTime(1): f.expect[1]})
}

// TestDryRunChangesNothing damages a repository in every way at once: a
// dry run leaves every byte as it is and reports what the real run then
// does.
func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, parity128)
	ps := packs(t, f.dir)
	dataPacks := ofType(ps, repo.DataBlob)
	sort.Slice(dataPacks, func(i, j int) bool { return len(dataPacks[i].blobs) > len(dataPacks[j].blobs) })
	treePack := ofType(ps, repo.TreeBlob)[0]
	flipBit(t, packFile(f.dir, treePack.id), int64(treePack.blobs[0].Offset)+3, 2) // repairable
	flipBit(t, packFile(f.dir, dataPacks[0].id), 1000, 3)                          // repairable
	must(t, os.Remove(packFile(f.dir, dataPacks[1].id)))                           // lost
	flipBit(t, parityFile(f.dir, dataPacks[2].id), 200, 1)                         // parity rewritten
	flipBit(t, filepath.Join(f.dir, "snapshots", repo.Hex(f.snaps[1].ID)), 77, 6)  // corrected
	ents, err := os.ReadDir(filepath.Join(f.dir, "index"))
	must(t, err)
	must(t, os.Remove(filepath.Join(f.dir, "index", ents[0].Name())))

	before := dirState(t, f.dir)
	dry := runRepair(t, f.dir, repair.Options{DryRun: true, Forget: true})
	sameState(t, before, dirState(t, f.dir))
	if !dry.DryRun || !dry.Changed() || !dry.DataLost() {
		t.Fatalf("dry run report: %+v", dry)
	}
	real := runRepair(t, f.dir, repair.Options{Forget: true})
	if !slices.EqualFunc(dry.Packs.Repaired, real.Packs.Repaired, func(a, b repair.RepairedPack) bool {
		return a.ID == b.ID && slices.Equal(a.Shards, b.Shards)
	}) || len(real.Packs.Repaired) != 2 {
		t.Errorf("repaired: dry %+v, real %+v", dry.Packs.Repaired, real.Packs.Repaired)
	}
	if !slices.Equal(dry.Packs.ParityWritten, real.Packs.ParityWritten) || !slices.Equal(dry.Packs.Missing, real.Packs.Missing) ||
		!slices.Equal(dry.Snapshots.Fixed, real.Snapshots.Fixed) || !slices.Equal(dry.Snapshots.Removed, real.Snapshots.Removed) ||
		!slices.Equal(dry.Index.Removed, real.Index.Removed) || dry.Lost != real.Lost {
		t.Errorf("dry run and real run differ:\ndry  %+v\nreal %+v", dry, real)
	}
	if len(dry.Snapshots.Salvaged) != len(real.Snapshots.Salvaged) {
		t.Fatalf("salvaged: dry %+v, real %+v", dry.Snapshots.Salvaged, real.Snapshots.Salvaged)
	}
	for i := range dry.Snapshots.Salvaged {
		d, r := dry.Snapshots.Salvaged[i], real.Snapshots.Salvaged[i]
		if d.Original != r.Original || d.New != "" || r.New == "" || !slices.Equal(d.Lost.Files, r.Lost.Files) {
			t.Errorf("salvaged: dry %+v, real %+v", d, r)
		}
	}
	if again := runRepair(t, f.dir, repair.Options{Forget: true}); again.Changed() || again.DataLost() {
		t.Errorf("second repair: %+v", again)
	}
}

// TestHealthyRepositoryUnchanged: nothing to repair, nothing written.
func TestHealthyRepositoryUnchanged(t *testing.T) {
	for _, par := range []*parity.Params{nil, parity128} {
		f := newFixture(t, par)
		before := dirState(t, f.dir)
		rep := runRepair(t, f.dir, repair.Options{Forget: true})
		if rep.Changed() || rep.DataLost() || rep.Packs.Checked == 0 || rep.Snapshots.Intact != 2 || rep.Packs.Verified != 0 {
			t.Errorf("parity %v: %+v", par, rep)
		}
		sameState(t, before, dirState(t, f.dir))
	}
}

// TestWriteOnlyPacksVerified: packs that only unsigned indexes list are
// checked blob by blob before a signed index lists them; a forged blob
// (a write-only key claiming a chunk it does not hold) is left out.
func TestWriteOnlyPacksVerified(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	full := repotest.Open(t, f.dir, repotest.Password)
	_, err := full.AddKey(ctx, []byte("write only"), true, repotest.FastKDF, crypto.KeyFile{Host: "client"})
	must(t, err)
	var victim repo.ID
	full.Index().Each(func(id repo.ID, loc index.Location) {
		if loc.Type == repo.DataBlob {
			victim = id
		}
	})
	full.Close()

	be, err := local.Open(f.dir)
	must(t, err)
	wo, err := repo.Open(ctx, be, []byte("write only"), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	must(t, wo.LoadIndex(ctx))
	src := filepath.Join(t.TempDir(), "wsrc")
	genTree(t, src, 9)
	_, err = archiver.Backup(ctx, wo, []string{src}, archiver.Options{NoParent: true, Host: "client", Time: snapTime(2)})
	must(t, err)
	// The forged pack: a header claiming the victim chunk, other bytes.
	aead, E, err := wo.Secrets().SealTo(crypto.PurposePack)
	must(t, err)
	w := pack.NewWriter(aead, E)
	garbage := []byte("these are not the bytes of the chunk")
	_, err = w.Add(pack.Data, victim, garbage, false, len(garbage))
	must(t, err)
	data, blobs, err := w.Finish()
	must(t, err)
	forged := sha(data)
	must(t, be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: repo.Hex(forged)}, data))
	_, err = wo.SaveIndex(ctx, &index.File{Packs: []index.Pack{{ID: forged, Blobs: []index.Blob{{
		Type: repo.DataBlob, ID: victim, Offset: blobs[0].Offset, Length: blobs[0].StoredLength, RawLength: blobs[0].RawLength}}}}})
	must(t, err)
	wo.Close()

	rep := runRepair(t, f.dir, repair.Options{Forget: true})
	checkClean(t, rep)
	if len(rep.Packs.Rejected) != 1 || rep.Packs.Rejected[0].Pack != repo.Hex(forged) || rep.Packs.Rejected[0].Blob != repo.Hex(victim) {
		t.Fatalf("rejected %+v, want blob %s of pack %s", rep.Packs.Rejected, repo.Short(victim), repo.Short(forged))
	}
	if rep.Packs.Verified < 2 || !rep.Index.Rewritten {
		t.Errorf("verified %d packs, index %+v", rep.Packs.Verified, rep.Index)
	}
	r := open(t, f.dir)
	files, err := r.LoadIndexFiles(ctx)
	must(t, err)
	if len(files) != 1 || !files[0].File.Signed {
		t.Fatalf("index files %+v, want one signed", files)
	}
	for _, p := range files[0].File.Packs {
		if p.ID == forged {
			t.Errorf("the forged pack is in the signed index")
		}
	}
	r.Close()
	want := f.identity()
	want[snapTime(2)] = src
	restoreAll(t, f.dir, want)
}

// TestAppendOnlyFallback: when the backend refuses to replace a pack, the
// pack rebuilt from parity is salvaged whole into new packs instead.
func TestAppendOnlyFallback(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, parity128)
	// The largest data pack: with random chunk boundaries, the first one
	// by id can be shorter than the offset flipped.
	data := ofType(packs(t, f.dir), repo.DataBlob)
	p := slices.MaxFunc(data, func(a, b packInfo) int { return cmp.Compare(a.size, b.size) })
	flipBit(t, packFile(f.dir, p.id), 12345, 5)
	be, err := local.Open(f.dir)
	must(t, err)
	r, err := repo.Open(ctx, appendOnly{be}, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	rep, err := repair.Repair(ctx, r, repair.Options{Forget: true})
	must(t, err)
	r.Close()
	if len(rep.Packs.Damaged) != 1 || !strings.Contains(rep.Packs.Damaged[0].Error, "refuses") ||
		rep.Packs.Damaged[0].BlobsSalvaged != len(p.blobs) || rep.Packs.Damaged[0].BlobsLost != 0 {
		t.Fatalf("damaged %+v", rep.Packs.Damaged)
	}
	if rep.DataLost() || rep.Packs.NewPacks == 0 || !rep.Index.Rewritten {
		t.Fatalf("report %+v", rep)
	}
	restoreAll(t, f.dir, f.identity())
}

// TestSalvageOnce: a damaged snapshot kept (no Forget) is not salvaged a
// second time; a later run with Forget removes it.
func TestSalvageOnce(t *testing.T) {
	f := newFixture(t, nil)
	ps := ofType(packs(t, f.dir), repo.DataBlob)
	must(t, os.Remove(packFile(f.dir, ps[0].id)))
	first := runRepair(t, f.dir, repair.Options{})
	if len(first.Snapshots.Salvaged) == 0 || len(first.Snapshots.Removed) != 0 {
		t.Fatalf("first run: %+v", first.Snapshots)
	}
	ids, _, err := open(t, f.dir).SnapshotIDs(context.Background())
	must(t, err)
	if len(ids) != 2+len(first.Snapshots.Salvaged) {
		t.Fatalf("%d snapshots after keeping the damaged ones", len(ids))
	}
	second := runRepair(t, f.dir, repair.Options{Forget: true})
	for i, s := range second.Snapshots.Salvaged {
		if s.AlreadyBy != first.Snapshots.Salvaged[i].New || s.New != "" {
			t.Errorf("second run salvaged %+v again", s)
		}
	}
	ids, _, err = open(t, f.dir).SnapshotIDs(context.Background())
	must(t, err)
	if len(ids) != 2 || len(second.Snapshots.Removed) != len(first.Snapshots.Salvaged) {
		t.Errorf("%d snapshots, removed %v", len(ids), second.Snapshots.Removed)
	}
}

// TestNeedsFullKey: a write-only key cannot repair.
func TestNeedsFullKey(t *testing.T) {
	ctx := context.Background()
	r, dir := repotest.New(t, repotest.Options{})
	_, err := r.AddKey(ctx, []byte("wo"), true, repotest.FastKDF, crypto.KeyFile{})
	must(t, err)
	be, err := local.Open(dir)
	must(t, err)
	wo, err := repo.Open(ctx, be, []byte("wo"), repo.OpenOptions{CacheDir: "-"})
	must(t, err)
	if _, err := repair.Repair(ctx, wo, repair.Options{}); !errors.Is(err, repo.ErrNeedFullKey) {
		t.Fatalf("repair with a write-only key: %v", err)
	}
}
