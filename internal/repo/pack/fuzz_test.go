package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// FuzzParseHeader feeds arbitrary header plaintexts, sealed with the right
// key so that they reach the structural checks, and arbitrary pack sizes.
// An accepted header must describe blobs that tile the pack up to the header.
func FuzzParseHeader(f *testing.F) {
	e := testE(3)
	aead := testAEAD(f, "fuzz", e)
	f.Add(header(1), int64(53))
	f.Add(header(1, record(Data, 0, 16, 0), record(Tree, 1, 100, 5000)), int64(116+1+84+16+36))
	f.Add(header(1, record(Data, 1, 0xffffffff, 0xffffffff)), int64(1<<33))
	f.Add(header(2), int64(53))
	f.Add(header(1, record(Data, 0, 16, 0)[:41]), int64(100))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, plain []byte, packSize int64) {
		if len(plain)+TagSize > MaxHeaderLen {
			return
		}
		ct := aead.Seal(nil, headerNonce[:], plain, nil)
		blobs, err := ParseHeader(aead, ct, packSize)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if len(plain) != 1+len(blobs)*RecordSize || plain[0] != Version {
			t.Fatalf("accepted a %d-byte header with version %d as %d blobs", len(plain), plain[0], len(blobs))
		}
		var off int64
		for i, b := range blobs {
			if int64(b.Offset) != off || b.StoredLength < TagSize || b.Type > Tree || b.RawLength > MaxBlobLength {
				t.Fatalf("blob %d: %+v at expected offset %d", i, b, off)
			}
			if !b.Compressed && b.RawLength != b.StoredLength-TagSize {
				t.Fatalf("blob %d: uncompressed with %+v", i, b)
			}
			off += int64(b.StoredLength)
		}
		if off != packSize-int64(len(ct))-TrailerSize {
			t.Fatalf("blobs end at %d, header at %d", off, packSize-int64(len(ct))-TrailerSize)
		}
	})
}

// FuzzReadTrailer checks that an accepted trailer fits the pack and that
// HeaderFromTail agrees with it.
func FuzzReadTrailer(f *testing.F) {
	e := testE(3)
	tr := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(bytes.Clone(e[:]), n) }
	f.Add(tr(17), int64(53))
	f.Add(append(make([]byte, 59), tr(59)...), int64(1000))
	f.Add(tr(MaxHeaderLen), int64(MaxHeaderLen+36))
	f.Add(tr(0xffffffff), int64(1<<62))
	f.Add([]byte{1, 2, 3}, int64(3))
	f.Fuzz(func(t *testing.T, tail []byte, packSize int64) {
		_, hl, err := ReadTrailer(tail, packSize)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if hl < MinHeaderLen || hl > MaxHeaderLen || int64(hl)+TrailerSize > packSize || (hl-MinHeaderLen)%RecordSize != 0 {
			t.Fatalf("accepted header length %d for a %d-byte pack", hl, packSize)
		}
		h, ok := HeaderFromTail(tail, hl)
		if ok != (len(tail) >= hl+TrailerSize) || (ok && len(h) != hl) {
			t.Fatalf("HeaderFromTail(%d-byte tail, %d) = %d bytes, %v", len(tail), hl, len(h), ok)
		}
	})
}

// FuzzDecompress decodes arbitrary bytes under raw lengths up to 1 MiB: no
// panic, output exactly the raw length when accepted, and never a buffer
// beyond the cap.
func FuzzDecompress(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, src := range [][]byte{text(r, 1000), text(r, 200<<10), make([]byte, 5000), randomBytes(r, 100)} {
		if c, ok := Compress(nil, src); ok {
			f.Add(c, uint32(len(src)))
			f.Add(c, uint32(len(src)-1))
		}
	}
	f.Add(streamFrame(f, make([]byte, 1<<20), 4), uint32(1<<20))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, uint32(0))
	f.Add([]byte{}, uint32(10))
	f.Fuzz(func(t *testing.T, src []byte, raw uint32) {
		rawLen := int(raw % (1 << 20))
		out, err := Decompress(nil, src, rawLen)
		if err != nil {
			return
		}
		if len(out) != rawLen || cap(out) > rawLen+decoderSlack {
			t.Fatalf("accepted with len %d cap %d, raw length %d", len(out), cap(out), rawLen)
		}
		// The same input must decode the same way into a reused buffer.
		again, err := Decompress(make([]byte, 0, 2<<20), src, rawLen)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second decode differs: %v", err)
		}
	})
}
