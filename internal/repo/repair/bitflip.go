package repair

// Single-bit correction by name. Every object but config and parity is
// named after the SHA-256 of its bytes, so the name is a checksum that can
// also locate one flipped bit: flip each bit in turn and keep the candidate
// whose hash is the name. A second preimage of SHA-256 is out of reach, so
// a match is the original object, byte for byte.
//
// Cost: a flip in 64-byte block k only changes the hash from block k on, so
// the hash state after each block boundary is computed once (midstates)
// and each candidate hashes only the rest of the object. For an object of
// n bytes that is up to 8n candidates of n/2 bytes on average, 4n² bytes
// hashed in all: 64 MiB for 4 KiB, 1 GiB for MaxFlipSearch (16 KiB). On a
// 2-core Xeon with SHA extensions a flip in the middle is found in 6 ms in
// 1 KiB, 93 ms in 4 KiB and 1.7 s in 16 KiB. Repair uses it on snapshots,
// which have no parity and are usually below 1 KiB; index files are
// rebuilt from the packs instead.

import (
	"crypto/sha256"
	"encoding"
	"hash"
)

// MaxFlipSearch is the largest object FixBitFlip searches.
const MaxFlipSearch = 16 << 10

// FixBitFlip returns data with one bit flipped such that its SHA-256 is
// want, or false when no single flip gives want (also when data already
// hashes to want, or is empty or longer than MaxFlipSearch). data is not
// modified.
func FixBitFlip(data []byte, want [32]byte) ([]byte, bool) {
	n := len(data)
	if n == 0 || n > MaxFlipSearch {
		return nil, false
	}
	buf := append([]byte(nil), data...)
	const block = 64
	// states[k] is the marshalled hash state after buf[:k*block].
	states := make([][]byte, (n+block-1)/block)
	h := sha256.New()
	for k := range states {
		st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, false
		}
		states[k] = st
		h.Write(buf[k*block : min((k+1)*block, n)])
	}
	var sum [32]byte
	for k, st := range states {
		for i := k * block; i < min((k+1)*block, n); i++ {
			for bit := range 8 {
				buf[i] ^= 1 << bit
				if hashFrom(h, st, buf[k*block:], &sum) && sum == want {
					return buf, true
				}
				buf[i] ^= 1 << bit
			}
		}
	}
	return nil, false
}

// hashFrom resumes h at state st, hashes rest and writes the sum.
func hashFrom(h hash.Hash, st, rest []byte, sum *[32]byte) bool {
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
		return false
	}
	h.Write(rest)
	h.Sum(sum[:0])
	return true
}
