package pack

import (
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// Writer builds one pack. Add seals blobs into the buffer as they come;
// Finish appends the header and trailer and hands back the pack. Reset
// starts a new pack in the same buffers, so a long-lived Writer stops
// allocating once its buffer has grown to the pack size.
//
// A Writer whose caller streams the pack somewhere (a backend.Staged) as
// it fills calls Take now and then: it hands back the bytes sealed so far
// and goes on in another buffer, so the pack never needs a buffer of its
// own size; Finish then returns only the rest.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	aead      cipher.AEAD
	ephemeral [EphemeralSize]byte
	buf       []byte // stored blobs not yet taken, then header_ct and trailer after Finish
	base      int    // bytes of the pack taken already (Take): buf starts at this offset
	blobs     []Blob
	hdr       []byte // header plaintext scratch
	nonce     [NonceSize]byte
	finished  bool
	err       error // sticky: a bad AEAD
}

// NewWriter returns a Writer for a pack sealed with aead (AES-256-GCM under
// k_pack) whose trailer carries ephemeral (E).
func NewWriter(aead cipher.AEAD, ephemeral [32]byte) *Writer {
	w := &Writer{}
	w.Reset(aead, ephemeral)
	return w
}

// Reset discards the pack being built and starts a new one with another key,
// keeping the buffers. The bytes returned by an earlier Finish are
// overwritten by the next Add.
func (w *Writer) Reset(aead cipher.AEAD, ephemeral [32]byte) {
	w.aead = aead
	w.ephemeral = ephemeral
	w.buf = w.buf[:0]
	w.base = 0
	w.blobs = w.blobs[:0]
	w.finished = false
	w.err = checkAEAD(aead)
}

// Add seals body as the next blob and returns its header record. body is the
// blob's plaintext, or its zstd compression when compressed is true; rawLen
// is the plaintext length (len(body) when not compressed). Add returns
// ErrFull when the pack cannot take the blob; the Writer is then unchanged.
func (w *Writer) Add(t BlobType, id ID, body []byte, compressed bool, rawLen int) (Blob, error) {
	switch {
	case w.err != nil:
		return Blob{}, w.err
	case w.finished:
		return Blob{}, errors.New("pack: Add after Finish")
	case t != Data && t != Tree:
		return Blob{}, fmt.Errorf("pack: blob %s: unknown blob type %d", idPrefix(id), t)
	case len(body) > MaxBlobLength:
		return Blob{}, fmt.Errorf("pack: blob %s: body of %d bytes exceeds the %d-byte limit", idPrefix(id), len(body), MaxBlobLength)
	case rawLen < 0 || rawLen > MaxBlobLength:
		return Blob{}, fmt.Errorf("pack: blob %s: raw length %d outside 0..%d", idPrefix(id), rawLen, MaxBlobLength)
	case !compressed && rawLen != len(body):
		return Blob{}, fmt.Errorf("pack: blob %s: uncompressed body of %d bytes with raw length %d", idPrefix(id), len(body), rawLen)
	}
	stored := len(body) + TagSize
	if len(w.blobs) >= MaxBlobs || uint64(w.base+len(w.buf))+uint64(stored) > MaxDataLength {
		return Blob{}, ErrFull
	}
	off := w.base + len(w.buf)
	w.nonce = blobNonce(off) // a field, so the slice passed to the AEAD does not escape per call
	// AES-GCM's Seal reallocates to the exact size when dst lacks room,
	// which would make filling a pack quadratic: grow amortized first.
	w.buf = slices.Grow(w.buf, stored)
	w.buf = w.aead.Seal(w.buf, w.nonce[:], body, nil)
	b := Blob{
		Type:         t,
		ID:           id,
		Compressed:   compressed,
		Offset:       uint32(off),
		StoredLength: uint32(stored),
		RawLength:    uint32(rawLen),
	}
	w.blobs = append(w.blobs, b)
	return b, nil
}

// Size returns the length the pack would have if finished now: the stored
// blobs plus the header and trailer. Compare it with pack_size to decide
// when to finish.
func (w *Writer) Size() int {
	if w.finished {
		return w.base + len(w.buf)
	}
	return w.base + len(w.buf) + headerLen(len(w.blobs)) + TrailerSize
}

// Buffered returns the number of sealed bytes not yet taken.
func (w *Writer) Buffered() int { return len(w.buf) }

// Take returns the bytes sealed since the last Take (or Reset) and goes on
// sealing into spare[:0], which must not overlap them; the caller owns the
// returned bytes and may pass them as the next spare once it is done with
// them. Take after Finish returns nil and changes nothing.
func (w *Writer) Take(spare []byte) []byte {
	if w.finished || w.err != nil {
		return nil
	}
	out := w.buf
	w.base += len(out)
	w.buf = spare[:0]
	return out
}

// Count returns the number of blobs added so far.
func (w *Writer) Count() int { return len(w.blobs) }

// Finish appends the encrypted header and the trailer and returns the whole
// pack (the part not taken, when Take was called) and its blob records, in
// order. A pack may hold no blobs. The pack bytes alias the Writer's buffer
// and stay valid until the next Reset; the records are a fresh copy. Finish
// may be called again and returns the same results.
func (w *Writer) Finish() ([]byte, []Blob, error) {
	if w.err != nil {
		return nil, nil, w.err
	}
	if !w.finished {
		h := append(w.hdr[:0], Version)
		for _, b := range w.blobs {
			var flags byte
			if b.Compressed {
				flags = 1
			}
			h = append(h, byte(b.Type), flags)
			h = binary.LittleEndian.AppendUint32(h, b.StoredLength)
			h = binary.LittleEndian.AppendUint32(h, b.RawLength)
			h = append(h, b.ID[:]...)
		}
		w.hdr = h
		w.buf = slices.Grow(w.buf, len(h)+TagSize+TrailerSize)
		w.buf = w.aead.Seal(w.buf, headerNonce[:], h, nil)
		w.buf = append(w.buf, w.ephemeral[:]...)
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(h)+TagSize))
		w.finished = true
	}
	return w.buf, append([]Blob(nil), w.blobs...), nil
}

// idPrefix names a blob in an error by its first 4 id bytes. Taking the id
// by value keeps Add's id argument off the heap.
func idPrefix(id ID) string { return hex.EncodeToString(id[:4]) }

// NewWriterSize is NewWriter with a buffer for a pack of size bytes
// allocated up front, so filling it never reallocates.
func NewWriterSize(aead cipher.AEAD, ephemeral [32]byte, size int) *Writer {
	w := NewWriter(aead, ephemeral)
	w.buf = make([]byte, 0, size)
	return w
}

// Bytes returns the Writer's buffer (its capacity tells its size).
func (w *Writer) Bytes() []byte { return w.buf }
