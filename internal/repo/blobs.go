package repo

import (
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/bufs"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/pack"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
)

// SaveStats counts what this session added to the repository.
type SaveStats struct {
	BlobsAdded  atomic.Int64
	BytesRaw    atomic.Int64 // plaintext bytes of new blobs
	BytesStored atomic.Int64 // bytes of packs written (what the repository grew by, parity excluded)
	Packs       atomic.Int64
	// IndexFiles and IndexBytes count the index files written (checkpoints,
	// Flush, SaveIndex) and their bytes.
	IndexFiles atomic.Int64
	IndexBytes atomic.Int64
	// Checkpoints counts the index files written while saving, before
	// Flush (see checkpoint.go).
	Checkpoints atomic.Int64
}

// Stats returns the session's counters.
func (r *Repository) Stats() *SaveStats { return &r.stats }

type packer struct {
	w    *pack.Writer
	keys []blobKey
	// out streams the pack into the backend (packstream.go); nil when it is
	// built in memory. spare is the second stream buffer of a finished
	// streaming packer, kept for its next pack.
	out   *packStream
	spare []byte
}

// reusable reports whether a finished packer's buffers are worth keeping:
// a streaming packer's two pieces, or a buffer of a whole pack.
func (p *packer) reusable(packSize int) bool {
	return p.spare != nil || cap(p.w.Bytes()) >= packSize
}

// compressBufs holds the buffers of compressed blob bodies: those blobs are
// compressed into, one for each SaveBlob in progress (the archiver's
// workers and savers, about twice GOMAXPROCS), free again once the pack has
// a copy; and those OpenBlob decrypts a compressed body into before
// decompressing it (a restore's workers), free again when it returns.
var compressBufs = bufs.NewList(2*runtime.GOMAXPROCS(0)+2, pack.CompressBound(4<<20))

// SaveBlob stores plaintext as a blob of type t unless the repository
// already holds it (dedup). It returns the blob id and whether it was new.
// Compression and hashing run in the caller's goroutine, so callers save
// from several goroutines to use several cores.
func (r *Repository) SaveBlob(ctx context.Context, t uint8, plaintext []byte) (ID, bool, error) {
	id := r.sec.BlobID(plaintext)
	added, err := r.SaveBlobWithID(ctx, t, id, plaintext)
	return id, added, err
}

// SaveBlobWithID is SaveBlob for a caller that already computed the id.
func (r *Repository) SaveBlobWithID(ctx context.Context, t uint8, id ID, plaintext []byte) (bool, error) {
	k := blobKey{id, t}
	if r.idx.Has(t, id) {
		return false, nil
	}
	r.mu.Lock()
	if r.upErr != nil {
		err := r.upErr
		r.mu.Unlock()
		return false, err
	}
	if r.inflight[k] {
		r.mu.Unlock()
		return false, nil
	}
	// Claim the blob before compressing, so two goroutines with the same
	// chunk do not both compress it.
	r.inflight[k] = true
	r.mu.Unlock()

	if err := r.packBlob(ctx, k, plaintext); err != nil {
		return false, err
	}
	r.stats.BlobsAdded.Add(1)
	r.stats.BytesRaw.Add(int64(len(plaintext)))
	return true, nil
}

func (r *Repository) addToPacker(ctx context.Context, t uint8, id ID, body []byte, compressed bool, rawLen int) error {
	r.mu.Lock()
	// A pack is closed before a blob would take it past pack_size (so its
	// buffer, allocated once at pack_size and reused, never grows) or past
	// the format's blob count. Back-pressure: a saver that would close a
	// pack while maxPending full packs still hold their buffers waits, so
	// memory stays bounded however many cores save; blobs that fit in the
	// open pack go on being added meanwhile.
	var p *packer
	for {
		if r.upErr != nil {
			err := r.upErr
			r.mu.Unlock()
			return err
		}
		p = r.packers[t]
		full := p != nil && p.w.Count() > 0 &&
			(p.w.Size()+len(body)+pack.TagSize+pack.RecordSize > r.cfg.PackSize || p.w.Count() >= pack.MaxBlobs)
		if !full {
			break
		}
		if r.pendingPacks < r.maxPending {
			r.packers[t] = nil
			r.pendingPacks++
			// Uploaded even if this blob fails below: its blobs are claimed.
			r.upload(ctx, p)
			p = nil
			break
		}
		r.waiting++
		r.packCond.Wait()
		r.waiting--
	}
	var err error
	if p == nil {
		var aead cipher.AEAD
		var E [32]byte
		if aead, E, err = r.sec.SealTo(crypto.PurposePack); err == nil {
			if p, err = r.newPacker(ctx, t, aead, E); err == nil {
				r.packers[t] = p
			} else if r.upErr == nil {
				// Sticky like a failed upload: the pack handed to upload
				// just before, if any, fails the same way.
				r.upErr = err
			}
		}
	}
	if err == nil {
		if p.out != nil {
			p.out.flushFor(p.w, len(body))
		}
		if _, err = p.w.Add(pack.BlobType(t), id, body, compressed, rawLen); err == nil {
			p.keys = append(p.keys, blobKey{id, t})
		}
	}
	r.mu.Unlock()
	return err
}

// maxPending is how many full packs may hold their buffers while they wait
// for or are in their upload (besides the packs being filled): 2, so that
// one pack uploads while the next one waits and a third fills; 1 with a
// backend.EarlySaver (the local backend), which hands a pack's buffer back
// once it is written and while the disk syncs, so the next pack can wait
// in that buffer instead of a third one. With 16 MiB packs that is 16 MiB
// less for a backup to a local directory, at the same speed (measured on
// the benchmark corpus; see docs/benchmarks.md).
func maxPending(be backend.Backend) int {
	if _, ok := be.(backend.EarlySaver); ok {
		return 1
	}
	return 2
}

// newPacker takes a finished packer from the free list or makes one: a
// data packer that streams (packstream.go) with two buffers of
// streamPiece, else one whose buffer holds a whole pack. Tree packs,
// usually small, are built in memory and grow as needed. Called with r.mu
// held.
func (r *Repository) newPacker(ctx context.Context, t uint8, aead cipher.AEAD, E [32]byte) (*packer, error) {
	if t == TreeBlob {
		return &packer{w: pack.NewWriter(aead, E)}, nil
	}
	var p *packer
	if n := len(r.free); n > 0 {
		p = r.free[n-1]
		r.free = r.free[:n-1]
		p.w.Reset(aead, E)
		p.keys = p.keys[:0]
	} else {
		size := r.cfg.PackSize
		if r.streams() {
			size = streamPiece
		}
		r.packBuffers++
		p = &packer{w: pack.NewWriterSize(aead, E, size)}
	}
	if r.streams() {
		if err := r.stage(ctx, p); err != nil {
			r.free = append(r.free, p)
			return nil, err
		}
	}
	return p, nil
}

// upload finishes a pack and stores it in the background, at most
// UploadConcurrency at a time. A failed or cancelled upload makes its error
// sticky (r.upErr): its blobs were claimed, so nothing may be saved as if
// they were stored. The caller has counted p in pendingPacks.
func (r *Repository) upload(ctx context.Context, p *packer) {
	// release ends the pack's claim on a pending slot and hands its buffer
	// to the next packer, as soon as the backend no longer reads it.
	release := sync.OnceFunc(func() {
		r.mu.Lock()
		r.pendingPacks--
		if len(r.free) < 2 && p.reusable(r.cfg.PackSize) {
			r.free = append(r.free, p)
		}
		r.packCond.Broadcast()
		r.mu.Unlock()
	})
	r.uploads.Add(1)
	go func() {
		defer r.uploads.Done()
		var err error
		select {
		case r.upSem <- struct{}{}:
			err = r.storePack(ctx, p, release)
			<-r.upSem
		case <-ctx.Done():
			err = ctx.Err()
			if p.out != nil {
				p.spare = p.out.abort()
				p.out = nil
			}
		}
		release()
		if err != nil {
			r.mu.Lock()
			if r.upErr == nil {
				r.upErr = err
			}
			r.packCond.Broadcast()
			r.mu.Unlock()
		}
	}()
}

// storePack finishes p and saves it (and its parity), then adds it to the
// index. It calls release once it no longer reads p, possibly before the
// pack is stored: p is then reused.
func (r *Repository) storePack(ctx context.Context, p *packer, release func()) error {
	// The stream is storePack's from here on: once release has handed p
	// to the next pack, p.out is that pack's.
	s := p.out
	p.out = nil
	data, blobs, err := p.w.Finish()
	if err != nil {
		if s != nil {
			p.spare = s.abort()
		}
		return err
	}
	keys := slices.Clone(p.keys)
	size := p.w.Size()
	if s != nil {
		var id ID
		id, p.spare, err = s.finish(data)
		if err != nil {
			return err
		}
		release() // every byte is in the staged object; the buffers are free
		if err := s.st.Commit(ctx, Hex(id)); err != nil && !errors.Is(err, backend.ErrExists) {
			return err
		}
		return r.packStored(ctx, id, size, blobs, keys)
	}
	id := ID(sha256.Sum256(data))
	name := Hex(id)
	if r.cfg.Parity != nil {
		coder, err := r.parityCoder()
		if err != nil {
			return err
		}
		par, err := coder.Encode(data)
		if err != nil {
			return fmt.Errorf("parity of pack %s: %w", name[:8], err)
		}
		// Parity first: a pack that exists always has its parity.
		if err := r.be.Save(ctx, backend.Handle{Type: backend.ParityFile, Name: name}, par); err != nil && !errors.Is(err, backend.ErrExists) {
			return err
		}
	}
	if err := backend.SaveEarly(ctx, r.be, backend.Handle{Type: backend.PackFile, Name: name}, data, release); err != nil && !errors.Is(err, backend.ErrExists) {
		return err
	}
	return r.packStored(ctx, id, size, blobs, keys)
}

// packStored records a pack that is now in the backend: in the index, in
// the session's counters and written packs (writing a checkpoint when one
// is due), and its blobs are no longer in flight.
func (r *Repository) packStored(ctx context.Context, id ID, size int, blobs []pack.Blob, keys []blobKey) error {
	ip := index.Pack{ID: id, Blobs: make([]index.Blob, len(blobs))}
	for i, b := range blobs {
		flags := uint8(0)
		if b.Compressed {
			flags = 1
		}
		ip.Blobs[i] = index.Blob{Type: uint8(b.Type), Flags: flags, ID: b.ID, Offset: b.Offset, Length: b.StoredLength, RawLength: b.RawLength}
	}
	r.idx.AddPack(ip)
	r.stats.BytesStored.Add(int64(size))
	r.stats.Packs.Add(1)
	now := r.Now()
	r.mu.Lock()
	cp := r.addWritten(ip, now)
	for _, k := range keys {
		delete(r.inflight, k)
	}
	r.mu.Unlock()
	if cp != nil {
		r.checkpoint(ctx, cp)
	}
	return nil
}

// Flush uploads the open packs, waits for every upload and writes an index
// file for the packs of this session that no checkpoint (checkpoint.go)
// lists yet. Call it before saving a snapshot that refers to them. It
// fails with ErrLockLapsed when a lock this handle holds has lapsed.
func (r *Repository) Flush(ctx context.Context) error {
	written, err := r.FlushPacks(ctx)
	if err != nil {
		return err
	}
	if len(written) == 0 {
		return nil
	}
	if err := r.checkLocks(); err != nil {
		return err
	}
	_, err = r.SaveIndex(ctx, &index.File{Packs: written})
	return err
}

// SaveIndex writes an index file and returns its name. KeyID is filled
// in. A full key signs it; a write-only key cannot, so the file is
// unsigned and recorded in the local cache as this client's own, which
// makes the client's later sessions trust it for deduplication
// (docs/repository-format.md, "Trust for deduplication").
func (r *Repository) SaveIndex(ctx context.Context, f *index.File) (ID, error) {
	f.KeyID = r.keyID
	data, err := f.Seal(r.sec)
	if err != nil {
		return ID{}, err
	}
	id := ID(sha256.Sum256(data))
	if err := r.be.Save(ctx, backend.Handle{Type: backend.IndexFile, Name: Hex(id)}, data); err != nil && !errors.Is(err, backend.ErrExists) {
		return ID{}, fmt.Errorf("writing index: %w", err)
	}
	r.stats.IndexFiles.Add(1)
	r.stats.IndexBytes.Add(int64(len(data)))
	r.cache.addOwnIndex(id)
	r.indexMu.Lock()
	if r.indexNames != nil {
		r.indexNames[id] = true
	}
	r.indexMu.Unlock()
	return id, nil
}

// IndexFile is one loaded index file.
type IndexFile struct {
	Name ID
	File *index.File
	Err  error
}

// LoadIndexFiles reads and decodes every index file (in parallel), without
// merging them. Files that fail are returned with Err set.
func (r *Repository) LoadIndexFiles(ctx context.Context) ([]IndexFile, error) {
	var names []ID
	var foreign []string
	err := r.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			foreign = append(foreign, fi.Name)
			return nil
		}
		names = append(names, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]IndexFile, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = IndexFile{Name: name}
			data, err := r.be.Load(ctx, backend.Handle{Type: backend.IndexFile, Name: Hex(name)}, 0, 0)
			if err == nil && sha256.Sum256(data) != name {
				err = errors.New("content does not match its name (corrupted)")
			}
			if err == nil {
				out[i].File, err = index.Open(r.sec, data)
			}
			if err != nil {
				out[i].Err = fmt.Errorf("index/%s: %w", Hex(name), err)
			}
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}

// LoadIndex merges every index file that no other supersedes. An index
// file that cannot be read is an error: run `repo repair` to rebuild it.
func (r *Repository) LoadIndex(ctx context.Context) error {
	files, err := r.LoadIndexFiles(ctx)
	if err != nil {
		return err
	}
	super := map[ID]bool{}
	own := r.cache.ownIndexes()
	for _, f := range files {
		if f.Err != nil {
			return fmt.Errorf("%w (run `bulwark repo repair` to rebuild the index)", f.Err)
		}
		// Only signed (or our own) index files may hide others: a write-only
		// client must not be able to make readers ignore signed indexes.
		if !f.File.Signed && !own[f.Name] {
			continue
		}
		for _, s := range f.File.Supersedes {
			super[s] = true
		}
	}
	names := make(map[ID]bool, len(files))
	for _, f := range files {
		names[f.Name] = true
		if !super[f.Name] {
			r.idx.AddFile(f.Name, f.File, f.File.Signed || own[f.Name])
		}
	}
	r.indexMu.Lock()
	r.indexNames = names
	r.indexMu.Unlock()
	return nil
}

// RefreshIndex brings an index loaded before a lock was taken up to date:
// when the repository's index files are no longer those it was loaded
// from (a prune or another backup ran in between), it loads the index
// again, in place of the old one, and reports true. Take the lock first,
// then refresh, before saving anything: data the stale index pointed to
// may have been pruned. Without a loaded index it loads one.
func (r *Repository) RefreshIndex(ctx context.Context) (bool, error) {
	r.indexMu.Lock()
	loaded := r.indexNames
	r.indexMu.Unlock()
	if loaded != nil {
		same, n := true, 0
		err := r.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
			id, err := ParseID(fi.Name)
			if err != nil {
				return nil // foreign entries are not index files (LoadIndexFiles)
			}
			n++
			same = same && loaded[id]
			return nil
		})
		if err != nil {
			return false, err
		}
		if same && n == len(loaded) {
			return false, nil
		}
	}
	old := r.idx
	r.idx = index.New()
	if err := r.LoadIndex(ctx); err != nil {
		r.idx = old
		return false, err
	}
	return true, nil
}

// aeadCache keeps the derived keys of recently read packs, so reading many
// blobs of one pack derives its key once.
type aeadCache struct {
	mu sync.Mutex
	m  map[ID]cipher.AEAD
}

// PackAEAD derives the key of a pack from its trailer.
func (r *Repository) PackAEAD(ctx context.Context, packID ID) (cipher.AEAD, error) {
	r.aeads.mu.Lock()
	cached, ok := r.aeads.m[packID]
	r.aeads.mu.Unlock()
	if ok {
		return cached, nil
	}
	h := backend.Handle{Type: backend.PackFile, Name: Hex(packID)}
	fi, err := r.be.Stat(ctx, h)
	if err != nil {
		return nil, err
	}
	n := int64(pack.TrailerSize)
	if fi.Size < n {
		return nil, fmt.Errorf("%s: %d bytes is too short for a pack", h, fi.Size)
	}
	tail, err := r.be.Load(ctx, h, fi.Size-n, int(n))
	if err != nil {
		return nil, err
	}
	E, _, err := pack.ReadTrailer(tail, fi.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	aead, err := r.sec.OpenFrom(crypto.PurposePack, E)
	if err != nil {
		return nil, err
	}
	r.aeads.mu.Lock()
	if len(r.aeads.m) > 4096 {
		clear(r.aeads.m)
	}
	r.aeads.m[packID] = aead
	r.aeads.mu.Unlock()
	return aead, nil
}

// LoadBlob reads, decrypts, decompresses and verifies one blob.
func (r *Repository) LoadBlob(ctx context.Context, t uint8, id ID, dst []byte) ([]byte, error) {
	if !r.CanRead() {
		return nil, crypto.ErrWriteOnly
	}
	loc, ok := r.idx.Lookup(t, id)
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", Hex(id), ErrBlobNotFound)
	}
	aead, err := r.PackAEAD(ctx, loc.Pack)
	if err != nil {
		return nil, err
	}
	h := backend.Handle{Type: backend.PackFile, Name: Hex(loc.Pack)}
	stored, err := r.be.Load(ctx, h, int64(loc.Offset), int(loc.Length))
	if err != nil {
		return nil, err
	}
	return r.OpenBlob(aead, loc, id, stored, dst)
}

// ErrBlobNotFound means no index lists the blob.
var ErrBlobNotFound = errors.New("not in the index")

// OpenBlob decrypts and decompresses one stored blob and checks its id. The
// plaintext is written into dst[:0] when it fits (else into a new slice)
// and stays valid until dst is used again; dst must not overlap stored.
// Nothing else is allocated: a compressed body is decrypted into a kept
// buffer (compressBufs), an uncompressed one straight into dst.
func (r *Repository) OpenBlob(aead cipher.AEAD, loc index.Location, id ID, stored, dst []byte) ([]byte, error) {
	out, err := openBlob(aead, loc, stored, dst)
	if err != nil {
		return nil, fmt.Errorf("blob %s in pack %s: %w", Short(id), Short(loc.Pack), err)
	}
	if len(out) != int(loc.RawLength) {
		return nil, fmt.Errorf("blob %s in pack %s: %d bytes, index says %d", Short(id), Short(loc.Pack), len(out), loc.RawLength)
	}
	if r.sec.BlobID(out) != id {
		return nil, fmt.Errorf("blob %s in pack %s: content does not match its id", Short(id), Short(loc.Pack))
	}
	return out, nil
}

// openBlob is OpenBlob without the checks of length and id.
func openBlob(aead cipher.AEAD, loc index.Location, stored, dst []byte) ([]byte, error) {
	if loc.Flags&1 == 0 {
		return pack.AppendOpenBlob(dst[:0], aead, int(loc.Offset), stored)
	}
	bp := compressBufs.Get(len(stored))
	defer compressBufs.Put(bp)
	body, err := pack.AppendOpenBlob(*bp, aead, int(loc.Offset), stored)
	if err != nil {
		return nil, err
	}
	return pack.Decompress(dst[:0], body, int(loc.RawLength))
}

// SaveBlobCopy stores a blob even when the index already lists it (in a
// pack about to be removed): prune's repacking and repair use it. Blobs
// saved twice in this session are still stored once.
func (r *Repository) SaveBlobCopy(ctx context.Context, t uint8, id ID, plaintext []byte) error {
	k := blobKey{id, t}
	r.mu.Lock()
	if r.inflight[k] || r.copied[k] {
		r.mu.Unlock()
		return nil
	}
	r.inflight[k] = true
	if r.copied == nil {
		r.copied = map[blobKey]bool{}
	}
	r.copied[k] = true
	r.mu.Unlock()
	if err := r.packBlob(ctx, k, plaintext); err != nil {
		r.mu.Lock()
		delete(r.copied, k)
		r.mu.Unlock()
		return err
	}
	return nil
}

// packBlob compresses a claimed blob (its key already in inflight) into a
// pooled buffer and adds it to its packer; on failure it drops the claim.
func (r *Repository) packBlob(ctx context.Context, k blobKey, plaintext []byte) error {
	bp := compressBufs.Get(pack.CompressBound(len(plaintext)))
	body, compressed := pack.Compress(*bp, plaintext)
	err := r.addToPacker(ctx, k.t, k.id, body, compressed, len(plaintext))
	compressBufs.Put(bp)
	if err != nil {
		r.mu.Lock()
		delete(r.inflight, k)
		r.mu.Unlock()
	}
	return err
}

// FlushPacks uploads the open packs and waits for every upload, like Flush,
// but returns the session's packs instead of writing an index file: the
// caller (prune, repair) writes one index that also supersedes others.
// It returns the packs uploaded since the last Flush or FlushPacks that no
// index file lists: a session that stores with SaveBlobCopy writes no
// checkpoints, so that is all of them.
func (r *Repository) FlushPacks(ctx context.Context) ([]index.Pack, error) {
	r.mu.Lock()
	ps := r.packers
	r.packers = [2]*packer{}
	r.mu.Unlock()
	for _, p := range ps {
		switch {
		case p == nil:
		case p.w.Count() > 0:
			r.mu.Lock()
			r.pendingPacks++
			r.upload(ctx, p)
			r.mu.Unlock()
		case p.out != nil:
			p.out.abort() // an empty pack is not stored
		}
	}
	r.uploads.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	written := r.written
	r.written = nil
	// What SaveBlobCopy copied is now in written; a later prune on this
	// handle must copy again what it needs.
	r.copied = nil
	return written, r.upErr
}

// PackHeader reads and decrypts a pack's header (full keys only). size is
// the pack's length (from List or Stat); 0 makes it Stat the pack.
func (r *Repository) PackHeader(ctx context.Context, packID ID, size int64) ([]pack.Blob, cipher.AEAD, error) {
	h := backend.Handle{Type: backend.PackFile, Name: Hex(packID)}
	if size == 0 {
		fi, err := r.be.Stat(ctx, h)
		if err != nil {
			return nil, nil, err
		}
		size = fi.Size
	}
	n := int64(pack.TailHint)
	if size < n {
		n = size
	}
	if n < pack.TrailerSize {
		return nil, nil, fmt.Errorf("%s: %d bytes is too short for a pack", h, size)
	}
	tail, err := r.be.Load(ctx, h, size-n, int(n))
	if err != nil {
		return nil, nil, err
	}
	return r.ParsePack(packID, tail, size, func(off int64, n int) ([]byte, error) { return r.be.Load(ctx, h, off, n) })
}

// ParsePack decodes a pack's header from its tail (the last bytes of the
// pack, at least the trailer); load fetches more when the header is longer
// than the tail.
func (r *Repository) ParsePack(packID ID, tail []byte, size int64, load func(off int64, n int) ([]byte, error)) ([]pack.Blob, cipher.AEAD, error) {
	name := "data/" + Hex(packID)
	E, hl, err := pack.ReadTrailer(tail, size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	aead, err := r.sec.OpenFrom(crypto.PurposePack, E)
	if err != nil {
		return nil, nil, err
	}
	hct, ok := pack.HeaderFromTail(tail, hl)
	if !ok {
		if hct, err = load(size-int64(pack.TrailerSize)-int64(hl), hl); err != nil {
			return nil, nil, err
		}
	}
	blobs, err := pack.ParseHeader(aead, hct, size)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return blobs, aead, nil
}

// parityCoder builds the Reed-Solomon coder once (setting it up costs more
// than encoding a pack).
func (r *Repository) parityCoder() (*parity.Coder, error) {
	r.coderOnce.Do(func() { r.coder, r.coderErr = parity.NewCoder(*r.cfg.Parity) })
	return r.coder, r.coderErr
}
