package chunker

import "github.com/zeebo/blake3"

// katSeed is the chunker seed of the known-answer tests: bytes 0, 1, ..., 31.
func katSeed() [32]byte {
	var s [32]byte
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

// katInput returns the first n bytes of the BLAKE3 extendable output for the
// message "bulwark chunker test input" (unkeyed), the input of the
// known-answer tests.
func katInput(n int) []byte {
	h := blake3.New()
	h.WriteString("bulwark chunker test input")
	b := make([]byte, n)
	if _, err := h.Digest().Read(b); err != nil {
		panic(err)
	}
	return b
}
