package pack

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// ReadTrailer decodes the trailer from tail, the last len(tail) bytes of a
// pack of packSize bytes (read at least TrailerSize; TailHint usually brings
// the header along too). It returns E and len(header_ct), checked against
// the format's limits and the pack size.
func ReadTrailer(tail []byte, packSize int64) (ephemeral [32]byte, headerLen int, err error) {
	switch {
	case packSize < TrailerSize+MinHeaderLen:
		return ephemeral, 0, corrupt("trailer", "pack of %d bytes is shorter than the smallest pack (%d)", packSize, TrailerSize+MinHeaderLen)
	case len(tail) < TrailerSize:
		return ephemeral, 0, corrupt("trailer", "truncated: %d of %d bytes", len(tail), TrailerSize)
	case int64(len(tail)) > packSize:
		return ephemeral, 0, corrupt("trailer", "tail of %d bytes is longer than the pack (%d)", len(tail), packSize)
	}
	t := tail[len(tail)-TrailerSize:]
	copy(ephemeral[:], t[:EphemeralSize])
	n := binary.LittleEndian.Uint32(t[EphemeralSize:])
	switch {
	case n < MinHeaderLen:
		return ephemeral, 0, corrupt("trailer", "header length %d is below the minimum %d", n, MinHeaderLen)
	case n > MaxHeaderLen:
		return ephemeral, 0, corrupt("trailer", "header length %d exceeds the maximum %d", n, MaxHeaderLen)
	case int64(n)+TrailerSize > packSize:
		return ephemeral, 0, corrupt("trailer", "header length %d does not fit in a pack of %d bytes", n, packSize)
	case (int(n)-MinHeaderLen)%RecordSize != 0:
		return ephemeral, 0, corrupt("trailer", "header length %d is not 17 + a multiple of %d", n, RecordSize)
	}
	return ephemeral, int(n), nil
}

// HeaderFromTail returns header_ct when tail (the pack's last bytes, as given
// to ReadTrailer) holds all of it, and false when more must be read: the
// header then is the headerLen bytes at offset packSize-TrailerSize-headerLen.
func HeaderFromTail(tail []byte, headerLen int) ([]byte, bool) {
	if headerLen < 0 || len(tail) < TrailerSize+headerLen {
		return nil, false
	}
	end := len(tail) - TrailerSize
	return tail[end-headerLen : end], true
}

// ParseHeader decrypts and validates header_ct of a pack of packSize bytes
// and returns its blob records in order. It checks the version, the record
// size and count, every field, and that the blobs exactly fill the pack up
// to the header. headerCT is not modified.
func ParseHeader(aead cipher.AEAD, headerCT []byte, packSize int64) ([]Blob, error) {
	if err := checkAEAD(aead); err != nil {
		return nil, err
	}
	switch {
	case len(headerCT) < MinHeaderLen:
		return nil, corrupt("header", "truncated: %d bytes, the minimum is %d", len(headerCT), MinHeaderLen)
	case len(headerCT) > MaxHeaderLen:
		return nil, corrupt("header", "%d bytes exceed the maximum %d", len(headerCT), MaxHeaderLen)
	case packSize < int64(len(headerCT))+TrailerSize:
		return nil, corrupt("header", "%d-byte header does not fit in a pack of %d bytes", len(headerCT), packSize)
	case (len(headerCT)-MinHeaderLen)%RecordSize != 0:
		return nil, corrupt("header", "length %d is not 17 + a multiple of %d", len(headerCT), RecordSize)
	}
	h, err := aead.Open(make([]byte, 0, len(headerCT)-TagSize), headerNonce[:], headerCT, nil)
	if err != nil {
		return nil, corrupt("header", "authentication failed (wrong key or damaged bytes)")
	}
	if h[0] != Version {
		return nil, corrupt("header", "unknown version %d", h[0])
	}
	recs := h[1:]
	n := len(recs) / RecordSize
	dataLen := packSize - int64(len(headerCT)) - TrailerSize
	if dataLen > MaxDataLength {
		return nil, corrupt("header", "%d bytes of blobs exceed the maximum %d", dataLen, int64(MaxDataLength))
	}
	blobs := make([]Blob, n)
	var off int64
	for i := range blobs {
		r := recs[i*RecordSize : (i+1)*RecordSize]
		t, flags := BlobType(r[0]), r[1]
		stored := binary.LittleEndian.Uint32(r[2:])
		raw := binary.LittleEndian.Uint32(r[6:])
		switch {
		case t != Data && t != Tree:
			return nil, blobCorrupt(i, n, "unknown type %d", r[0])
		case flags&^1 != 0:
			return nil, blobCorrupt(i, n, "unknown flags %#02x", flags)
		case stored < TagSize:
			return nil, blobCorrupt(i, n, "stored length %d is shorter than the %d-byte tag", stored, TagSize)
		case stored-TagSize > MaxBlobLength:
			return nil, blobCorrupt(i, n, "body of %d bytes exceeds the maximum %d", stored-TagSize, MaxBlobLength)
		case raw > MaxBlobLength:
			return nil, blobCorrupt(i, n, "raw length %d exceeds the maximum %d", raw, MaxBlobLength)
		case flags&1 == 0 && raw != stored-TagSize:
			return nil, blobCorrupt(i, n, "uncompressed blob with stored length %d and raw length %d", stored, raw)
		case off+int64(stored) > dataLen:
			return nil, blobCorrupt(i, n, "blob at %d..%d extends past the header at %d", off, off+int64(stored), dataLen)
		}
		b := &blobs[i]
		b.Type, b.Compressed = t, flags&1 != 0
		b.Offset, b.StoredLength, b.RawLength = uint32(off), stored, raw
		copy(b.ID[:], r[10:])
		off += int64(stored)
	}
	if off != dataLen {
		return nil, corrupt("header", "%d blobs cover %d bytes, but the header starts at %d", n, off, dataLen)
	}
	return blobs, nil
}

// OpenBlob authenticates and decrypts stored, the StoredLength bytes of the
// blob at byte offset offset in its pack, and returns its body in a new
// slice. The body is zstd-compressed when the blob's record says so.
func OpenBlob(aead cipher.AEAD, offset int, stored []byte) ([]byte, error) {
	return AppendOpenBlob(nil, aead, offset, stored)
}

// AppendOpenBlob is OpenBlob appending the body to dst, which it grows only
// when it lacks room. dst and stored must not overlap unless dst is
// stored[:0] (decryption in place).
func AppendOpenBlob(dst []byte, aead cipher.AEAD, offset int, stored []byte) ([]byte, error) {
	if err := checkAEAD(aead); err != nil {
		return nil, err
	}
	switch {
	case offset < 0 || int64(offset) > MaxDataLength:
		return nil, openCorrupt(offset, "offset outside 0..%d", int64(MaxDataLength))
	case len(stored) < TagSize:
		return nil, openCorrupt(offset, "truncated: %d bytes, shorter than the %d-byte tag", len(stored), TagSize)
	case len(stored)-TagSize > MaxBlobLength:
		return nil, openCorrupt(offset, "body of %d bytes exceeds the maximum %d", len(stored)-TagSize, MaxBlobLength)
	}
	nonce := blobNonce(offset)
	out, err := aead.Open(dst, nonce[:], stored, nil)
	if err != nil {
		return nil, openCorrupt(offset, "authentication failed (wrong key or damaged bytes)")
	}
	return out, nil
}

// blobCorrupt reports a bad record; the location is formatted only on error.
func blobCorrupt(i, n int, format string, args ...any) error {
	return corrupt(fmt.Sprintf("header: blob %d of %d", i, n), format, args...)
}

// openCorrupt reports a bad stored blob.
func openCorrupt(offset int, format string, args ...any) error {
	return corrupt(fmt.Sprintf("blob at offset %d", offset), format, args...)
}
