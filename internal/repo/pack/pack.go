// Package pack encodes and decodes pack files, the objects under data/ that
// hold encrypted blobs (see docs/repository-format.md, "Pack files").
//
// The codec knows nothing about keys: the caller derives the pack's
// AES-256-GCM key k_pack (by sealing to the repository public key with
// purpose "pack") and passes the ready cipher.AEAD together with the 32-byte
// ephemeral public key E that goes into the trailer.
//
// A pack with n blobs is
//
//	stored_0 || ... || stored_{n-1} || header_ct || E (32) || uint32_le(len(header_ct))
//
//	stored_i  = AES-256-GCM-Seal(k_pack, nonce = uint96_be(i + 1), body_i, aad = nil)
//	header_ct = AES-256-GCM-Seal(k_pack, nonce = 12 bytes of 0xff, header, aad = nil)
//	header    = version (1 byte, = 1) || n records of 42 bytes:
//	            type (1: 0 = data, 1 = tree) || flags (1: bit 0 = zstd, other bits 0) ||
//	            uint32_le(stored_length) || uint32_le(raw_length) || id (32)
//
// body_i is the blob's plaintext, or its zstd compression when flag bit 0 is
// set (see Compress); raw_length is the plaintext length, so for an
// uncompressed blob raw_length = stored_length - 16. Offsets are implicit:
// blob i starts at the sum of the stored lengths before it, and the blobs
// fill the pack exactly up to header_ct. The blob nonces count from 1 and can
// never reach the header's all-0xff nonce, so no nonce repeats under k_pack.
//
// Limits, part of the format: at most MaxBlobs blobs per pack, so a header
// is at most MaxHeaderLen bytes; a blob's plaintext and body are at most
// MaxBlobLength bytes; the blobs of a pack total at most MaxDataLength bytes
// (offsets fit in uint32).
//
// Reading a pack: fetch its last TailHint bytes, call ReadTrailer, take
// header_ct from the tail with HeaderFromTail (or fetch it when the header is
// longer than the tail), derive k_pack from E, call ParseHeader, then fetch
// a blob's StoredLength bytes at its Offset and call OpenBlob with its
// position in the header.
package pack

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// BlobType says what a blob holds.
type BlobType uint8

// Blob types, as stored in the header's type byte.
const (
	Data BlobType = 0 // a chunk of file content
	Tree BlobType = 1 // a tree (directory listing)
)

func (t BlobType) String() string {
	switch t {
	case Data:
		return "data"
	case Tree:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// ID is a blob id: keyed BLAKE3 of the blob's plaintext. It is an alias so
// that any [32]byte-based id type converts to it implicitly.
type ID = [32]byte

// Blob describes one blob of a pack, as recorded in the pack header.
type Blob struct {
	Type         BlobType
	ID           ID
	Compressed   bool   // the body is zstd-compressed
	Offset       uint32 // where the stored blob starts in the pack
	StoredLength uint32 // ciphertext length, body + 16-byte tag
	RawLength    uint32 // plaintext length
}

// Format constants.
const (
	Version       = 1                 // header version byte
	TagSize       = 16                // AES-GCM tag
	NonceSize     = 12                // AES-GCM nonce
	EphemeralSize = 32                // X25519 public key E in the trailer
	TrailerSize   = EphemeralSize + 4 // E || uint32_le(len(header_ct))
	RecordSize    = 42                // one header record

	// MaxBlobs is the most blobs a pack may hold. A writer that reaches it
	// closes the pack (Add returns ErrFull).
	MaxBlobs = 1 << 17

	// MaxHeaderLen is the longest header_ct a pack may have:
	// version byte, MaxBlobs records and the tag (5,505,041 bytes).
	MaxHeaderLen = 1 + MaxBlobs*RecordSize + TagSize

	// MinHeaderLen is header_ct of a pack with no blobs.
	MinHeaderLen = 1 + TagSize

	// MaxBlobLength bounds a blob's plaintext and its body (1 GiB). It caps
	// what a decoder allocates for one blob whatever a header claims.
	MaxBlobLength = 1 << 30

	// MaxDataLength bounds the sum of a pack's stored blob lengths, so
	// that every offset fits in uint32.
	MaxDataLength = math.MaxUint32

	// TailHint is how many trailing bytes to read first: with 64 KiB the
	// trailer and a header of up to 1,559 blobs arrive in one read, which
	// covers a full 16 MiB pack of 1 MiB average chunks many times over.
	TailHint = 64 << 10
)

// ErrCorrupt is wrapped by every error about bytes that are not a valid
// pack: malformed structure, or ciphertext that fails authentication
// (damaged bytes or the wrong key; the two cannot be told apart).
var ErrCorrupt = errors.New("corrupt pack")

// ErrFull is returned by Writer.Add when the blob would take the pack past
// MaxBlobs or MaxDataLength. Finish the pack and add the blob to a new one.
var ErrFull = errors.New("pack full")

// corrupt returns an error wrapping ErrCorrupt; where names the part of the
// pack ("trailer", "header", "header: blob 3", "blob 3").
func corrupt(where, format string, args ...any) error {
	return &corruptError{where: where, msg: fmt.Sprintf(format, args...)}
}

type corruptError struct{ where, msg string }

func (e *corruptError) Error() string        { return "pack " + e.where + ": " + e.msg }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// headerNonce is the nonce of header_ct.
var headerNonce = [NonceSize]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// blobNonce returns the nonce of the blob at offset off in its pack:
// uint96_be(off + 1). Offsets are unique within a pack, and a reader that
// fetches one blob by its index entry knows its offset (not its position).
func blobNonce(off int) [NonceSize]byte {
	var n [NonceSize]byte
	binary.BigEndian.PutUint64(n[4:], uint64(off)+1)
	return n
}

// checkAEAD rejects an AEAD this format cannot use.
func checkAEAD(aead cipher.AEAD) error {
	if aead == nil {
		return errors.New("pack: nil AEAD")
	}
	if aead.NonceSize() != NonceSize || aead.Overhead() != TagSize {
		return fmt.Errorf("pack: AEAD has %d-byte nonces and %d-byte tags, want %d and %d (AES-256-GCM)",
			aead.NonceSize(), aead.Overhead(), NonceSize, TagSize)
	}
	return nil
}

// headerLen returns len(header_ct) for n blobs.
func headerLen(n int) int { return 1 + n*RecordSize + TagSize }
