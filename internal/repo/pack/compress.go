// This file compresses blob bodies (docs/repository-format.md, "Blobs and
// chunking"): a body is zstd(plaintext) when that is at least 1/16 smaller,
// precisely when 16*len(zstd) <= 15*len(plaintext), else the plaintext.
//
// Frames carry no checksum (the AEAD tag already covers the body) and
// announce their content size (the Go encoder leaves it out under 256
// bytes). Which encoder makes them is not part of the format:
//
//   - with cgo (the default wherever a C compiler is installed, and what
//     `make build` ships): the reference zstd library at level 1
//     (compress_cgo.go);
//   - without cgo (CGO_ENABLED=0): klauspost/compress/zstd at SpeedFastest,
//     about zstd level 1, with a 1 MiB window (compress_purego.go).
//
// Every body is decoded by klauspost/compress's pure-Go decoder, whichever
// build wrote it.
//
// Why these levels: compression is the most expensive step of a backup.
// On the benchmark corpus (496 MB: Go sources, documentation, Python, 8%
// random), each file cut in pieces of at most 1 MiB as the chunker would,
// on one core of an Intel Xeon VM:
//
//	encoder                          MB/s   stored MB
//	libzstd level 1 (cgo builds)      500     224.5
//	libzstd level 2                   442     221.2
//	libzstd level 3                   374     217.8
//	klauspost SpeedFastest (no cgo)   299     226.6
//	klauspost SpeedDefault (restic)   226     220.1
//
// Level 1 of the C library is more than twice as fast as restic's setting
// for 2% more. In a whole first backup of that corpus, level 1 instead of 2
// took the CPU time from 2.72 s to 2.55 s and the wall time from 1.58 s to
// 1.53 s (medians of 10 alternating runs) and made the repository 1.6%
// larger (208.3 MB instead of 204.9 MB), within 1.5% of restic's
// repository of the same data (docs/benchmarks.md). Earlier, the C
// encoder instead of SpeedFastest took the wall time from 1.98 s to 1.63 s.
// Per blob SpeedFastest is 6-8% larger than SpeedDefault on pure sources
// and prose.
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
	GoCompressionLevel = zstd.SpeedFastest
	CompressionWindow  = 1 << 20
)

// decoderSlack is the spare capacity the zstd decoder needs past the output
// to use its fast path (its compressedBlockOverAlloc).
const decoderSlack = 16

// cEncoderName is EncoderName in builds with cgo.
const cEncoderName = "libzstd 1.5.7 level 1"

// decoder is the shared zstd decoder, built on first use. It holds no state
// visible between calls.
var decoder = sync.OnceValue(func() *zstd.Decoder {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(MaxBlobLength+decoderSlack),
		zstd.WithDecoderMaxWindow(MaxBlobLength),
	)
	if err != nil {
		panic("pack: zstd decoder options: " + err.Error()) // constant options; cannot happen
	}
	return dec
})

// goEncoder is klauspost/compress's encoder at SpeedFastest, built on first
// use: the encoder of builds without cgo (compress_purego.go).
var goEncoder = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(GoCompressionLevel),
		zstd.WithWindowSize(CompressionWindow),
		zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
	)
	if err != nil {
		panic("pack: zstd encoder options: " + err.Error()) // constant options; cannot happen
	}
	return enc
})

// CompressBound is the largest zstd frame of n input bytes (zstd's
// ZSTD_COMPRESSBOUND): Compress does not allocate when cap(dst) is at
// least CompressBound(len(src)).
func CompressBound(n int) int {
	b := n + n>>8
	if n < 128<<10 {
		b += (128<<10 - n) >> 11
	}
	return b
}

// Compress returns the body to store for plaintext src. When compression
// saves at least 1/16 it returns the zstd frame, written into dst[:0]
// (allocating only when cap(dst) < CompressBound(len(src))), and true;
// otherwise it returns src itself and false. dst must not overlap src. Safe
// for concurrent use.
func Compress(dst, src []byte) (out []byte, compressed bool) {
	if len(src) == 0 {
		return src, false
	}
	c := encode(dst[:0], src)
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
	out, err := decoder().DecodeAll(src, dst[:0:rawLen+decoderSlack])
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
