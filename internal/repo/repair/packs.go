package repair

// Step 1 (packs) and step 2 (index). See the package documentation.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/pack"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
)

type blobKey struct {
	t  uint8
	id repo.ID
}

// damage is a pack that scanPacks could not index.
type damage struct {
	id     repo.ID
	reason string
	intact bool   // the bytes match the name (the header is unreadable): parity cannot help
	data   []byte // set when the pack was rebuilt but could not be written back
}

type repairer struct {
	r     *repo.Repository
	be    backend.Backend
	o     Options
	prog  *Progress
	rep   *Report
	coder *parity.Coder // nil when the config has no parity

	// Set by load, read-only afterwards.
	sizes    map[repo.ID]int64        // packs in storage
	parities map[repo.ID]bool         // parity objects in storage
	names    []repo.ID                // every index file, readable or not
	current  map[repo.ID][]index.Blob // packs of the index files no other supersedes
	listed   map[repo.ID][]index.Blob // packs of any readable index file
	trusted  map[repo.ID]bool         // packs listed in a signed index file
	unsigned int                      // current index files without a signature
	stale    []repo.ID                // readable index files already superseded

	mu      sync.Mutex // guards rep.Packs, packs and damaged during scanPacks
	packs   map[repo.ID][]index.Blob
	damaged []damage

	idx      *index.Index     // packs and newPacks, built by fixDamaged
	newPacks []index.Pack     // written by this run
	salvaged map[blobKey]bool // blobs copied into new packs (or to be, in a dry run)
	trees    map[repo.ID][]byte
	memo     map[repo.ID]*treeRes
	empty    *repo.ID
	pending  []pendingSnap
	remove   []repo.ID // index files to remove once the new one is written
}

func newRepairer(r *repo.Repository, o Options, rep *Report) *repairer {
	return &repairer{r: r, be: r.Backend(), o: o, prog: o.Progress, rep: rep,
		sizes: map[repo.ID]int64{}, parities: map[repo.ID]bool{}, current: map[repo.ID][]index.Blob{},
		listed: map[repo.ID][]index.Blob{}, trusted: map[repo.ID]bool{}, packs: map[repo.ID][]index.Blob{},
		salvaged: map[blobKey]bool{}, trees: map[repo.ID][]byte{}, memo: map[repo.ID]*treeRes{}}
}

func packHandle(id repo.ID) backend.Handle {
	return backend.Handle{Type: backend.PackFile, Name: repo.Hex(id)}
}

func parityHandle(id repo.ID) backend.Handle {
	return backend.Handle{Type: backend.ParityFile, Name: repo.Hex(id)}
}

// load lists packs and parity objects and reads every index file.
func (rp *repairer) load(ctx context.Context) error {
	if p := rp.r.Config().Parity; p != nil {
		c, err := parity.NewCoder(*p)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		rp.coder = c
	}
	err := rp.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		if id, err := repo.ParseID(fi.Name); err == nil {
			rp.sizes[id] = fi.Size
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing packs: %w", err)
	}
	err = rp.be.List(ctx, backend.ParityFile, func(fi backend.FileInfo) error {
		if id, err := repo.ParseID(fi.Name); err == nil {
			rp.parities[id] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing parity objects: %w", err)
	}
	files, err := rp.r.LoadIndexFiles(ctx)
	if err != nil {
		return fmt.Errorf("reading index files: %w", err)
	}
	superseded := map[repo.ID]bool{}
	for _, f := range files {
		rp.names = append(rp.names, f.Name)
		if f.Err != nil {
			rp.rep.Index.Unreadable = append(rp.rep.Index.Unreadable, FileError{repo.Hex(f.Name), f.Err.Error()})
			continue
		}
		for _, s := range f.File.Supersedes {
			superseded[s] = true
		}
	}
	slices.SortFunc(rp.names, func(a, b repo.ID) int { return bytes.Compare(a[:], b[:]) })
	rp.rep.Index.Files = len(files)
	for _, f := range files {
		if f.Err != nil {
			continue
		}
		for _, p := range f.File.Packs {
			if _, ok := rp.listed[p.ID]; !ok {
				rp.listed[p.ID] = p.Blobs
			}
			if f.File.Signed {
				rp.trusted[p.ID] = true
			}
			if !superseded[f.Name] {
				rp.current[p.ID] = append(rp.current[p.ID], p.Blobs...)
			}
		}
		switch {
		case superseded[f.Name]:
			rp.stale = append(rp.stale, f.Name)
		case !f.File.Signed:
			rp.unsigned++
		}
	}
	for id := range rp.parities {
		if _, ok := rp.sizes[id]; !ok {
			rp.rep.Packs.ParityOrphans = append(rp.rep.Packs.ParityOrphans, repo.Hex(id))
		}
	}
	for id := range rp.current {
		if _, ok := rp.sizes[id]; !ok {
			rp.rep.Packs.Missing = append(rp.rep.Packs.Missing, repo.Hex(id))
		}
	}
	sort.Strings(rp.rep.Packs.ParityOrphans)
	sort.Strings(rp.rep.Packs.Missing)
	var total int64
	for _, s := range rp.sizes {
		total += s
	}
	rp.prog.TotalPacks.Store(int64(len(rp.sizes)))
	rp.prog.TotalBytes.Store(total)
	return nil
}

func sortedIDs[V any](m map[repo.ID]V) []repo.ID {
	ids := make([]repo.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b repo.ID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// scanPacks reads every pack with o.Workers goroutines: intact packs are
// indexed, their parity checked; damaged ones are left for fixDamaged.
func (rp *repairer) scanPacks(ctx context.Context) error {
	rp.prog.Phase.Store(int32(PhasePacks))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan repo.ID)
	var wg sync.WaitGroup
	for range rp.o.Workers {
		wg.Go(func() {
			var buf []byte
			for id := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := rp.scanPack(ctx, id, &buf); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, id := range sortedIDs(rp.sizes) {
		select {
		case jobs <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

func (rp *repairer) scanPack(ctx context.Context, id repo.ID, buf *[]byte) error {
	data, err := rp.be.Load(ctx, packHandle(id), 0, 0)
	if errors.Is(err, backend.ErrNotExist) {
		return nil // removed since listed: nothing to repair or index
	}
	if err != nil {
		return err
	}
	rp.prog.Packs.Add(1)
	rp.prog.Bytes.Add(int64(len(data)))
	rp.mu.Lock()
	rp.rep.Packs.Checked++
	rp.rep.Packs.BytesRead += int64(len(data))
	rp.mu.Unlock()
	if sha256.Sum256(data) != id {
		rp.addDamage(damage{id: id, reason: "content does not match its name"})
		return nil
	}
	if err := rp.checkParity(ctx, id, data); err != nil {
		return err
	}
	rp.indexPack(id, data, buf)
	return nil
}

func (rp *repairer) addDamage(d damage) {
	rp.mu.Lock()
	rp.damaged = append(rp.damaged, d)
	rp.mu.Unlock()
}

// sliceLoader serves ParsePack's reads from a pack held in memory.
func sliceLoader(data []byte) func(off int64, n int) ([]byte, error) {
	return func(off int64, n int) ([]byte, error) {
		if off < 0 || n < 0 || off+int64(n) > int64(len(data)) {
			return nil, io.ErrUnexpectedEOF
		}
		return data[off : off+int64(n)], nil
	}
}

func toIndex(b pack.Blob) index.Blob {
	var flags uint8
	if b.Compressed {
		flags = 1
	}
	return index.Blob{Type: uint8(b.Type), Flags: flags, ID: b.ID, Offset: b.Offset, Length: b.StoredLength, RawLength: b.RawLength}
}

func location(packID repo.ID, b index.Blob) index.Location {
	return index.Location{Pack: packID, Type: b.Type, Flags: b.Flags, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength}
}

// indexPack reads the header of an intact pack and adds the pack to the
// rebuilt index. Blobs of packs that no signed index vouches for are
// verified first (see the package documentation, "Trust").
func (rp *repairer) indexPack(id repo.ID, data []byte, buf *[]byte) {
	blobs, aead, err := rp.r.ParsePack(id, data, int64(len(data)), sliceLoader(data))
	if err != nil {
		rp.addDamage(damage{id: id, reason: fmt.Sprintf("unreadable header: %v", err), intact: true})
		return
	}
	verify := !rp.trusted[id]
	recs := make([]index.Blob, 0, len(blobs))
	var rejected []RejectedBlob
	for _, b := range blobs {
		ib := toIndex(b)
		if verify {
			stored := data[b.Offset : b.Offset+b.StoredLength]
			out, err := rp.r.OpenBlob(aead, location(id, ib), b.ID, stored, *buf)
			if err != nil {
				rejected = append(rejected, RejectedBlob{Pack: repo.Hex(id), Blob: repo.Hex(b.ID), Error: err.Error()})
				continue
			}
			if cap(out) > cap(*buf) {
				*buf = out[:0]
			}
		}
		recs = append(recs, ib)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.packs[id] = recs
	if verify {
		rp.rep.Packs.Verified++
	}
	if _, ok := rp.current[id]; !ok {
		rp.rep.Packs.Unindexed++
	}
	rp.rep.Packs.Rejected = append(rp.rep.Packs.Rejected, rejected...)
}

// checkParity writes the parity object of an intact pack when it is
// missing or differs from the one the pack's bytes give.
func (rp *repairer) checkParity(ctx context.Context, id repo.ID, data []byte) error {
	if rp.coder == nil {
		return nil
	}
	want, err := rp.coder.Encode(data)
	if err != nil {
		return fmt.Errorf("parity of pack %s: %w", repo.Short(id), err)
	}
	h := parityHandle(id)
	reason := "missing"
	if rp.parities[id] {
		have, err := rp.be.Load(ctx, h, 0, 0)
		switch {
		case errors.Is(err, backend.ErrNotExist):
		case err != nil:
			return err
		case bytes.Equal(have, want):
			return nil
		default:
			reason = "damaged"
		}
	}
	if !rp.o.DryRun {
		if reason == "missing" {
			err = rp.be.Save(ctx, h, want)
		}
		if reason == "damaged" || errors.Is(err, backend.ErrExists) {
			err = rp.be.Replace(ctx, h, want)
		}
		if errors.Is(err, backend.ErrForbidden) {
			rp.warn("%s: %s, but the backend refuses to replace it: %v", h, reason, err)
			return nil
		}
		if err != nil {
			return err
		}
	}
	rp.prog.ParityWritten.Add(1)
	rp.mu.Lock()
	rp.rep.Packs.ParityWritten = append(rp.rep.Packs.ParityWritten, ParityWrite{Pack: repo.Hex(id), Reason: reason})
	rp.mu.Unlock()
	return nil
}

func (rp *repairer) warn(format string, args ...any) {
	rp.mu.Lock()
	rp.rep.Warnings = append(rp.rep.Warnings, fmt.Sprintf(format, args...))
	rp.mu.Unlock()
}

// fixDamaged repairs damaged packs from parity, then salvages the blobs
// of those it cannot repair, once every intact pack is known (so blobs
// that an intact pack also holds are not copied).
func (rp *repairer) fixDamaged(ctx context.Context) error {
	rp.prog.Phase.Store(int32(PhaseDamaged))
	list := rp.damaged
	rp.damaged = nil
	slices.SortFunc(list, func(a, b damage) int { return bytes.Compare(a.id[:], b.id[:]) })
	var unrepaired []damage
	var buf []byte
	for _, d := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.intact {
			unrepaired = append(unrepaired, d)
			continue
		}
		data, err := rp.be.Load(ctx, packHandle(d.id), 0, 0)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		fixed, reason, err := rp.parityRepair(ctx, d.id, data)
		if err != nil {
			return err
		}
		if reason != "" {
			d.reason += "; " + reason
			d.data = fixed // the rebuilt pack, when only writing it back failed
			unrepaired = append(unrepaired, d)
			continue
		}
		rp.prog.PacksRepaired.Add(1)
		if err := rp.checkParity(ctx, d.id, fixed); err != nil {
			return err
		}
		rp.indexPack(d.id, fixed, &buf)
		if rp.o.DryRun {
			rp.keepTrees(d.id, fixed) // storage still holds the damaged bytes
		}
	}
	unrepaired = append(unrepaired, rp.damaged...) // repaired, but with an unreadable header
	rp.damaged = nil

	rp.idx = index.New()
	for id, blobs := range rp.packs {
		rp.idx.AddPack(index.Pack{ID: id, Blobs: blobs})
	}
	for _, d := range unrepaired {
		data := d.data
		if data == nil {
			var err error
			data, err = rp.be.Load(ctx, packHandle(d.id), 0, 0)
			if errors.Is(err, backend.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
		}
		if err := rp.salvage(ctx, d, data); err != nil {
			return err
		}
	}
	return rp.flush(ctx)
}

// keepTrees keeps the trees of a pack that a dry run rebuilt in memory,
// for the snapshot walk.
func (rp *repairer) keepTrees(id repo.ID, data []byte) {
	blobs, aead, err := rp.r.ParsePack(id, data, int64(len(data)), sliceLoader(data))
	if err != nil {
		return
	}
	for _, b := range blobs {
		if b.Type != pack.Tree {
			continue
		}
		ib := toIndex(b)
		if plain, err := rp.r.OpenBlob(aead, location(id, ib), b.ID, data[b.Offset:b.Offset+b.StoredLength], nil); err == nil {
			rp.trees[b.ID] = plain
		}
	}
}

// flush uploads the packs of salvaged blobs and new trees.
func (rp *repairer) flush(ctx context.Context) error {
	if rp.o.DryRun {
		return nil
	}
	written, err := rp.r.FlushPacks(ctx)
	if err != nil {
		return fmt.Errorf("writing new packs: %w", err)
	}
	for _, p := range written {
		rp.idx.AddPack(p)
	}
	rp.newPacks = append(rp.newPacks, written...)
	rp.rep.Packs.NewPacks = len(rp.newPacks)
	return nil
}

// parityRepair rebuilds a damaged pack from its parity object and writes
// it back. reason says why it could not, and is empty on success; fixed
// is also returned when only writing it back failed.
func (rp *repairer) parityRepair(ctx context.Context, id repo.ID, data []byte) (fixed []byte, reason string, err error) {
	if !rp.parities[id] {
		if rp.coder == nil {
			return nil, "parity is off", nil
		}
		return nil, "no parity object", nil
	}
	obj, err := rp.be.Load(ctx, parityHandle(id), 0, 0)
	if errors.Is(err, backend.ErrNotExist) {
		return nil, "no parity object", nil
	}
	if err != nil {
		return nil, "", err
	}
	hdr, err := parity.Parse(obj)
	if err != nil {
		return nil, err.Error(), nil
	}
	var shards []int
	if rp.coder != nil {
		fixed, shards, err = rp.coder.Repair(data, obj)
	} else {
		fixed, shards, err = parity.Repair(data, obj)
	}
	if err != nil {
		return nil, err.Error(), nil
	}
	if sha256.Sum256(fixed) != id {
		return nil, "parity: the rebuilt pack does not match its name", nil
	}
	rec := RepairedPack{ID: repo.Hex(id), Shards: shards}
	if int64(len(data)) != hdr.PackLength {
		rec.Size = int64(len(data))
	}
	if !rp.o.DryRun {
		err := rp.be.Replace(ctx, packHandle(id), fixed)
		if errors.Is(err, backend.ErrForbidden) {
			return fixed, fmt.Sprintf("rebuilt from parity, but the backend refuses to write it back (%v)", err), nil
		}
		if err != nil {
			return nil, "", err
		}
	}
	rp.rep.Packs.Repaired = append(rp.rep.Packs.Repaired, rec)
	return fixed, "", nil
}

// has reports whether the rebuilt repository holds a blob.
func (rp *repairer) has(t uint8, id repo.ID) bool {
	if rp.salvaged[blobKey{t, id}] {
		return true
	}
	_, ok := rp.idx.Lookup(t, id)
	return ok
}

// salvage copies the blobs of a pack that cannot be repaired, as far as
// they still decrypt and match their ids, into new packs.
func (rp *repairer) salvage(ctx context.Context, d damage, data []byte) error {
	dp := DamagedPack{ID: repo.Hex(d.id), Size: rp.sizes[d.id], Error: d.reason}
	var recs []index.Blob
	blobs, aead, err := rp.r.ParsePack(d.id, data, int64(len(data)), sliceLoader(data))
	if err == nil {
		dp.Source = "header"
		for _, b := range blobs {
			recs = append(recs, toIndex(b))
		}
	} else {
		if !d.intact {
			dp.Error += fmt.Sprintf("; header: %v", err)
		}
		if recs = rp.listed[d.id]; len(recs) > 0 {
			dp.Source = "index"
		}
		// The blobs' key comes from E in the trailer, if that survived.
		aead = nil
		if n := len(data); n >= pack.TrailerSize {
			E := [32]byte(data[n-pack.TrailerSize : n-pack.TrailerSize+pack.EphemeralSize])
			if a, err := rp.r.Secrets().OpenFrom(crypto.PurposePack, E); err == nil {
				aead = a
			}
		}
	}
	for _, b := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rp.has(b.Type, b.ID) {
			dp.BlobsElsewhere++
			continue
		}
		end := int64(b.Offset) + int64(b.Length)
		if aead == nil || end > int64(len(data)) {
			dp.BlobsLost++
			continue
		}
		plain, err := rp.r.OpenBlob(aead, location(d.id, b), b.ID, data[b.Offset:end], nil)
		if err != nil {
			dp.BlobsLost++
			continue
		}
		if !rp.o.DryRun {
			if err := rp.r.SaveBlobCopy(ctx, b.Type, b.ID, plain); err != nil {
				return fmt.Errorf("salvaging blob %s of pack %s: %w", repo.Short(b.ID), repo.Short(d.id), err)
			}
		}
		rp.salvaged[blobKey{b.Type, b.ID}] = true
		if b.Type == repo.TreeBlob {
			rp.trees[b.ID] = plain
		}
		dp.BlobsSalvaged++
	}
	rp.prog.PacksDamaged.Add(1)
	rp.prog.BlobsSalvaged.Add(int64(dp.BlobsSalvaged))
	rp.prog.BlobsLost.Add(int64(dp.BlobsLost))
	rp.rep.Packs.Damaged = append(rp.rep.Packs.Damaged, dp)
	return nil
}

// writeIndex writes one index file for the rebuilt index, superseding
// every other, when the current index files differ from it; otherwise it
// only removes index files that are already superseded.
func (rp *repairer) writeIndex(ctx context.Context) error {
	rp.prog.Phase.Store(int32(PhaseWrite))
	if err := rp.flush(ctx); err != nil {
		return err
	}
	rebuilt := map[repo.ID][]index.Blob{}
	for id, blobs := range rp.packs {
		if len(blobs) > 0 {
			rebuilt[id] = blobs
		}
	}
	for _, p := range rp.newPacks {
		rebuilt[p.ID] = p.Blobs
	}
	ir := &rp.rep.Index
	var reasons []string
	if n := len(ir.Unreadable); n > 0 {
		reasons = append(reasons, fmt.Sprintf("%d unreadable index files", n))
	}
	if rp.unsigned > 0 {
		reasons = append(reasons, fmt.Sprintf("%d unsigned index files (their packs are now verified)", rp.unsigned))
	}
	var gone, added, differ int
	for id, blobs := range rp.current {
		nb, ok := rebuilt[id]
		switch {
		case !ok:
			gone++
		case !sameBlobs(blobs, nb):
			differ++
		}
	}
	for id := range rebuilt {
		if _, ok := rp.current[id]; !ok {
			added++
		}
	}
	if gone > 0 {
		reasons = append(reasons, fmt.Sprintf("%d indexed packs are missing or damaged", gone))
	}
	if added > 0 {
		reasons = append(reasons, fmt.Sprintf("%d packs are not in the index", added))
	}
	if differ > 0 {
		reasons = append(reasons, fmt.Sprintf("%d packs are indexed differently from their headers", differ))
	}
	if n := len(rp.salvaged); n > 0 && rp.o.DryRun {
		reasons = append(reasons, fmt.Sprintf("%d salvaged blobs and new trees go into new packs", n))
	}
	ir.Reasons = reasons
	if len(reasons) == 0 {
		rp.remove = rp.stale
		return nil
	}
	f := &index.File{Supersedes: rp.names}
	for _, id := range sortedIDs(rebuilt) {
		f.Packs = append(f.Packs, index.Pack{ID: id, Blobs: rebuilt[id]})
		ir.Blobs += len(rebuilt[id])
	}
	ir.Packs = len(f.Packs)
	ir.Rewritten = true
	rp.remove = rp.names
	if rp.o.DryRun {
		return nil
	}
	name, err := rp.r.SaveIndex(ctx, f)
	if err != nil {
		return err
	}
	ir.Written = repo.Hex(name)
	return nil
}

// sameBlobs reports whether two listings of a pack hold the same records.
func sameBlobs(a, b []index.Blob) bool {
	if len(a) != len(b) {
		return false
	}
	cmp := func(x, y index.Blob) int {
		if c := int(x.Offset) - int(y.Offset); c != 0 {
			return c
		}
		if c := bytes.Compare(x.ID[:], y.ID[:]); c != 0 {
			return c
		}
		return int(x.Type) - int(y.Type)
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}
