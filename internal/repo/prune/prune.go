package prune

// Prune removes the data that no snapshot needs.
//
// It runs under an exclusive lock (backups hold shared ones), so nothing
// else writes while it decides. The steps, and why each is safe:
//
//  1. Load every index file. One that cannot be read stops prune: the packs
//     it lists would look unreferenced and be deleted. Files superseded by
//     a signed file are ignored (a write-only key cannot retire entries).
//     A pack listed in several live files takes its listing from a signed
//     one when there is one.
//  2. Load every snapshot and walk every tree reachable from them, marking
//     the blobs in use. A snapshot or tree that cannot be read, or a used
//     blob that no index lists (or whose pack is gone), stops prune before
//     it changes anything: never delete what a damaged snapshot may need;
//     `repo check` names the damage and `repo repair` salvages it.
//  3. List data/. For a blob stored in several packs one copy is chosen
//     (signed listings first, then the pack with the larger share of used
//     bytes, then the pack id); the other copies count as unused. Every pack
//     is then classified: no used blob, remove; every blob used, keep;
//     partly used, repack when its unused bytes reach MaxUnusedPercent of
//     its size, else keep. A pack no live index lists (left by an
//     interrupted backup or prune) is removed; foreign names are left alone.
//  4. Trust. Index entries written by write-only keys are unsigned: such a
//     key could list blobs it never stored. Every entry of an unsigned
//     listing whose pack is kept is verified (read, decrypted, id checked)
//     before it goes into the new, signed index; one that fails stops prune
//     before anything is deleted. Blobs repacked out of such packs are
//     verified as they are copied.
//  5. Repack: read each pack to repack, decrypt and verify every used blob
//     and store it again (repo.SaveBlobCopy), then upload (FlushPacks).
//  6. Write one index file listing every kept pack and every new pack,
//     superseding every old index file. From here on readers ignore the old
//     files, so the packs about to be removed are already unreferenced.
//  7. Remove the old index files, then the removed and repacked packs, then
//     their parity objects and parity objects whose pack is gone.
//
// A crash at any point leaves a valid repository: before step 6 the old
// index is in force and the new packs are unreferenced; after it, the new
// index is in force and the leftovers (old index files, unreferenced packs,
// orphaned parity) are what the next prune removes.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/pack"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// DefaultMaxUnusedPercent is the CLI's default for Options.MaxUnusedPercent.
const DefaultMaxUnusedPercent = 5

// Options tune Prune.
type Options struct {
	// MaxUnusedPercent: a partly used pack is repacked when its unused
	// bytes are at least this share of its size; 0 repacks every partly
	// used pack. The command line uses DefaultMaxUnusedPercent.
	MaxUnusedPercent float64
	// DryRun computes and reports what prune would do and changes nothing.
	DryRun bool
	// Lock is an exclusive lock the caller already holds (forget --prune).
	// Nil: Prune takes one, waiting up to LockWait, and releases it.
	Lock     *repo.Lock
	LockWait time.Duration
	// IgnoreSnapshots are treated as already removed, so that
	// forget --dry-run --prune reports what prune would do after forget.
	IgnoreSnapshots []repo.ID
	// Workers read trees and packs in parallel (default: GOMAXPROCS, 2..8).
	Workers  int
	Progress *Progress
	// Retention is how far ahead object locks are extended on a backend
	// with object lock (see retention.go); 0: the backend's period, else
	// DefaultRetention.
	Retention time.Duration
	// Now is the clock for lock expiry (default time.Now).
	Now func() time.Time
}

// Progress is updated while Prune runs.
type Progress struct {
	mu          sync.Mutex
	phase       string
	Done, Total atomic.Int64 // items of the current phase (Total 0: unknown)
}

// Phase returns the current phase ("loading index", "reading trees", ...).
func (p *Progress) Phase() string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.phase
}

func (p *Progress) start(phase string, total int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase = phase
	p.mu.Unlock()
	p.Done.Store(0)
	p.Total.Store(int64(total))
}

func (p *Progress) add(n int64) {
	if p != nil {
		p.Done.Add(n)
	}
}

// PackStats counts packs and their bytes.
type PackStats struct {
	Packs int   `json:"packs"`
	Bytes int64 `json:"bytes"`
}

func (s *PackStats) add(size int64) { s.Packs++; s.Bytes += size }

// Report is what Prune did (or, with DryRun, would do). Byte counts are
// sizes of pack files; parity objects are not counted.
type Report struct {
	DryRun     bool `json:"dry_run"`
	IndexFiles int  `json:"index_files"`
	Snapshots  int  `json:"snapshots"`
	Trees      int  `json:"trees"`
	UsedBlobs  int  `json:"used_blobs"`
	// UsedBytes is the stored size of one copy of every used blob.
	UsedBytes int64 `json:"used_bytes"`
	// DuplicateBlobs are used blobs stored in more than one pack.
	DuplicateBlobs int       `json:"duplicate_blobs"`
	Before         PackStats `json:"before"`
	Keep           PackStats `json:"keep"`
	// KeepUnusedBytes are unused blob bytes left in kept packs (below the
	// repack threshold).
	KeepUnusedBytes int64     `json:"keep_unused_bytes"`
	Repack          PackStats `json:"repack"`
	// RepackUsedBytes are the used bytes of repacked packs, copied again.
	RepackUsedBytes int64     `json:"repack_used_bytes"`
	Remove          PackStats `json:"remove"`       // indexed packs without a used blob
	Unreferenced    PackStats `json:"unreferenced"` // packs no index lists
	// Written are the new packs of repacking (an estimate in a dry run).
	Written PackStats `json:"written"`
	// Verified are kept packs listed only by write-only keys, whose every
	// entry was verified (to be verified, in a dry run).
	Verified      PackStats `json:"verified"`
	VerifiedBlobs int       `json:"verified_blobs"`
	// MissingPacks are listed by the index but absent from data/; none of
	// their blobs is used (else prune stops), so they are dropped from the
	// index.
	MissingPacks []string `json:"missing_packs,omitempty"`
	// Locked are packs kept only because their object lock has not expired
	// (they would be removed or repacked).
	Locked PackStats `json:"locked"`
	// LockedLeft counts unreferenced packs, old index files and parity left
	// in place because they are still locked.
	LockedLeft int `json:"locked_left"`
	// LocksExtended counts objects whose lock prune extended.
	LocksExtended int       `json:"locks_extended"`
	ForeignFiles  []string  `json:"foreign_files,omitempty"` // in data/, not pack names: left alone
	After         PackStats `json:"after"`
	BytesFreed    int64     `json:"bytes_freed"`
	// NewIndex is the index file that replaced the others ("" when the
	// index did not need rewriting).
	NewIndex          string  `json:"new_index,omitempty"`
	IndexFilesRemoved int     `json:"index_files_removed"`
	ParityRemoved     int     `json:"parity_removed"`
	Duration          float64 `json:"duration_seconds"`
	NothingToDo       bool    `json:"nothing_to_do"`
}

// ErrDamaged wraps every reason prune stops to protect data: an unreadable
// index file, snapshot or tree, a used blob that is missing, or an entry
// written by a write-only key that does not verify.
var ErrDamaged = errors.New("prune stopped before changing anything")

// damagedIn is damaged, unless the error came from ctx being done.
func damagedIn(ctx context.Context, format string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return damaged(format, args...)
}

func damaged(format string, args ...any) error {
	return fmt.Errorf("%w: %s; run `bulwark repo check --read-data` to see the damage and `bulwark repo repair` to fix it",
		ErrDamaged, fmt.Sprintf(format, args...))
}

type action uint8

const (
	actKeep action = iota
	actRepack
	actRemove
)

type blobKey struct {
	id repo.ID
	t  uint8
}

type packInfo struct {
	id       repo.ID
	size     int64
	present  bool
	signed   bool
	blobs    []index.Blob
	total    int64 // stored bytes of every listed blob
	used     int64 // stored bytes of chosen copies
	usedAll  int64 // stored bytes of used blobs, every copy counted
	action   action
	chosen   []int // listing positions of chosen copies (repack)
	verified bool
	locked   bool // under an object lock that has not expired: keep
}

type copyRef struct {
	p *packInfo
	i int
}

func (c copyRef) blob() index.Blob { return c.p.blobs[c.i] }

func (c copyRef) loc() index.Location {
	b := c.blob()
	return index.Location{Pack: c.p.id, Type: b.Type, Flags: b.Flags, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength}
}

type pruner struct {
	r       *repo.Repository
	be      backend.Backend
	o       Options
	rep     *Report
	files   []repo.IndexFile
	packs   map[repo.ID]*packInfo
	order   []*packInfo // present indexed packs, by id
	first   map[blobKey]copyRef
	extra   map[blobKey][]copyRef // further copies of a blob
	used    map[blobKey]struct{}
	chosen  map[blobKey]copyRef
	unref   []backend.FileInfo
	parity  []backend.Handle // parity objects to remove
	written []index.Pack
	ret     backend.Retainer // nil unless the backend has object lock
}

// Prune removes unreferenced data from r (see the design comment above).
// r needs a full key; its loaded index, if any, is not used (prune reads
// every index file itself). Errors from the steps before the new index is written
// (among them every ErrDamaged) leave the repository as it was, apart from
// new, unreferenced packs. The Report is returned with an error too, with
// what was found up to then.
func Prune(ctx context.Context, r *repo.Repository, o Options) (*Report, error) {
	start := time.Now()
	if !r.CanRead() {
		return nil, fmt.Errorf("prune needs a full key: %w", crypto.ErrWriteOnly)
	}
	if o.MaxUnusedPercent < 0 || o.MaxUnusedPercent > 100 {
		return nil, fmt.Errorf("max unused percent %g outside 0..100", o.MaxUnusedPercent)
	}
	if o.Workers <= 0 {
		o.Workers = min(max(runtime.GOMAXPROCS(0), 2), 8)
	}
	if o.Lock == nil {
		l, err := r.Lock(ctx, true, o.LockWait)
		if err != nil {
			return nil, err
		}
		defer l.Unlock()
	}
	p := &pruner{r: r, be: r.Backend(), o: o, rep: &Report{DryRun: o.DryRun},
		packs: map[repo.ID]*packInfo{}, first: map[blobKey]copyRef{}, extra: map[blobKey][]copyRef{},
		used: map[blobKey]struct{}{}, chosen: map[blobKey]copyRef{}}
	p.ret, _ = backend.AsRetainer(p.be)
	err := p.run(ctx)
	p.rep.Duration = time.Since(start).Seconds()
	if err != nil {
		return p.rep, err
	}
	return p.rep, nil
}

func (p *pruner) run(ctx context.Context) error {
	if err := p.loadIndex(ctx); err != nil {
		return err
	}
	if err := p.listPacks(ctx); err != nil {
		return err
	}
	snaps, err := p.loadSnapshots(ctx)
	if err != nil {
		return err
	}
	if err := p.mark(ctx, snaps); err != nil {
		return err
	}
	p.classify()
	if err := p.keepLocked(ctx); err != nil {
		return err
	}
	if err := p.listParity(ctx); err != nil {
		return err
	}
	p.rep.ParityRemoved = len(p.parity)
	p.rep.NothingToDo = p.rep.NothingToDo && len(p.parity) == 0
	if p.o.DryRun {
		return nil
	}
	if !p.rep.NothingToDo {
		if err := p.verifyUnsigned(ctx); err != nil {
			return err
		}
		if err := p.repack(ctx); err != nil {
			return err
		}
		if err := p.commit(ctx); err != nil {
			return err
		}
	}
	return p.extendLocks(ctx, snaps)
}

func (p *pruner) loadIndex(ctx context.Context) error {
	p.o.Progress.start("loading index", 0)
	files, err := p.r.LoadIndexFiles(ctx)
	if err != nil {
		return fmt.Errorf("loading index: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return repo.Hex(files[i].Name) < repo.Hex(files[j].Name) })
	super := map[repo.ID]bool{}
	for _, f := range files {
		if f.Err != nil {
			return damaged("%v (prune cannot tell which packs it lists, so it would delete them)", f.Err)
		}
		// Only a full key replaces index files (prune, repair). Supersedes
		// in an unsigned file would let a write-only key hide signed
		// entries; ignoring them keeps more packs, never fewer.
		if f.File.Signed {
			for _, s := range f.File.Supersedes {
				super[s] = true
			}
		}
	}
	p.files = files
	p.rep.IndexFiles = len(files)
	for _, f := range files {
		if super[f.Name] {
			continue
		}
		for _, ip := range f.File.Packs {
			pi := p.packs[ip.ID]
			if pi == nil {
				pi = &packInfo{id: ip.ID}
				p.packs[ip.ID] = pi
			} else if pi.signed || !f.File.Signed {
				continue
			}
			pi.signed = f.File.Signed
			pi.blobs = ip.Blobs
		}
	}
	return nil
}

func (p *pruner) listPacks(ctx context.Context) error {
	p.o.Progress.start("listing packs", 0)
	err := p.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, err := repo.ParseID(fi.Name)
		if err != nil {
			p.rep.ForeignFiles = append(p.rep.ForeignFiles, "data/"+fi.Name)
			return nil
		}
		p.rep.Before.add(fi.Size)
		if pi := p.packs[id]; pi != nil {
			pi.present, pi.size = true, fi.Size
			return nil
		}
		p.unref = append(p.unref, fi)
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing packs: %w", err)
	}
	sort.Slice(p.unref, func(i, j int) bool { return p.unref[i].Name < p.unref[j].Name })
	for _, pi := range p.packs {
		if pi.present {
			p.order = append(p.order, pi)
		} else {
			p.rep.MissingPacks = append(p.rep.MissingPacks, repo.Hex(pi.id))
		}
	}
	sort.Strings(p.rep.MissingPacks)
	sort.Slice(p.order, func(i, j int) bool { return repo.Hex(p.order[i].id) < repo.Hex(p.order[j].id) })
	for _, pi := range p.order {
		for i, b := range pi.blobs {
			pi.total += int64(b.Length)
			k := blobKey{b.ID, b.Type}
			c := copyRef{pi, i}
			if _, ok := p.first[k]; ok {
				p.extra[k] = append(p.extra[k], c)
			} else {
				p.first[k] = c
			}
		}
	}
	return nil
}

// copies returns every stored copy of k, signed listings first.
func (p *pruner) copies(k blobKey) []copyRef {
	c, ok := p.first[k]
	if !ok {
		return nil
	}
	out := append([]copyRef{c}, p.extra[k]...)
	if len(out) > 1 {
		sort.SliceStable(out, func(i, j int) bool { return out[i].p.signed && !out[j].p.signed })
	}
	return out
}

func (p *pruner) loadSnapshots(ctx context.Context) ([]*repo.Snapshot, error) {
	p.o.Progress.start("reading snapshots", 0)
	snaps, bad, err := p.r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading snapshots: %w", err)
	}
	if len(bad) > 0 {
		return nil, damaged("snapshot %s cannot be read: %v", repo.Hex(bad[0].ID), bad[0].Err)
	}
	ignore := map[repo.ID]bool{}
	for _, id := range p.o.IgnoreSnapshots {
		ignore[id] = true
	}
	var out []*repo.Snapshot
	for _, s := range snaps {
		if !ignore[s.ID] {
			out = append(out, s)
		}
	}
	p.rep.Snapshots = len(out)
	return out, nil
}

// treeJob is a tree to read: where names it for error messages.
type treeJob struct {
	id         repo.ID
	snap, path string
}

// mark walks every tree reachable from snaps with a pool of workers and
// marks the trees and data blobs they use.
func (p *pruner) mark(ctx context.Context, snaps []*repo.Snapshot) error {
	p.o.Progress.start("reading trees", 0)
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		queue   []treeJob
		pending int
		failed  error
	)
	push := func(j treeJob) { // mu held
		k := blobKey{j.id, repo.TreeBlob}
		if _, ok := p.used[k]; ok {
			return
		}
		p.used[k] = struct{}{}
		queue = append(queue, j)
		pending++
	}
	mu.Lock()
	for _, s := range snaps {
		push(treeJob{id: s.Tree, snap: repo.Short(s.ID), path: "/"})
	}
	mu.Unlock()
	fail := func(err error) { // mu held
		if failed == nil {
			failed = err
		}
		cond.Broadcast()
	}
	var wg sync.WaitGroup
	for w := 0; w < p.o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			for {
				for len(queue) == 0 && pending > 0 && failed == nil {
					cond.Wait()
				}
				if failed != nil || (len(queue) == 0 && pending == 0) {
					return
				}
				j := queue[len(queue)-1]
				queue = queue[:len(queue)-1]
				mu.Unlock()
				t, err := p.loadTree(ctx, j.id)
				mu.Lock()
				if err == nil {
					err = ctx.Err()
				}
				if err != nil {
					if ctx.Err() != nil {
						fail(ctx.Err())
					} else {
						fail(damaged("snapshot %s: tree %s of %s: %v", j.snap, repo.Hex(j.id), j.path, err))
					}
					return
				}
				p.rep.Trees++
				p.o.Progress.add(1)
				for i := range t.Nodes {
					n := &t.Nodes[i]
					switch {
					case n.Subtree != nil:
						push(treeJob{id: repo.ID(*n.Subtree), snap: j.snap, path: path.Join(j.path, n.Name)})
					case n.Type == tree.TypeFile:
						for _, ref := range n.Content {
							if ref.IsHole() {
								continue
							}
							k := blobKey{repo.ID(ref.ID), repo.DataBlob}
							if _, ok := p.first[k]; !ok {
								fail(damaged("snapshot %s: file %s: chunk %s is in no index (or its pack is missing)",
									j.snap, path.Join(j.path, n.Name), repo.Hex(k.id)))
								return
							}
							p.used[k] = struct{}{}
						}
					}
				}
				pending--
				if pending == 0 || len(queue) > 0 {
					cond.Broadcast()
				}
			}
		}()
	}
	wg.Wait()
	return failed
}

// loadTree reads a tree from any stored copy that verifies.
func (p *pruner) loadTree(ctx context.Context, id repo.ID) (*tree.Tree, error) {
	refs := p.copies(blobKey{id, repo.TreeBlob})
	if len(refs) == 0 {
		return nil, errors.New("in no index (or its pack is missing)")
	}
	var firstErr error
	for _, c := range refs {
		t, err := p.readTree(ctx, c, id)
		if err == nil {
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func (p *pruner) readTree(ctx context.Context, c copyRef, id repo.ID) (*tree.Tree, error) {
	aead, err := p.r.PackAEAD(ctx, c.p.id)
	if err != nil {
		return nil, err
	}
	loc := c.loc()
	stored, err := p.be.Load(ctx, packHandle(c.p.id), int64(loc.Offset), int(loc.Length))
	if err != nil {
		return nil, err
	}
	plain, err := p.r.OpenBlob(aead, loc, id, stored, nil)
	if err != nil {
		return nil, err
	}
	return tree.Decode(plain)
}

func packHandle(id repo.ID) backend.Handle {
	return backend.Handle{Type: backend.PackFile, Name: repo.Hex(id)}
}

// classify chooses one copy of every used blob and decides each pack's fate.
func (p *pruner) classify() {
	rep := p.rep
	for k := range p.used {
		for _, c := range p.copies(k) {
			c.p.usedAll += int64(c.blob().Length)
		}
	}
	for k := range p.used {
		refs := p.copies(k)
		if len(refs) > 1 {
			rep.DuplicateBlobs++
			sort.SliceStable(refs, func(i, j int) bool { return better(refs[i].p, refs[j].p) })
		}
		p.chosen[k] = refs[0]
	}
	p.decide()
	// A used blob whose chosen copy is in a pack to repack, and that has
	// another copy in a kept pack, need not be copied: use the kept copy.
	switched := false
	for k, c := range p.chosen {
		if c.p.action != actRepack {
			continue
		}
		for _, o := range p.copies(k) {
			if o.p.action == actKeep {
				p.chosen[k] = o
				switched = true
				break
			}
		}
	}
	if switched {
		p.decide()
	}
	p.tally()
}

// tally fills the report's figures from the packs' actions.
func (p *pruner) tally() {
	rep := p.rep
	rep.Keep, rep.KeepUnusedBytes, rep.Verified, rep.VerifiedBlobs = PackStats{}, 0, PackStats{}, 0
	rep.Repack, rep.RepackUsedBytes, rep.Remove, rep.Locked = PackStats{}, 0, PackStats{}, PackStats{}
	rep.Unreferenced, rep.UsedBytes, rep.Written = PackStats{}, 0, PackStats{}
	for _, pi := range p.order {
		if pi.locked && pi.used < pi.total {
			rep.Locked.add(pi.size)
		}
		switch pi.action {
		case actKeep:
			rep.Keep.add(pi.size)
			rep.KeepUnusedBytes += pi.total - pi.used
			if !pi.signed {
				rep.Verified.add(pi.size)
				rep.VerifiedBlobs += len(pi.blobs)
			}
		case actRepack:
			rep.Repack.add(pi.size)
			rep.RepackUsedBytes += pi.used
		case actRemove:
			rep.Remove.add(pi.size)
		}
	}
	for _, fi := range p.unref {
		rep.Unreferenced.add(fi.Size)
	}
	rep.UsedBlobs = len(p.used)
	for _, c := range p.chosen {
		rep.UsedBytes += int64(c.blob().Length)
	}
	if rep.Repack.Packs > 0 {
		// Estimate: the used bytes plus a header record per blob and a
		// trailer per pack; the real figure replaces it after repacking.
		est := rep.RepackUsedBytes
		n := 0
		for _, pi := range p.order {
			if pi.action == actRepack {
				n += len(pi.chosen)
			}
		}
		est += int64(n*pack.RecordSize) + pack.MinHeaderLen + pack.TrailerSize
		packSize := int64(p.r.Config().PackSize)
		rep.Written = PackStats{Packs: int((est + packSize - 1) / packSize), Bytes: est}
	}
	rep.After = PackStats{Packs: rep.Keep.Packs + rep.Written.Packs, Bytes: rep.Keep.Bytes + rep.Written.Bytes}
	rep.BytesFreed = rep.Before.Bytes - rep.After.Bytes
	rep.NothingToDo = rep.Repack.Packs == 0 && rep.Remove.Packs == 0 && rep.Unreferenced.Packs == 0 &&
		rep.Verified.Packs == 0 && len(rep.MissingPacks) == 0 && len(p.files) <= 1
}

// listParity finds the parity objects to remove: those of packs that will
// be gone (removed, repacked, unreferenced or already missing). That
// includes parity left by a backup killed between writing a pack's parity
// and the pack, and by a prune killed between removing a pack and its
// parity. Foreign names are left alone.
func (p *pruner) listParity(ctx context.Context) error {
	err := p.be.List(ctx, backend.ParityFile, func(fi backend.FileInfo) error {
		if !backend.IsID(fi.Name) {
			return nil
		}
		id, _ := repo.ParseID(fi.Name)
		if pi := p.packs[id]; pi != nil && pi.present && pi.action == actKeep {
			return nil
		}
		p.parity = append(p.parity, backend.Handle{Type: backend.ParityFile, Name: fi.Name})
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing parity: %w", err)
	}
	sort.Slice(p.parity, func(i, j int) bool { return p.parity[i].Name < p.parity[j].Name })
	return nil
}

// better orders candidate packs for a blob's kept copy.
func better(a, b *packInfo) bool {
	if a.signed != b.signed {
		return a.signed
	}
	// Larger share of used bytes first (compare usedAll/total exactly).
	x, y := a.usedAll*b.total, b.usedAll*a.total
	if x != y {
		return x > y
	}
	return repo.Hex(a.id) < repo.Hex(b.id)
}

// decide computes each pack's used bytes from the chosen copies and its
// action. Called again after copies were switched to kept packs, it keeps
// every kept pack kept (each only gained used bytes) and may turn a pack to
// repack into one to remove (when it lost all its chosen copies).
func (p *pruner) decide() {
	for _, pi := range p.order {
		pi.used, pi.chosen = 0, pi.chosen[:0]
	}
	for _, c := range p.chosen {
		c.p.used += int64(c.blob().Length)
		c.p.chosen = append(c.p.chosen, c.i)
	}
	for _, pi := range p.order {
		sort.Ints(pi.chosen)
		switch {
		case pi.locked:
			pi.action = actKeep
		case pi.used == 0:
			pi.action = actRemove
		case pi.used == pi.total:
			pi.action = actKeep
		case float64(pi.total-pi.used) >= p.o.MaxUnusedPercent/100*float64(pi.size):
			pi.action = actRepack
		default:
			pi.action = actKeep
		}
	}
}

// loadPack reads a whole pack and derives its key from the trailer.
func (p *pruner) loadPack(ctx context.Context, pi *packInfo) ([]byte, func(index.Location, repo.ID, []byte) ([]byte, error), error) {
	data, err := p.be.Load(ctx, packHandle(pi.id), 0, 0)
	if err != nil {
		return nil, nil, err
	}
	if len(data) < pack.TrailerSize {
		return nil, nil, fmt.Errorf("data/%s: %d bytes is too short for a pack", repo.Hex(pi.id), len(data))
	}
	E, _, err := pack.ReadTrailer(data[len(data)-pack.TrailerSize:], int64(len(data)))
	if err != nil {
		return nil, nil, fmt.Errorf("data/%s: %w", repo.Hex(pi.id), err)
	}
	aead, err := p.r.Secrets().OpenFrom(crypto.PurposePack, E)
	if err != nil {
		return nil, nil, err
	}
	open := func(loc index.Location, id repo.ID, dst []byte) ([]byte, error) {
		end := int64(loc.Offset) + int64(loc.Length)
		if end > int64(len(data)) {
			return nil, fmt.Errorf("blob %s: bytes %d..%d lie beyond the end of pack %s (%d bytes)",
				repo.Short(id), loc.Offset, end, repo.Short(pi.id), len(data))
		}
		return p.r.OpenBlob(aead, loc, id, data[loc.Offset:end], dst)
	}
	return data, open, nil
}

// each runs fn for every pack with p.o.Workers workers; the first error
// stops the others.
func (p *pruner) each(ctx context.Context, packs []*packInfo, fn func(ctx context.Context, pi *packInfo) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *packInfo)
	var wg sync.WaitGroup
	for w := 0; w < min(p.o.Workers, 4); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pi := range work {
				if err := fn(ctx, pi); err != nil {
					cancel(err)
				}
				p.o.Progress.add(1)
			}
		}()
	}
feed:
	for _, pi := range packs {
		select {
		case work <- pi:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// verifyUnsigned checks every entry of kept packs listed only by
// write-only keys.
func (p *pruner) verifyUnsigned(ctx context.Context) error {
	var todo []*packInfo
	for _, pi := range p.order {
		if pi.action == actKeep && !pi.signed {
			todo = append(todo, pi)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	p.o.Progress.start("verifying packs of write-only keys", len(todo))
	return p.each(ctx, todo, func(ctx context.Context, pi *packInfo) error {
		data, open, err := p.loadPack(ctx, pi)
		if err != nil {
			return damagedIn(ctx, "pack %s (written by a write-only key): %v", repo.Hex(pi.id), err)
		}
		if sha256.Sum256(data) != pi.id {
			return damaged("pack %s (written by a write-only key): content does not match its name (corrupted)", repo.Hex(pi.id))
		}
		var buf []byte
		for i, b := range pi.blobs {
			c := copyRef{pi, i}
			out, err := open(c.loc(), b.ID, buf)
			if err != nil {
				return damaged("pack %s: index entry %d of a write-only key does not verify: %v", repo.Hex(pi.id), i, err)
			}
			buf = out[:0]
		}
		pi.verified = true
		return nil
	})
}

// repack copies the chosen blobs of the packs to repack into new packs.
func (p *pruner) repack(ctx context.Context) error {
	var todo []*packInfo
	for _, pi := range p.order {
		if pi.action == actRepack {
			todo = append(todo, pi)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	p.o.Progress.start("repacking", len(todo))
	// Uploads started by SaveBlobCopy outlive a worker's call: they get
	// the caller's context, not the one each cancels when it returns.
	saveCtx := ctx
	err := p.each(ctx, todo, func(ctx context.Context, pi *packInfo) error {
		_, open, err := p.loadPack(ctx, pi)
		if err != nil {
			return damagedIn(ctx, "pack %s: %v", repo.Hex(pi.id), err)
		}
		var buf []byte
		for _, i := range pi.chosen {
			c := copyRef{pi, i}
			b := c.blob()
			plain, err := open(c.loc(), b.ID, buf)
			if err != nil {
				return damaged("pack %s: %v", repo.Hex(pi.id), err)
			}
			if err := p.r.SaveBlobCopy(saveCtx, b.Type, b.ID, plain); err != nil {
				return fmt.Errorf("repacking pack %s: %w", repo.Short(pi.id), err)
			}
			buf = plain[:0]
		}
		return nil
	})
	if err != nil {
		return err
	}
	written, err := p.r.FlushPacks(ctx)
	if err != nil {
		return fmt.Errorf("repacking: %w", err)
	}
	// Every blob copied must be in a new pack before the index says so: an
	// invariant check, so a bug in the copy path stops prune before it
	// deletes anything.
	stored := map[blobKey]bool{}
	for _, w := range written {
		for _, b := range w.Blobs {
			stored[blobKey{b.ID, b.Type}] = true
		}
	}
	for _, pi := range todo {
		for _, i := range pi.chosen {
			if b := pi.blobs[i]; !stored[blobKey{b.ID, b.Type}] {
				return fmt.Errorf("repacking pack %s: blob %s is in no new pack ; nothing was deleted",
					repo.Short(pi.id), repo.Short(b.ID))
			}
		}
	}
	p.written = written
	p.rep.Written = PackStats{}
	for _, w := range written {
		fi, err := p.be.Stat(ctx, packHandle(w.ID))
		if err != nil {
			return fmt.Errorf("repacking: %w", err)
		}
		p.rep.Written.add(fi.Size)
	}
	p.rep.After = PackStats{Packs: p.rep.Keep.Packs + p.rep.Written.Packs, Bytes: p.rep.Keep.Bytes + p.rep.Written.Bytes}
	p.rep.BytesFreed = p.rep.Before.Bytes - p.rep.After.Bytes
	return nil
}

// commit writes the new index and removes what it no longer references.
func (p *pruner) commit(ctx context.Context) error {
	rep := p.rep
	needIndex := len(p.files) > 1 || rep.Repack.Packs > 0 || rep.Remove.Packs > 0 || rep.Verified.Packs > 0 || len(rep.MissingPacks) > 0
	if needIndex {
		p.o.Progress.start("writing index", 0)
		f := &index.File{}
		for _, ix := range p.files {
			f.Supersedes = append(f.Supersedes, ix.Name)
		}
		for _, pi := range p.order {
			if pi.action == actKeep {
				f.Packs = append(f.Packs, index.Pack{ID: pi.id, Blobs: pi.blobs})
			}
		}
		f.Packs = append(f.Packs, p.written...)
		name, err := p.r.SaveIndex(ctx, f)
		if err != nil {
			return fmt.Errorf("writing the new index: %w", err)
		}
		rep.NewIndex = repo.Hex(name)
		// The new index is durable: the old files are superseded.
		var old []backend.Handle
		for _, ix := range p.files {
			if ix.Name != name {
				old = append(old, backend.Handle{Type: backend.IndexFile, Name: repo.Hex(ix.Name)})
			}
		}
		old, err = p.removable(ctx, old)
		if err != nil {
			return err
		}
		n, err := p.remove(ctx, "removing old index files", old)
		rep.IndexFilesRemoved = n
		if err != nil {
			return err
		}
	}
	written := map[string]bool{}
	for _, w := range p.written {
		written[repo.Hex(w.ID)] = true
	}
	var packs []backend.Handle
	for _, pi := range p.order {
		if pi.action != actKeep {
			packs = append(packs, packHandle(pi.id))
		}
	}
	for _, fi := range p.unref {
		packs = append(packs, backend.Handle{Type: backend.PackFile, Name: fi.Name})
	}
	packs, err := p.removable(ctx, packs)
	if err != nil {
		return err
	}
	if _, err := p.remove(ctx, "removing packs", packs); err != nil {
		return err
	}
	// Parity last: a pack that exists always has its parity.
	var parity []backend.Handle
	for _, h := range p.parity {
		if !written[h.Name] {
			parity = append(parity, h)
		}
	}
	if parity, err = p.removable(ctx, parity); err != nil {
		return err
	}
	n, err := p.remove(ctx, "removing parity", parity)
	rep.ParityRemoved = n
	return err
}

// remove deletes objects in parallel; a missing one is not an error.
func (p *pruner) remove(ctx context.Context, phase string, hs []backend.Handle) (int, error) {
	if len(hs) == 0 {
		return 0, nil
	}
	p.o.Progress.start(phase, len(hs))
	var n atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	work := make(chan backend.Handle)
	for w := 0; w < min(p.o.Workers, 4); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				err := p.be.Remove(ctx, h)
				switch {
				case err == nil:
					n.Add(1)
				case errors.Is(err, backend.ErrNotExist):
				default:
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("removing %s: %w", h, err)
					}
					mu.Unlock()
				}
				p.o.Progress.add(1)
			}
		}()
	}
	for _, h := range hs {
		work <- h
	}
	close(work)
	wg.Wait()
	return int(n.Load()), firstErr
}
