package chunker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/zeebo/blake3"
)

// refMask computes M(n) straight from the format's wording: the n highest
// set bits of 0x0000d9f003530000 for n <= 15, else that word with the n-15
// bits above bit 47 set.
func refMask(n int) uint64 {
	const base = 0x0000d9f003530000
	var m uint64
	if n > 15 {
		m = base
		for b := 48; b < 48+n-15; b++ {
			m |= 1 << b
		}
		return m
	}
	for b := 63; b >= 0 && n > 0; b-- {
		if base&(1<<b) != 0 {
			m |= 1 << b
			n--
		}
	}
	return m
}

// refCut is the reference chunker: the package comment's pseudo-code, one
// byte at a time, with masks from refMask.
func refCut(t *Table, p Params, data []byte) int {
	n := min(len(data), p.Max)
	if n <= p.Min {
		return n
	}
	a := bits.Len(uint(p.Avg)) - 1
	maskS, maskL := refMask(a+2), refMask(a-2)
	var h uint64
	for i := p.Min; i < n; i++ {
		h = (h << 1) + t[data[i]]
		mask := maskL
		if i < p.Avg {
			mask = maskS
		}
		if h&mask == 0 {
			return i + 1
		}
	}
	return n
}

// cutAll returns the chunk lengths of data by repeated Cut.
func cutAll(t *Table, p Params, data []byte) []int {
	var out []int
	for len(data) > 0 {
		n := Cut(t, p, data)
		if n <= 0 || n > len(data) {
			panic(fmt.Sprintf("Cut returned %d for %d bytes", n, len(data)))
		}
		out = append(out, n)
		data = data[n:]
	}
	return out
}

// chunkAll runs a Chunker over r and returns copies of its chunks and the
// error that ended it (nil for io.EOF).
func chunkAll(c *Chunker) ([][]byte, error) {
	var out [][]byte
	for {
		b, err := c.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(b))
	}
}

func lengths(chunks [][]byte) []int {
	out := make([]int, len(chunks))
	for i, c := range chunks {
		out[i] = len(c)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// smallParams exercise many boundaries on small inputs.
var smallParams = Params{Min: 64, Avg: 256, Max: 1024}

func TestMaskConstants(t *testing.T) {
	// The format's exact masks (package comment): M(n) for n = 6..26.
	want := map[int]uint64{
		6: 0x0000d98000000000, 7: 0x0000d9c000000000, 8: 0x0000d9e000000000,
		9: 0x0000d9f000000000, 10: 0x0000d9f002000000, 11: 0x0000d9f003000000,
		12: 0x0000d9f003400000, 13: 0x0000d9f003500000, 14: 0x0000d9f003520000,
		15: 0x0000d9f003530000, 16: 0x0001d9f003530000, 17: 0x0003d9f003530000,
		18: 0x0007d9f003530000, 19: 0x000fd9f003530000, 20: 0x001fd9f003530000,
		21: 0x003fd9f003530000, 22: 0x007fd9f003530000, 23: 0x00ffd9f003530000,
		24: 0x01ffd9f003530000, 25: 0x03ffd9f003530000, 26: 0x07ffd9f003530000,
	}
	for n := 6; n <= 26; n++ {
		got := mask(n)
		if got != want[n] || refMask(n) != want[n] {
			t.Errorf("M(%d) = %#016x, reference %#016x, want %#016x", n, got, refMask(n), want[n])
		}
		if c := bits.OnesCount64(got); c != n {
			t.Errorf("M(%d) has %d one bits", n, c)
		}
		if got>>63 != 0 {
			t.Errorf("M(%d) uses bit 63, which find's two-byte step cannot test", n)
		}
		if n > 6 && mask(n-1)&^got != 0 {
			t.Errorf("M(%d) is not a subset of M(%d)", n-1, n)
		}
	}
	s, l := DefaultParams().masks()
	if s != 0x007fd9f003530000 || l != 0x0007d9f003530000 {
		t.Errorf("default masks = %#016x, %#016x", s, l)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		p    Params
		want string // substring of the error; "" = valid
	}{
		{DefaultParams(), ""},
		{Params{256 << 10, 1 << 20, 8 << 20}, ""},
		{Params{64, 256, 257}, ""},
		{Params{MaxAvg - 1, MaxAvg, MaxMax}, ""},
		{Params{0, 0, 0}, "avg 0"},
		{Params{64, 128, 1024}, "avg 128: outside"},
		{Params{64, MaxAvg * 2, MaxMax}, "avg 33554432: outside"},
		{Params{64, 1000, 4096}, "avg 1000: not a power of two"},
		{Params{63, 256, 1024}, "min 63: below 64"},
		{Params{-1, 256, 1024}, "min -1"},
		{Params{256, 256, 1024}, "min 256: not below avg"},
		{Params{64, 256, 256}, "max 256: not above avg"},
		{Params{64, 256, -5}, "max -5"},
		{Params{1 << 20, 1 << 24, MaxMax + 1}, "max 134217729: above"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.p, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want %q", tt.p, err, tt.want)
		}
	}
}

func TestNewTable(t *testing.T) {
	seed := katSeed()
	tab := NewTable(seed)
	// Recompute every entry independently with a fresh keyed hasher.
	for i := range tab {
		h, err := blake3.NewKeyed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		msg := append([]byte("bulwark gear"), byte(i), byte(i>>8), byte(i>>16), byte(i>>24))
		h.Write(msg)
		sum := h.Sum(nil)
		var w uint64
		for j := 7; j >= 0; j-- {
			w = w<<8 | uint64(sum[j])
		}
		if tab[i] != w {
			t.Fatalf("gear[%d] = %#016x, want %#016x", i, tab[i], w)
		}
	}
	// Golden entries, so that the derivation cannot drift.
	golden := map[int]uint64{0: katGear0, 1: katGear1, 255: katGear255}
	for i, w := range golden {
		if tab[i] != w {
			t.Errorf("gear[%d] = %#016x, want %#016x", i, tab[i], w)
		}
	}
	if d := tableDigest(tab); fmt.Sprintf("%x", d) != katTableDigest {
		t.Errorf("table digest = %x, want %s", d, katTableDigest)
	}
	other := seed
	other[31] ^= 1
	if *NewTable(other) == *tab {
		t.Error("seeds differing in one bit give the same table")
	}
}

// TestCutMatchesReference compares Cut with the byte-at-a-time reference on
// random and structured inputs, for random valid parameters.
func TestCutMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := NewTable(katSeed())
	for iter := range 300 {
		p := randomParams(rng, 1<<14)
		var data []byte
		switch iter % 4 {
		case 0, 1:
			data = make([]byte, rng.IntN(8*p.Max))
			fillRandom(rng, data)
		case 2:
			data = make([]byte, rng.IntN(4*p.Max)) // all zero
		case 3: // low-entropy: a short random pattern repeated
			pat := make([]byte, 1+rng.IntN(40))
			fillRandom(rng, pat)
			data = bytes.Repeat(pat, rng.IntN(4*p.Max)/len(pat)+1)
		}
		for d := data; ; {
			got, want := Cut(tab, p, d), refCut(tab, p, d)
			if got != want {
				t.Fatalf("iter %d %+v: at offset %d of %d: Cut = %d, reference = %d", iter, p, len(data)-len(d), len(data), got, want)
			}
			if got == 0 {
				break
			}
			d = d[got:]
		}
	}
}

// TestKnownAnswers pins chunk lengths for a fixed seed and input (see
// kat_test.go), so that the format cannot change silently.
func TestKnownAnswers(t *testing.T) {
	tab := NewTable(katSeed())
	for _, kat := range knownAnswers {
		var data []byte
		if kat.zero {
			data = make([]byte, kat.size)
		} else {
			data = katInput(kat.size)
		}
		got := cutAll(tab, kat.p, data)
		if !equalInts(got, kat.lengths) {
			t.Errorf("%s: lengths\n got %v\nwant %v", kat.name, got, kat.lengths)
		}
		c := New(bytes.NewReader(data), tab, kat.p)
		chunks, err := chunkAll(c)
		if err != nil || !equalInts(lengths(chunks), kat.lengths) {
			t.Errorf("%s: Chunker lengths %v, %v", kat.name, lengths(chunks), err)
		}
	}
}

func TestSeedsGiveDifferentBoundaries(t *testing.T) {
	data := katInput(1 << 20)
	p := Params{Min: 2048, Avg: 8192, Max: 65536}
	var seeds [][32]byte
	for i := range 4 {
		var s [32]byte
		s[0] = byte(i)
		seeds = append(seeds, s)
	}
	cuts := make([]map[int]bool, len(seeds))
	for i, s := range seeds {
		cuts[i] = map[int]bool{}
		off := 0
		for _, l := range cutAll(NewTable(s), p, data) {
			off += l
			cuts[i][off] = true
		}
	}
	for i := range seeds {
		for j := i + 1; j < len(seeds); j++ {
			common := 0
			for off := range cuts[i] {
				if cuts[j][off] {
					common++
				}
			}
			// Two independent tables share a boundary only by chance
			// (the end of the input is always shared).
			if common > len(cuts[i])/10 {
				t.Errorf("seeds %d and %d share %d of %d boundaries", i, j, common, len(cuts[i]))
			}
		}
	}
}

// TestResynchronise checks the dedup property: after inserting bytes near
// the start, boundaries realign and most chunks are unchanged.
func TestResynchronise(t *testing.T) {
	tab := NewTable(katSeed())
	p := DefaultParams()
	orig := katInput(64 << 20)
	ins := bytes.Repeat([]byte("inserted"), 13)[:100]
	edited := append(append(append([]byte{}, orig[:100]...), ins...), orig[100:]...)

	seen := map[[32]byte]bool{}
	for d := orig; len(d) > 0; {
		n := Cut(tab, p, d)
		seen[blake3.Sum256(d[:n])] = true
		d = d[n:]
	}
	total, shared, chunks, sharedChunks := 0, 0, 0, 0
	for d := edited; len(d) > 0; {
		n := Cut(tab, p, d)
		chunks++
		total += n
		if seen[blake3.Sum256(d[:n])] {
			shared += n
			sharedChunks++
		}
		d = d[n:]
	}
	t.Logf("%d of %d chunks (%d of %d bytes) unchanged", sharedChunks, chunks, shared, total)
	// The edit can only change the chunks up to the first boundary at or
	// after it that lies beyond Min past the previous one: here the first
	// one or two.
	if chunks-sharedChunks > 2 || float64(shared) < 0.9*float64(total) {
		t.Errorf("only %d of %d chunks (%d of %d bytes) unchanged after an insertion at offset 100", sharedChunks, chunks, shared, total)
	}
}

// TestBounds checks the size invariants on random, all-zero and repetitive
// inputs with random valid parameters, through both Cut and Chunker.
func TestBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tab := NewTable(katSeed())
	for iter := range 200 {
		p := randomParams(rng, 1<<14)
		data := make([]byte, rng.IntN(10*p.Max))
		switch iter % 3 {
		case 0:
			fillRandom(rng, data)
		case 1: // all zero
		case 2:
			for i := range data {
				data[i] = byte(i % 7)
			}
		}
		c := New(bytes.NewReader(data), tab, p)
		chunks, err := chunkAll(c)
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		checkChunks(t, p, data, chunks)
		if got := cutAll(tab, p, data); !equalInts(got, lengths(chunks)) {
			t.Fatalf("%+v: Cut lengths %v, Chunker lengths %v", p, got, lengths(chunks))
		}
	}
}

// TestAllZero: on constant input the hash is constant after 64 bytes, so all
// chunks but the last have one length (the known answers pin it to Max for
// the test seed) and the bounds hold.
func TestAllZero(t *testing.T) {
	tab := NewTable(katSeed())
	p := DefaultParams()
	data := make([]byte, 3*p.Max+5)
	got := cutAll(tab, p, data)
	checkChunks(t, p, data, split(data, got))
	for _, l := range got[:len(got)-1] {
		if l != got[0] {
			t.Fatalf("chunks of zeros have different lengths: %v", got)
		}
	}
}

func split(data []byte, ls []int) [][]byte {
	var out [][]byte
	for _, l := range ls {
		out = append(out, data[:l])
		data = data[l:]
	}
	return out
}

// checkChunks asserts that chunks concatenate to data and respect p.
func checkChunks(t *testing.T, p Params, data []byte, chunks [][]byte) {
	t.Helper()
	if !bytes.Equal(bytes.Join(chunks, nil), data) {
		t.Fatalf("%+v: chunks do not concatenate to the input", p)
	}
	for i, c := range chunks {
		last := i == len(chunks)-1
		if len(c) > p.Max || len(c) == 0 || (!last && len(c) <= p.Min) {
			t.Fatalf("%+v: chunk %d of %d has %d bytes", p, i, len(chunks), len(c))
		}
	}
}

func TestEmptyInput(t *testing.T) {
	tab := NewTable(katSeed())
	if n := Cut(tab, DefaultParams(), nil); n != 0 {
		t.Errorf("Cut(empty) = %d", n)
	}
	c := New(bytes.NewReader(nil), tab, DefaultParams())
	for range 2 {
		if b, err := c.Next(); err != io.EOF || b != nil {
			t.Errorf("Next on empty input = %d bytes, %v", len(b), err)
		}
	}
}

func TestShortInputs(t *testing.T) {
	tab := NewTable(katSeed())
	p := smallParams
	for n := 1; n <= p.Min+1; n++ {
		data := katInput(n)
		if got := Cut(tab, p, data); got != n {
			t.Errorf("Cut of %d bytes = %d", n, got)
		}
	}
}

func TestInvalidArguments(t *testing.T) {
	tab := NewTable(katSeed())
	bad := Params{Min: 64, Avg: 300, Max: 1024}
	if n := Cut(tab, bad, []byte("x")); n != -1 {
		t.Errorf("Cut with %+v = %d", bad, n)
	}
	if n := Cut(nil, smallParams, []byte("x")); n != -1 {
		t.Errorf("Cut with nil table = %d", n)
	}
	c := New(strings.NewReader("data"), tab, bad)
	if _, err := c.Next(); err == nil || !strings.Contains(err.Error(), "avg 300") {
		t.Errorf("Next with bad params: %v", err)
	}
	c.Reset(strings.NewReader("more")) // must not clear the error
	if _, err := c.Next(); err == nil {
		t.Error("Next after Reset with bad params: no error")
	}
	c = New(strings.NewReader("data"), nil, smallParams)
	if _, err := c.Next(); err == nil || !strings.Contains(err.Error(), "nil gear table") {
		t.Errorf("Next with nil table: %v", err)
	}
}

func TestReset(t *testing.T) {
	tab := NewTable(katSeed())
	p := smallParams
	rng := rand.New(rand.NewPCG(5, 6))
	inputs := [][]byte{make([]byte, 10000), nil, make([]byte, 5*p.Max+17), make([]byte, 3), make([]byte, 2*p.Max)}
	for _, in := range inputs {
		fillRandom(rng, in)
	}
	c := New(nil, tab, p)
	for i, in := range inputs {
		// Leave the previous stream half read before resetting.
		c.Reset(bytes.NewReader(in))
		got, err := chunkAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := cutAll(tab, p, in); !equalInts(lengths(got), want) {
			t.Errorf("input %d after Reset: lengths %v, want %v", i, lengths(got), want)
		}
		checkChunks(t, p, in, got)
		c.Reset(bytes.NewReader(inputs[0]))
		if _, err := c.Next(); err != nil {
			t.Fatal(err)
		}
	}
	// Reset after an error clears it.
	c.Reset(iotest.ErrReader(errors.New("boom")))
	if _, err := c.Next(); err == nil {
		t.Fatal("no error from failing reader")
	}
	c.Reset(bytes.NewReader(inputs[2]))
	if got, err := chunkAll(c); err != nil || !equalInts(lengths(got), cutAll(tab, p, inputs[2])) {
		t.Errorf("after Reset from an error: %v, %v", lengths(got), err)
	}
}

// TestReaders feeds the same input through readers that return little data
// per call; the chunks must not depend on how the input arrives.
func TestReaders(t *testing.T) {
	tab := NewTable(katSeed())
	for _, p := range []Params{smallParams, {Min: 1024, Avg: 4096, Max: 16384}} {
		data := katInput(20*p.Max + 123)
		want := cutAll(tab, p, data)
		readers := map[string]func() io.Reader{
			"one byte":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
			"half":       func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
			"data + EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
			"stutter":    func() io.Reader { return &stutterReader{data: data} },
		}
		for name, r := range readers {
			got, err := chunkAll(New(r(), tab, p))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !equalInts(lengths(got), want) {
				t.Errorf("%s %+v: lengths %v, want %v", name, p, lengths(got), want)
			}
			checkChunks(t, p, data, got)
		}
	}
}

// stutterReader returns 0 bytes on every other call and otherwise 1..97.
type stutterReader struct {
	data []byte
	n    int
}

func (r *stutterReader) Read(b []byte) (int, error) {
	r.n++
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.n%2 == 0 {
		return 0, nil
	}
	k := copy(b[:min(len(b), 1+r.n%97)], r.data)
	r.data = r.data[k:]
	return k, nil
}

func TestReadError(t *testing.T) {
	tab := NewTable(katSeed())
	p := smallParams
	data := katInput(50000)
	want := cutAll(tab, p, data)
	boom := errors.New("disk on fire")
	for _, failAt := range []int{0, 1, 63, 64, 1000, 30000, 49999} {
		r := io.MultiReader(bytes.NewReader(data[:failAt]), iotest.ErrReader(boom))
		c := New(r, tab, p)
		got, err := chunkAll(c)
		if !errors.Is(err, boom) {
			t.Fatalf("fail at %d: error %v, want %v", failAt, err, boom)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("read at byte %d", failAt)) {
			t.Errorf("fail at %d: error %q does not name the offset", failAt, err)
		}
		// What was returned is a prefix of the true chunks, within the data read.
		gl := lengths(got)
		if len(gl) > len(want) || !equalInts(gl, want[:len(gl)]) {
			t.Errorf("fail at %d: returned lengths %v, not a prefix of %v", failAt, gl, want)
		}
		if n := len(bytes.Join(got, nil)); n > failAt || n < failAt-p.Max {
			t.Errorf("fail at %d: returned %d bytes", failAt, n)
		}
		if _, err2 := c.Next(); !errors.Is(err2, boom) {
			t.Errorf("fail at %d: second Next: %v", failAt, err2)
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestNoProgress(t *testing.T) {
	c := New(zeroReader{}, NewTable(katSeed()), smallParams)
	if _, err := c.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("Next on a reader that never returns data: %v", err)
	}
}

type badCountReader struct{}

func (badCountReader) Read(b []byte) (int, error) { return len(b) + 1, nil }

func TestBadReadCount(t *testing.T) {
	c := New(badCountReader{}, NewTable(katSeed()), smallParams)
	if _, err := c.Next(); err == nil || !strings.Contains(err.Error(), "invalid count") {
		t.Errorf("Next on a reader that over-reports: %v", err)
	}
}

func TestNextAllocs(t *testing.T) {
	tab := NewTable(katSeed())
	p := smallParams
	data := katInput(100 * p.Max)
	r := bytes.NewReader(data)
	c := New(r, tab, p)
	allocs := testing.AllocsPerRun(5, func() {
		r.Reset(data)
		c.Reset(r)
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per stream", allocs)
	}
}

// randomParams returns valid parameters with Avg at most maxAvg.
func randomParams(rng *rand.Rand, maxAvg int) Params {
	avg := MinAvg << rng.IntN(bits.Len(uint(maxAvg/MinAvg)))
	min := MinMin + rng.IntN(avg-MinMin)
	max := avg + 1 + rng.IntN(8*avg)
	return Params{Min: min, Avg: avg, Max: max}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// TestBufferGrowth checks that the buffer stays at its initial size while
// chunks are near Avg, grows (to Max here: doubling 4*Avg twice) when a
// chunk is longer than it, and that chunks are the same either way, whatever
// the reads' sizes.
func TestBufferGrowth(t *testing.T) {
	tab := NewTable(katSeed())
	p := Params{Min: 1024, Avg: 4096, Max: 64 << 10}
	init := initialBuffer(p)
	if init != 4*p.Avg {
		t.Fatalf("initial buffer %d, want 4*Avg = %d", init, 4*p.Avg)
	}
	random := katInput(50 * p.Max)
	mixed := append(append(append([]byte(nil), random[:10*p.Max]...), make([]byte, 3*p.Max+77)...), random[10*p.Max:20*p.Max]...)
	for _, tc := range []struct {
		name    string
		data    []byte
		wantBuf int
	}{
		{"random", random, init},
		{"zeros in the middle", mixed, p.Max},
		{"zeros only", make([]byte, 5*p.Max), p.Max},
	} {
		want := cutAll(tab, p, tc.data)
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(tc.data),
			"stutter":  &stutterReader{data: tc.data},
			"one byte": iotest.OneByteReader(bytes.NewReader(tc.data)),
		} {
			c := New(r, tab, p)
			got, err := chunkAll(c)
			if err != nil {
				t.Fatalf("%s, %s: %v", tc.name, name, err)
			}
			if !equalInts(lengths(got), want) {
				t.Fatalf("%s, %s: lengths differ from Cut's", tc.name, name)
			}
			checkChunks(t, p, tc.data, got)
			if len(c.buf) != tc.wantBuf {
				t.Errorf("%s, %s: buffer of %d bytes, want %d", tc.name, name, len(c.buf), tc.wantBuf)
			}
		}
	}
	// With a Max below 2*Avg, the buffer starts (and stays) at 2*Max.
	q := Params{Min: 1024, Avg: 4096, Max: 6000}
	if c := New(bytes.NewReader(random), tab, q); len(c.buf) != 2*q.Max {
		t.Errorf("Max %d: buffer of %d bytes, want %d", q.Max, len(c.buf), 2*q.Max)
	}
}
