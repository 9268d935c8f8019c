package chunker

import (
	"bytes"
	"io"
	"testing"
)

// benchInput is 64 MiB of pseudo-random bytes.
func benchInput(b *testing.B) []byte {
	b.Helper()
	return katInput(64 << 20)
}

// BenchmarkCut measures cutting in-memory data into chunks with the default
// parameters. The first Min bytes of each chunk are skipped, so the hashed
// fraction is about (mean-Min)/mean of the input.
func BenchmarkCut(b *testing.B) {
	data := benchInput(b)
	t := NewTable(katSeed())
	p := DefaultParams()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		for d := data; len(d) > 0; {
			d = d[Cut(t, p, d):]
		}
	}
}

// BenchmarkChunker measures the streaming Chunker over a bytes.Reader,
// including the copy into its buffer.
func BenchmarkChunker(b *testing.B) {
	data := benchInput(b)
	t := NewTable(katSeed())
	c := New(nil, t, DefaultParams())
	r := bytes.NewReader(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Reset(data)
		c.Reset(r)
		for {
			if _, err := c.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkHash measures the raw inner loop: the gear hash over every byte
// with a mask that never matches, i.e. the speed of the part of a chunk after
// Min.
func BenchmarkHash(b *testing.B) {
	data := benchInput(b)
	t := NewTable(katSeed())
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if i, _ := t.find(data, 0, 0xffffffffffffffff); i >= 0 {
			b.Fatal("all-ones mask matched")
		}
	}
}
