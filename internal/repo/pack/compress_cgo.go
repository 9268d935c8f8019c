//go:build cgo

// The encoder of a build with cgo: the reference zstd library (version
// 1.5.7, compiled from the C sources DataDog/zstd vendors) at level 1. It
// compresses the benchmark corpus in pieces of at most 1 MiB at 500 MB/s
// per core into 224.5 MB, where klauspost/compress at its fastest level
// manages 299 MB/s into 226.6 MB (see the comment at the top of
// compress.go). Only the encoder is C; everything read from a repository
// is decoded by the pure-Go decoder, so no C code ever parses untrusted
// bytes.

package pack

import (
	"runtime"
	"sync"

	czstd "github.com/DataDog/zstd"
)

// EncoderName names the zstd encoder this build compresses with.
const EncoderName = cEncoderName

const cLevel = 1

// cctxs holds GOMAXPROCS C compression contexts (each holds the level's
// hash table and block buffers); a caller takes one for the duration of a call and
// waits when all are busy, which costs nothing on CPU-bound work and bounds
// the C memory, which Go's memory limit does not see. (A sync.Pool would be
// emptied by every other garbage collection and make new contexts.)
var cctxs = sync.OnceValue(func() chan czstd.Ctx {
	n := runtime.GOMAXPROCS(0)
	ch := make(chan czstd.Ctx, n)
	for range n {
		ch <- czstd.NewCtx()
	}
	return ch
})

// encode returns the zstd frame of src, written into dst[:0] when it has
// room for the worst case. The frame carries its content size and no
// checksum (ZSTD_compressCCtx's defaults).
func encode(dst, src []byte) []byte {
	pool := cctxs()
	c := <-pool
	out, err := c.CompressLevel(dst[:cap(dst)], src, cLevel)
	pool <- c
	if err != nil {
		// Only a too-small destination or an allocation failure can make
		// the one-shot compressor fail; CompressLevel sizes the
		// destination, so this is out of memory.
		panic("pack: zstd: " + err.Error())
	}
	return out
}
