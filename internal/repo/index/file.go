// Package index maps blobs to the packs that hold them.
//
// An index file (docs/repository-format.md, "Index files") is written by
// every backup that uploads packs; the in-memory Index merges all of them.
// The encoding is a compact binary one (varints, raw 32-byte ids) because a
// repository of a few terabytes holds millions of blobs and every command
// loads every index file.
//
// Trust: an index written by a full key carries an Ed25519 signature that
// every key can verify. Entries of unsigned indexes (written by write-only
// keys) are used to read blobs but not to skip uploads, unless the caller
// marks the file as its own (see Index.Add).
package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/klauspost/compress/zstd"
)

// ID is a 32-byte identifier: a blob id or an object (pack, index) name.
type ID = [32]byte

// Blob types, as in pack headers.
const (
	DataBlob uint8 = 0
	TreeBlob uint8 = 1
)

// Blob is one blob's location inside a pack.
type Blob struct {
	Type      uint8
	Flags     uint8 // bit 0: zstd
	ID        ID
	Offset    uint32
	Length    uint32 // stored (encrypted) length
	RawLength uint32 // plaintext length
}

// Pack lists the blobs of one pack file.
type Pack struct {
	ID    ID
	Blobs []Blob
}

// File is the content of one index file.
type File struct {
	KeyID      ID // SHA-256 name of the writer's key file
	Supersedes []ID
	Packs      []Pack
	Signed     bool // set by Decode when a valid signature was found
}

const (
	version     = 1
	flagSigned  = 1
	aad         = "bulwark index v1"
	sigSize     = 64
	maxPlain    = 1 << 30 // an index file never decompresses beyond 1 GiB
	maxBlobSize = 1 << 26 // no blob is larger than 64 MiB (max chunk 8 MiB, trees bounded)
)

var (
	encOnce sync.Once
	enc     *zstd.Encoder
	dec     *zstd.Decoder
)

func coders() {
	encOnce.Do(func() {
		// A 1 MiB window: an index is mostly random 32-byte ids, so matches
		// are short and near; the default 8 MiB window only made the first
		// Seal allocate 18 MiB of history instead of 3.6 MiB, at the peak
		// of a backup's memory (the pack buffers are still held then).
		enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20))
		dec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxPlain))
	})
}

// Encode returns the plain (unsealed, uncompressed) bytes of f, signed when
// s is a full key.
func (f *File) Encode(s *crypto.Secrets) ([]byte, error) {
	var b []byte
	flags := byte(0)
	if s.CanRead() {
		flags = flagSigned
	}
	b = append(b, version, flags)
	b = append(b, f.KeyID[:]...)
	b = binary.AppendUvarint(b, uint64(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		b = append(b, id[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(f.Packs)))
	for _, p := range f.Packs {
		b = append(b, p.ID[:]...)
		b = binary.AppendUvarint(b, uint64(len(p.Blobs)))
		for _, bl := range p.Blobs {
			b = append(b, bl.Type, bl.Flags)
			b = binary.AppendUvarint(b, uint64(bl.Offset))
			b = binary.AppendUvarint(b, uint64(bl.Length))
			b = binary.AppendUvarint(b, uint64(bl.RawLength))
			b = append(b, bl.ID[:]...)
		}
	}
	if flags&flagSigned != 0 {
		sig, err := s.Sign(b)
		if err != nil {
			return nil, err
		}
		b = append(b, sig...)
	}
	return b, nil
}

// Seal encodes, compresses and encrypts f: the bytes of an index file.
func (f *File) Seal(s *crypto.Secrets) ([]byte, error) {
	plain, err := f.Encode(s)
	if err != nil {
		return nil, err
	}
	coders()
	return s.SealShared(aad, enc.EncodeAll(plain, nil))
}

// Open decrypts, decompresses and decodes an index file.
func Open(s *crypto.Secrets, data []byte) (*File, error) {
	z, err := s.OpenShared(aad, data)
	if err != nil {
		return nil, err
	}
	coders()
	plain, err := dec.DecodeAll(z, nil)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return Decode(s, plain)
}

type reader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("truncated")

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("at byte %d: %w", r.off, errTruncated)
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *reader) uv(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = fmt.Errorf("at byte %d: %s: bad varint", r.off, what)
		return 0
	}
	if v > max {
		r.err = fmt.Errorf("at byte %d: %s %d exceeds %d", r.off, what, v, max)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) id() (id ID) {
	copy(id[:], r.bytes(32))
	return id
}

// Decode parses plain index bytes, validating every field. When the file is
// flagged as signed, the signature must verify with s; Signed is set then.
func Decode(s *crypto.Secrets, plain []byte) (*File, error) {
	if len(plain) < 2 {
		return nil, fmt.Errorf("index: %w", errTruncated)
	}
	if plain[0] != version {
		return nil, fmt.Errorf("index: version %d not supported", plain[0])
	}
	flags := plain[1]
	if flags&^flagSigned != 0 {
		return nil, fmt.Errorf("index: unknown flags %#x", flags)
	}
	f := &File{}
	if flags&flagSigned != 0 {
		if len(plain) < 2+sigSize {
			return nil, fmt.Errorf("index: %w signature", errTruncated)
		}
		body, sig := plain[:len(plain)-sigSize], plain[len(plain)-sigSize:]
		if s == nil || !s.Verify(body, sig) {
			return nil, errors.New("index: signature does not verify")
		}
		f.Signed = true
		plain = body
	}
	r := &reader{b: plain, off: 2}
	f.KeyID = r.id()
	// Bounds: every count is limited by the bytes left, so a hostile count
	// cannot make us allocate more than the input justifies.
	left := func(per int) uint64 { return uint64((len(plain) - r.off) / per) }
	n := r.uv(left(32), "superseded count")
	for i := uint64(0); i < n && r.err == nil; i++ {
		f.Supersedes = append(f.Supersedes, r.id())
	}
	np := r.uv(left(33), "pack count")
	if r.err == nil {
		f.Packs = make([]Pack, 0, np)
	}
	seen := make(map[ID]bool)
	for i := uint64(0); i < np && r.err == nil; i++ {
		p := Pack{ID: r.id()}
		if seen[p.ID] && r.err == nil {
			return nil, fmt.Errorf("index: pack %x listed twice", p.ID[:8])
		}
		seen[p.ID] = true
		nb := r.uv(left(37), "blob count")
		if r.err == nil {
			p.Blobs = make([]Blob, 0, nb)
		}
		var next uint64
		for j := uint64(0); j < nb && r.err == nil; j++ {
			tf := r.bytes(2)
			if r.err != nil {
				break
			}
			bl := Blob{Type: tf[0], Flags: tf[1]}
			off := r.uv(1<<32-1, "blob offset")
			ln := r.uv(maxBlobSize, "blob length")
			raw := r.uv(maxBlobSize, "blob raw length")
			bl.ID = r.id()
			if r.err != nil {
				break
			}
			switch {
			case bl.Type > TreeBlob:
				return nil, fmt.Errorf("index: pack %x blob %d: unknown type %d", p.ID[:8], j, bl.Type)
			case bl.Flags&^1 != 0:
				return nil, fmt.Errorf("index: pack %x blob %d: unknown flags %#x", p.ID[:8], j, bl.Flags)
			case ln < 16:
				return nil, fmt.Errorf("index: pack %x blob %d: stored length %d shorter than a tag", p.ID[:8], j, ln)
			case off < next || off+ln > 1<<32-1:
				return nil, fmt.Errorf("index: pack %x blob %d: offset %d overlaps or overflows", p.ID[:8], j, off)
			}
			next = off + ln
			bl.Offset, bl.Length, bl.RawLength = uint32(off), uint32(ln), uint32(raw)
			p.Blobs = append(p.Blobs, bl)
		}
		f.Packs = append(f.Packs, p)
	}
	if r.err != nil {
		return nil, fmt.Errorf("index: %w", r.err)
	}
	if r.off != len(plain) {
		return nil, fmt.Errorf("index: %d trailing bytes", len(plain)-r.off)
	}
	return f, nil
}
