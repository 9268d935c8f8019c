//go:build !cgo

// The encoder of a build without cgo: klauspost/compress/zstd at its
// fastest level (see the comment at the top of compress.go).

package pack

// EncoderName names the zstd encoder this build compresses with.
const EncoderName = "klauspost/compress SpeedFastest"

// encode returns the zstd frame of src, appended to dst.
func encode(dst, src []byte) []byte {
	return goEncoder().EncodeAll(src, dst)
}
