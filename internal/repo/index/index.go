package index

import (
	"sync"
)

// Location is where one copy of a blob lives.
type Location struct {
	Pack      ID
	Type      uint8
	Flags     uint8
	Offset    uint32
	Length    uint32
	RawLength uint32
}

type key struct {
	id ID
	t  uint8
}

// entry is kept small: a repository of 10 TB at 1 MiB chunks holds ten
// million of them. The pack is an index into packs.
type entry struct {
	pack      uint32
	flags     uint8
	trusted   bool
	offset    uint32
	length    uint32
	rawLength uint32
}

// Index is the in-memory union of index files and of packs written in this
// session. Safe for concurrent use.
type Index struct {
	mu        sync.RWMutex
	blobs     map[key]entry
	packs     []ID
	packIndex map[ID]uint32
	packBlobs map[ID]int // blobs per pack
	files     map[ID]bool
}

// New returns an empty index.
func New() *Index {
	return &Index{blobs: make(map[key]entry), packIndex: make(map[ID]uint32),
		packBlobs: make(map[ID]int), files: make(map[ID]bool)}
}

func (x *Index) packNo(id ID) uint32 {
	n, ok := x.packIndex[id]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, id)
		x.packIndex[id] = n
	}
	return n
}

// AddFile merges an index file named name; the caller leaves out files
// that another file supersedes. trusted says whether its entries
// may be used to skip uploads (signed, or written by this client's own key).
// A trusted entry replaces an untrusted one for the same blob.
func (x *Index) AddFile(name ID, f *File, trusted bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.files[name] = true
	for _, p := range f.Packs {
		x.addPackLocked(p, trusted)
	}
}

// AddPack records a pack written in this session (always trusted).
func (x *Index) AddPack(p Pack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addPackLocked(p, true)
}

func (x *Index) addPackLocked(p Pack, trusted bool) {
	n := x.packNo(p.ID)
	x.packBlobs[p.ID] = len(p.Blobs)
	for _, b := range p.Blobs {
		k := key{b.ID, b.Type}
		if old, ok := x.blobs[k]; ok && (old.trusted || !trusted) {
			continue
		}
		x.blobs[k] = entry{pack: n, flags: b.Flags, trusted: trusted, offset: b.Offset, length: b.Length, rawLength: b.RawLength}
	}
}

// Lookup returns a location of the blob.
func (x *Index) Lookup(t uint8, id ID) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[key{id, t}]
	if !ok {
		return Location{}, false
	}
	return Location{Pack: x.packs[e.pack], Type: t, Flags: e.flags, Offset: e.offset, Length: e.length, RawLength: e.rawLength}, true
}

// Has reports whether the blob is stored and may be deduplicated against
// (a trusted entry).
func (x *Index) Has(t uint8, id ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[key{id, t}]
	return ok && e.trusted
}

// Len is the number of distinct blobs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// Packs returns the ids of every pack the index knows.
func (x *Index) Packs() []ID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]ID(nil), x.packs...)
}

// Files returns the names of the index files merged so far.
func (x *Index) Files() []ID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]ID, 0, len(x.files))
	for f := range x.files {
		out = append(out, f)
	}
	return out
}

// Each calls fn for every blob's chosen location.
func (x *Index) Each(fn func(id ID, loc Location)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for k, e := range x.blobs {
		fn(k.id, Location{Pack: x.packs[e.pack], Type: k.t, Flags: e.flags, Offset: e.offset, Length: e.length, RawLength: e.rawLength})
	}
}
