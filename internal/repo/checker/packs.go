package checker

// Packs and parity: existence, headers against the index, and reading
// packs whole (ReadData).

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/pack"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
)

// indexEntry is one blob of a pack as an index file lists it.
type indexEntry struct {
	index.Blob
	file repo.ID // the index file
}

// addPack records the blobs that index file name lists for pack id. Two
// index files may list the same pack (a repair, concurrent writers); their
// entries are merged by offset, and entries that disagree are errors.
func (c *checker) addPack(name, id repo.ID, blobs []index.Blob) {
	p := c.packs[id]
	if p == nil {
		p = &packInfo{id: id, size: -1}
		c.packs[id] = p
	}
	p.indexes = append(p.indexes, name)
	have := make(map[uint32]int, len(p.blobs))
	for i, e := range p.blobs {
		have[e.Offset] = i
	}
	for _, b := range blobs {
		if i, ok := have[b.Offset]; ok {
			if p.blobs[i].Blob != b {
				c.errorf(object(backend.IndexFile, name), "pack %s: blob at offset %d is %s, but %s lists %s there",
					object(backend.PackFile, id), b.Offset, describeIndexBlob(b), object(backend.IndexFile, p.blobs[i].file), describeIndexBlob(p.blobs[i].Blob))
			}
			continue
		}
		p.blobs = append(p.blobs, indexEntry{b, name})
	}
	slices.SortFunc(p.blobs, func(a, b indexEntry) int { return cmp.Compare(a.Offset, b.Offset) })
}

func blobTypeName(t uint8) string {
	if t == index.TreeBlob {
		return "tree"
	}
	if t == index.DataBlob {
		return "data"
	}
	return fmt.Sprintf("type-%d", t)
}

func describeIndexBlob(b index.Blob) string {
	return fmt.Sprintf("%s blob %s (%d bytes stored, %d raw, flags %#x)", blobTypeName(b.Type), repo.Short(b.ID), b.Length, b.RawLength, b.Flags)
}

func describePackBlob(b pack.Blob) string {
	flags := 0
	if b.Compressed {
		flags = 1
	}
	return fmt.Sprintf("%s blob %s (%d bytes stored, %d raw, flags %#x)", b.Type, repo.Short(b.ID), b.StoredLength, b.RawLength, flags)
}

// findDuplicates records, for blobs listed in more than one pack, the packs
// other than the one the merged index chose.
func (c *checker) findDuplicates() {
	for id, p := range c.packs {
		for _, b := range p.blobs {
			loc, ok := c.idx.Lookup(b.Type, b.ID)
			if ok && loc.Pack != id {
				k := blobKey{b.ID, b.Type}
				c.dups[k] = append(c.dups[k], id)
			}
		}
	}
}

// sortedPacks returns the indexed packs in id order.
func (c *checker) sortedPacks() []*packInfo {
	out := make([]*packInfo, 0, len(c.packs))
	for _, p := range c.packs {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *packInfo) int { return strings.Compare(repo.Hex(a.id), repo.Hex(b.id)) })
	return out
}

// checkPacks checks that indexed packs exist, reports unindexed ones,
// selects the packs to read, and checks the headers of the others.
func (c *checker) checkPacks(ctx context.Context) {
	c.findDuplicates()
	listed := c.listed[backend.PackFile]
	all := c.sortedPacks()
	var present []*packInfo
	for _, p := range all {
		size, ok := listed[repo.Hex(p.id)]
		if !ok {
			p.bad = true
			c.errorf(object(backend.PackFile, p.id), "missing: %s lists it with %d blobs (run `bulwark repo repair` to salvage what is left)",
				indexNames(p.indexes), len(p.blobs))
			continue
		}
		p.size = size
		present = append(present, p)
	}
	// Packs no index lists are checked too (their header, and with ReadData
	// their bytes): when an index file is lost, they hold its blobs. They
	// are reported at the end (unreferenced), when it is known whether
	// blobs are missing from the index.
	for _, name := range sortedNames(listed) {
		id, _ := repo.ParseID(name)
		if c.packs[id] == nil {
			p := &packInfo{id: id, size: listed[name]}
			c.unreferenced = append(c.unreferenced, p)
			c.packs[id] = p
			present = append(present, p)
		}
	}
	slices.SortFunc(present, func(a, b *packInfo) int { return strings.Compare(repo.Hex(a.id), repo.Hex(b.id)) })
	if c.o.ReadData {
		ids := make([]repo.ID, len(present))
		for i, p := range present {
			ids[i] = p.id
		}
		for i, sel := range c.o.Subset.pick(ids, c.o.Rand) {
			present[i].read = sel
		}
	}
	var todo []*packInfo
	for _, p := range present {
		if !p.read {
			todo = append(todo, p)
		}
	}
	c.prog.start("packs", len(todo))
	c.parallel(ctx, len(todo), func(i int) {
		c.checkHeader(ctx, todo[i])
		c.prog.Done.Add(1)
	})
}

// reportUnreferenced warns about the packs no index lists.
func (c *checker) reportUnreferenced(context.Context) {
	why := "left by an interrupted backup or prune; `bulwark repo prune` removes it"
	if c.badIndex || c.notIndexed.Load() {
		why = "perhaps listed by an index file that is lost or damaged: `bulwark repo repair` rebuilds the index from the packs"
	}
	for _, p := range c.unreferenced {
		c.warnf(object(backend.PackFile, p.id), "not referenced by any index (%s)", why)
	}
}

func indexNames(ids []repo.ID) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = object(backend.IndexFile, id)
	}
	return strings.Join(names, ", ")
}

// checkHeader reads a pack's header (or, with a write-only key, its
// trailer) and compares it with the index.
func (c *checker) checkHeader(ctx context.Context, p *packInfo) {
	name := object(backend.PackFile, p.id)
	if !c.r.CanRead() {
		n := int64(pack.TrailerSize)
		if p.size < n {
			p.bad = true
			c.errorf(name, "%d bytes is too short for a pack (truncated)", p.size)
			return
		}
		tail, err := c.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: repo.Hex(p.id)}, p.size-n, int(n))
		if err != nil {
			if ctx.Err() == nil {
				p.bad = true
				c.errorf(name, "cannot read: %v", err)
			}
			return
		}
		c.checkTrailer(p, tail)
		return
	}
	blobs, _, err := c.r.PackHeader(ctx, p.id, p.size)
	if err != nil {
		if ctx.Err() == nil {
			p.bad = true
			c.errorf(name, "%s", trimObject(err, name))
		}
		return
	}
	c.compareHeader(p, blobs)
}

// checkTrailer is the header check of a write-only key: the trailer gives
// the header's length, so the bytes available to blobs, and the index
// entries must fit in them.
func (c *checker) checkTrailer(p *packInfo, tail []byte) {
	name := object(backend.PackFile, p.id)
	_, hl, err := pack.ReadTrailer(tail, p.size)
	if err != nil {
		p.bad = true
		c.errorf(name, "%v", err)
		return
	}
	dataLen := p.size - int64(pack.TrailerSize) - int64(hl)
	n := (hl - pack.MinHeaderLen) / pack.RecordSize
	if len(p.blobs) > n {
		c.errorf(name, "the index lists %d blobs, but the pack header has room for %d", len(p.blobs), n)
		return
	}
	var sum int64
	for _, b := range p.blobs {
		sum += int64(b.Length)
		if end := int64(b.Offset) + int64(b.Length); end > dataLen {
			c.errorf(object(backend.IndexFile, b.file), "pack %s: %s at offset %d ends at %d, past the pack's blobs (%d bytes): the pack is truncated or the index is wrong",
				name, describeIndexBlob(b.Blob), b.Offset, end, dataLen)
			return
		}
	}
	if len(p.blobs) == n && sum != dataLen {
		c.errorf(name, "the index lists all %d blobs with %d bytes, but the pack holds %d bytes of blobs", n, sum, dataLen)
	}
}

// compareHeader checks every index entry of p against the pack header.
func (c *checker) compareHeader(p *packInfo, hdr []pack.Blob) {
	byOff := make(map[uint32]pack.Blob, len(hdr))
	for _, b := range hdr {
		byOff[b.Offset] = b
	}
	bad := 0
	for _, e := range p.blobs {
		h, ok := byOff[e.Offset]
		var msg string
		switch {
		case !ok:
			msg = fmt.Sprintf("lists %s at offset %d, but the pack header has no blob starting there", describeIndexBlob(e.Blob), e.Offset)
		case uint8(h.Type) != e.Type || h.ID != e.ID || h.StoredLength != e.Length || h.RawLength != e.RawLength || h.Compressed != (e.Flags&1 != 0):
			msg = fmt.Sprintf("lists %s at offset %d, but the pack header has %s there", describeIndexBlob(e.Blob), e.Offset, describePackBlob(h))
		default:
			continue
		}
		bad++
		if bad <= maxBlobErrors {
			// The header is authenticated, so it is the index that is wrong.
			c.errorf(object(backend.IndexFile, e.file), "pack %s: %s", object(backend.PackFile, p.id), msg)
		}
	}
	if bad > maxBlobErrors {
		c.errorf(object(backend.PackFile, p.id), "%d more index entries disagree with the pack header", bad-maxBlobErrors)
	}
}

// checkParity checks that every indexed pack has a parity object and parses
// the header of those whose pack is not read whole.
func (c *checker) checkParity(ctx context.Context) {
	params := c.r.Config().Parity
	listed := c.listed[backend.ParityFile]
	packs := c.listed[backend.PackFile]
	if params == nil {
		if len(listed) > 0 {
			c.warnf("parity/", "%d parity objects, but the repository has parity off: they are not used", len(listed))
		}
		return
	}
	for _, name := range sortedNames(listed) {
		if _, ok := packs[name]; !ok {
			c.warnf("parity/"+name, "orphaned: its pack data/%s does not exist (left by an interrupted prune; harmless)", name)
		}
	}
	var todo []*packInfo
	for _, p := range c.sortedPacks() {
		if p.size < 0 {
			continue
		}
		if _, ok := listed[repo.Hex(p.id)]; !ok {
			if len(p.indexes) == 0 {
				continue // unreferenced: prune will remove it
			}
			c.errorf(object(backend.ParityFile, p.id), "missing: pack %s has no parity object, so it cannot be repaired", object(backend.PackFile, p.id))
			continue
		}
		if !p.read {
			todo = append(todo, p)
		}
	}
	c.prog.start("parity", len(todo))
	c.parallel(ctx, len(todo), func(i int) {
		c.checkParityHeader(ctx, *params, todo[i])
		c.prog.Done.Add(1)
	})
}

// checkParityHeader reads only the header of a parity object and checks
// that it parses and describes its pack.
func (c *checker) checkParityHeader(ctx context.Context, params parity.Params, p *packInfo) {
	hex := repo.Hex(p.id)
	name := "parity/" + hex
	size := c.listed[backend.ParityFile][hex]
	if want := parity.ObjectSize(params, p.size); size != want {
		c.errorf(name, "%d bytes, want %d for %d+%d shards of a %d-byte pack (truncated or made for other bytes)",
			size, want, params.DataShards, params.ParityShards, p.size)
		return
	}
	hs := int64(parity.FixedSize + (params.DataShards+params.ParityShards+1)*parity.HashSize)
	hdr, err := c.be.Load(ctx, backend.Handle{Type: backend.ParityFile, Name: hex}, 0, int(min(hs, size)))
	if err != nil {
		if ctx.Err() == nil {
			c.errorf(name, "cannot read: %v", err)
		}
		return
	}
	// Parse checks the object's length but reads only its header: pad the
	// header with zeros in place of the parity shards.
	obj := make([]byte, size)
	copy(obj, hdr)
	h, err := parity.Parse(obj)
	if err != nil {
		c.errorf(name, "%v", err)
		return
	}
	c.checkParityFits(name, h, params, p.size)
}

func (c *checker) checkParityFits(name string, h parity.Header, params parity.Params, size int64) bool {
	switch {
	case h.Params != params:
		c.errorf(name, "made with %d+%d shards, the config says %d+%d", h.DataShards, h.ParityShards, params.DataShards, params.ParityShards)
	case h.PackLength != size:
		c.errorf(name, "made for a pack of %d bytes, the pack has %d", h.PackLength, size)
	default:
		return true
	}
	return false
}

// readData reads the selected packs whole.
func (c *checker) readData(ctx context.Context) {
	var todo []*packInfo
	var total int64
	for _, p := range c.sortedPacks() {
		if p.read {
			todo = append(todo, p)
			total += p.size
		}
	}
	c.prog.start("reading data", len(todo))
	c.prog.TotalBytes.Store(total)
	var bytesRead, blobsRead atomic.Int64
	bufs := make(chan []byte, c.o.Workers)
	c.parallel(ctx, len(todo), func(i int) {
		var buf []byte
		select {
		case buf = <-bufs:
		default:
		}
		n, blobs := c.readPack(ctx, todo[i], &buf)
		bufs <- buf
		bytesRead.Add(n)
		blobsRead.Add(int64(blobs))
		c.prog.Done.Add(1)
	})
	c.rep.Stats.PacksRead = len(todo)
	c.rep.Stats.BytesRead = bytesRead.Load()
	c.rep.Stats.BlobsRead = int(blobsRead.Load())
}

// readPack reads one pack whole and verifies everything in it. buf is a
// reusable decompression buffer. It returns the bytes read and the blobs
// verified.
func (c *checker) readPack(ctx context.Context, p *packInfo, buf *[]byte) (int64, int) {
	hex := repo.Hex(p.id)
	name := object(backend.PackFile, p.id)
	data, err := c.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: hex}, 0, 0)
	if err != nil {
		if ctx.Err() == nil {
			p.bad = true
			c.errorf(name, "cannot read: %v", err)
		}
		return 0, 0
	}
	c.prog.Bytes.Add(int64(len(data)))
	size := int64(len(data))
	intact := sha256.Sum256(data) == p.id
	damage := ""
	if params := c.r.Config().Parity; params != nil {
		damage = c.checkPackParity(ctx, *params, p, data, intact)
	}
	if !intact {
		c.errorf(name, "content does not match its name (damaged or truncated: %d bytes, SHA-256 %s)%s", size, hexSum(data)[:16]+"…", damage)
	}
	if !c.r.CanRead() {
		if size >= pack.TrailerSize {
			c.checkTrailer(p, data[size-pack.TrailerSize:])
		} else {
			p.bad = true
			c.errorf(name, "%d bytes is too short for a pack (truncated)", size)
		}
		return size, 0
	}
	blobs, aead, err := c.r.ParsePack(p.id, data, size, func(int64, int) ([]byte, error) {
		return nil, errors.New("header outside the pack") // unreachable: the tail is the whole pack
	})
	if err != nil {
		p.bad = true
		c.errorf(name, "%s", trimObject(err, name))
		return size, 0
	}
	c.compareHeader(p, blobs)
	sec := c.r.Secrets()
	bad := 0
	for i, b := range blobs {
		stored := data[b.Offset : b.Offset+b.StoredLength]
		// Decrypt in place: the pack's bytes are not needed any more.
		body, err := pack.AppendOpenBlob(stored[:0], aead, int(b.Offset), stored)
		if err == nil && b.Compressed {
			var out []byte
			out, err = pack.Decompress(*buf, body, int(b.RawLength))
			if err == nil && cap(out) > cap(*buf) {
				*buf = out[:0]
			}
			body = out
		}
		switch {
		case err != nil:
		case len(body) != int(b.RawLength):
			err = fmt.Errorf("%d bytes, the header says %d", len(body), b.RawLength)
		case sec.BlobID(body) != b.ID:
			err = errors.New("content does not match its id")
		}
		if err == nil {
			continue
		}
		c.mu.Lock()
		c.badBlobs[badBlob{blobKey{b.ID, uint8(b.Type)}, p.id}] = true
		c.mu.Unlock()
		bad++
		if bad <= maxBlobErrors {
			c.errorf(name, "blob %d of %d (%s %s): %v", i, len(blobs), b.Type, repo.Short(b.ID), err)
		}
	}
	if bad > maxBlobErrors {
		c.errorf(name, "%d more damaged blobs", bad-maxBlobErrors)
	}
	return size, len(blobs)
}

// badBlob is a blob that failed verification in one pack.
type badBlob struct {
	k    blobKey
	pack repo.ID
}

// checkPackParity checks a pack read whole against its parity object. It
// reports damage to the parity object itself, and returns a description
// of the pack's damage for the pack's error ("" when intact).
func (c *checker) checkPackParity(ctx context.Context, params parity.Params, p *packInfo, data []byte, intact bool) string {
	hex := repo.Hex(p.id)
	name := "parity/" + hex
	if _, ok := c.listed[backend.ParityFile][hex]; !ok {
		return "; it has no parity object to repair it from" // the missing object is reported by checkParity
	}
	obj, err := c.be.Load(ctx, backend.Handle{Type: backend.ParityFile, Name: hex}, 0, 0)
	if err != nil {
		if ctx.Err() == nil {
			c.errorf(name, "cannot read: %v", err)
		}
		return "; its parity object cannot be read"
	}
	h, err := parity.Parse(obj)
	if err != nil {
		c.errorf(name, "%v", err)
		return "; its parity object is damaged too: not repairable from parity"
	}
	if intact && !c.checkParityFits(name, h, params, int64(len(data))) {
		return ""
	}
	bad, err := parity.Check(data, obj)
	if err != nil { // unreachable: Parse succeeded
		c.errorf(name, "%v", err)
		return ""
	}
	if intact {
		if len(bad) > 0 {
			c.errorf(name, "%s damaged, the pack itself is intact (`bulwark repo repair` rewrites the parity object)", h.Describe(bad))
		}
		return ""
	}
	switch {
	case len(bad) == 0:
		return "; its parity object describes other bytes: not repairable from parity"
	case len(bad) <= h.ParityShards:
		return fmt.Sprintf("; parity: %s damaged: repairable with `bulwark repo repair`", h.Describe(bad))
	}
	return fmt.Sprintf("; parity: %s damaged, only %d can be rebuilt: not repairable from parity", h.Describe(bad), h.ParityShards)
}

// trimObject drops a leading "name: " that repeats the problem's object.
func trimObject(err error, name string) string {
	return strings.TrimPrefix(err.Error(), name+": ")
}
