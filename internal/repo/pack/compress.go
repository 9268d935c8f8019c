// This file compresses blob bodies (docs/repository-format.md, "Blobs and
// chunking"): a body is zstd(plaintext) when that is at least 1/16 smaller,
// precisely when 16*len(zstd) <= 15*len(plaintext), else the plaintext.
//
// The encoder is klauspost/compress/zstd at SpeedFastest (about zstd level
// 1) with a 1 MiB window (the average chunk; restic uses 512 KiB) and no
// frame checksum (the AEAD tag already covers the body). Frames always
// carry their content size.
//
// Why the fastest level: compression is the most expensive step of a
// backup. On the benchmark corpus (494 MB: Go sources, documentation,
// Python, 8% random) SpeedDefault (zstd level 3, restic's "auto") cost
// about 4 CPU-seconds of a 6-second backup and gave a repository of
// 203.5 MB; SpeedFastest cut that CPU by about 40% for a 209.0 MB
// repository, 2.7% larger, which is still within 1.6% of restic's 206.9 MB
// on the same corpus (our packs and indexes are leaner than restic's).
// Measured per blob, SpeedFastest is 6-8% larger on pure sources and prose.
//
// Incompressible input needs no sampling: the encoder's match finder skips
// ahead ever faster when it finds no matches and the block is then stored
// raw, so random data passes through at several GB/s per core, faster than
// it is encrypted. Sampling would also misjudge chunks that are partly
// compressible, which zstd handles per 128 KiB block.
//
// Decompression is bounded by the caller's raw length: the output buffer has
// capacity raw length (+16 bytes of slack the decoder wants), the decoder is
// told to stop at that capacity, and a frame header announcing more is
// refused before anything is allocated. A zip bomb therefore costs at most
// the memory the blob's record admits, itself capped at MaxBlobLength.
//
// One encoder and one decoder serve all goroutines: zstd's EncodeAll and
// DecodeAll are safe for concurrent use and keep GOMAXPROCS internal states
// each, so no call allocates once dst has capacity.

package pack

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Compression parameters (see the comment at the top of this file).
const (
	CompressionLevel  = zstd.SpeedFastest
	CompressionWindow = 1 << 20
)

// decoderSlack is the spare capacity the zstd decoder needs past the output
// to use its fast path (its compressedBlockOverAlloc).
const decoderSlack = 16

type zcodec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// codec builds the shared encoder and decoder on first use. They hold no
// state visible between calls.
var codec = sync.OnceValue(func() zcodec {
	n := runtime.GOMAXPROCS(0)
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(CompressionLevel),
		zstd.WithWindowSize(CompressionWindow),
		zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(n),
	)
	if err != nil {
		panic("pack: zstd encoder options: " + err.Error()) // constant options; cannot happen
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(n),
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(MaxBlobLength+decoderSlack),
		zstd.WithDecoderMaxWindow(MaxBlobLength),
	)
	if err != nil {
		panic("pack: zstd decoder options: " + err.Error()) // constant options; cannot happen
	}
	return zcodec{enc: enc, dec: dec}
})

// Compress returns the body to store for plaintext src. When compression
// saves at least 1/16 it returns the zstd frame, written into dst[:0]
// (allocating only when dst is too small), and true; otherwise it returns
// src itself and false. dst must not overlap src. Safe for concurrent use.
func Compress(dst, src []byte) (out []byte, compressed bool) {
	if len(src) == 0 {
		return src, false
	}
	c := codec().enc.EncodeAll(src, dst[:0])
	if 16*len(c) <= 15*len(src) {
		return c, true
	}
	return src, false
}

// Decompress decodes the zstd body src of a blob whose plaintext is rawLen
// bytes into dst[:0] and returns the plaintext. It never produces or
// allocates more than rawLen bytes (plus 16 bytes of slack) whatever src
// claims, and fails unless the output is exactly rawLen bytes. It does not
// allocate when cap(dst) >= rawLen+16. Safe for concurrent use.
func Decompress(dst, src []byte, rawLen int) ([]byte, error) {
	if rawLen < 0 || rawLen > MaxBlobLength {
		return nil, fmt.Errorf("zstd: raw length %d outside 0..%d", rawLen, MaxBlobLength)
	}
	var h zstd.Header
	if err := h.Decode(src); err == nil && h.HasFCS && h.FrameContentSize > uint64(rawLen) {
		return nil, fmt.Errorf("zstd: frame announces %d bytes, the blob has %d", h.FrameContentSize, rawLen)
	}
	if cap(dst) < rawLen+decoderSlack {
		dst = make([]byte, 0, rawLen+decoderSlack)
	}
	out, err := codec().dec.DecodeAll(src, dst[:0:rawLen+decoderSlack])
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("zstd: decoded %d bytes, the blob has %d", len(out), rawLen)
	}
	if rawLen > 0 && &out[0] == &dst[:1][0] {
		return dst[:rawLen], nil // full capacity back to the caller
	}
	return out, nil
}
