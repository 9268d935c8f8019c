package chunker

import (
	"bytes"
	"testing"
	"testing/iotest"
)

// FuzzChunker checks the invariants on arbitrary input and parameters:
// chunks concatenate to the input, respect the size bounds, agree with
// repeated Cut and with the byte-at-a-time reference, and do not depend on
// how the reader splits the input.
func FuzzChunker(f *testing.F) {
	f.Add([]byte{}, uint16(0), uint8(0), uint16(0))
	f.Add([]byte("hello, world"), uint16(1), uint8(0), uint16(1))
	f.Add(make([]byte, 5000), uint16(0), uint8(0), uint16(0))
	f.Add(katInput(9000), uint16(100), uint8(1), uint16(300))
	f.Add(katInput(20000), uint16(7), uint8(4), uint16(65535))
	f.Add(bytes.Repeat([]byte("abcdefghij"), 700), uint16(30), uint8(2), uint16(5))
	tab := NewTable(katSeed())
	f.Fuzz(func(t *testing.T, data []byte, minSel uint16, avgSel uint8, maxSel uint16) {
		avg := MinAvg << (avgSel % 5) // 256 .. 4096
		p := Params{
			Min: MinMin + int(minSel)%(avg-MinMin),
			Avg: avg,
			Max: avg + 1 + int(maxSel)%(8*avg),
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("derived params %+v invalid: %v", p, err)
		}
		want := cutAll(tab, p, data)
		for d := data; len(d) > 0; {
			n, r := Cut(tab, p, d), refCut(tab, p, d)
			if n != r {
				t.Fatalf("%+v: at offset %d: Cut = %d, reference = %d", p, len(data)-len(d), n, r)
			}
			d = d[n:]
		}
		got, err := chunkAll(New(bytes.NewReader(data), tab, p))
		if err != nil {
			t.Fatal(err)
		}
		checkChunks(t, p, data, got)
		if !equalInts(lengths(got), want) {
			t.Fatalf("%+v: Chunker lengths %v, Cut lengths %v", p, lengths(got), want)
		}
		got, err = chunkAll(New(iotest.OneByteReader(bytes.NewReader(data)), tab, p))
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(lengths(got), want) {
			t.Fatalf("%+v: one-byte reader lengths %v, Cut lengths %v", p, lengths(got), want)
		}
	})
}
