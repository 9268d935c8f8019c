package parity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func randomPack(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(n))
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

func mustEncode(t testing.TB, p Params, pack []byte) []byte {
	t.Helper()
	obj, err := Encode(p, pack)
	if err != nil {
		t.Fatalf("Encode(%+v, %d bytes): %v", p, len(pack), err)
	}
	return obj
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{Params{1, 1}, true},
		{Params{128, 2}, true},
		{Params{255, 1}, true},
		{Params{1, 255}, true},
		{Params{200, 56}, true},
		{Params{0, 1}, false},
		{Params{256, 1}, false},
		{Params{1, 0}, false},
		{Params{200, 57}, false},
		{Params{255, 2}, false},
		{Params{-1, 2}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.p, err, tc.ok)
		}
		if tc.ok {
			continue // encoding with valid Params is tested below
		}
		if _, err := Encode(tc.p, []byte("x")); err == nil {
			t.Errorf("Encode(%+v) succeeded", tc.p)
		}
		if _, err := NewCoder(tc.p); err == nil {
			t.Errorf("NewCoder(%+v) succeeded", tc.p)
		}
	}
}

func TestShardSize(t *testing.T) {
	for _, tc := range []struct {
		L    int64
		d    int
		want int64
	}{
		{0, 128, 0},
		{1, 128, 1},
		{128, 128, 1},
		{129, 128, 2},
		{4096 * 128, 128, 4096},
		{4096*128 + 1, 128, 8192},
		{16 << 20, 128, 128 << 10},
		{16<<20 + 1, 128, 128<<10 + 4096},
		{16 << 20, 255, 69632}, // ceil = 65794 -> 17 * 4096
		{16 << 20, 100, 167936},
		{5, 1, 5},
		{-1, 1, -1},
		{1 << 40, 1, -1},
		{255 * (1<<32 - 4096), 255, 1<<32 - 4096},
		{255*(1<<32-4096) + 1, 255, -1},
	} {
		if got := ShardSize(tc.L, tc.d); got != tc.want {
			t.Errorf("ShardSize(%d, %d) = %d, want %d", tc.L, tc.d, got, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 2, 127, 4095, 4096, 4097, 128*4096 + 1, 1<<20 + 3}
	params := []Params{{1, 1}, {2, 1}, {4, 2}, {128, 2}, {100, 1}, {255, 1}, {1, 255}, {64, 2}}
	for _, p := range params {
		c, err := NewCoder(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%d bytes %d+%d", n, p.DataShards, p.ParityShards), func(t *testing.T) {
				pack := randomPack(1, n)
				obj, err := c.Encode(pack)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(obj)) != ObjectSize(p, int64(n)) {
					t.Fatalf("object is %d bytes, ObjectSize says %d", len(obj), ObjectSize(p, int64(n)))
				}
				h, err := Parse(obj)
				if err != nil {
					t.Fatal(err)
				}
				if h.Params != p || h.PackLength != int64(n) || int64(h.ShardSize) != ShardSize(int64(n), p.DataShards) || len(h.ShardHashes) != p.DataShards+p.ParityShards {
					t.Fatalf("Parse = %+v", h)
				}
				bad, err := Check(pack, obj)
				if err != nil || bad != nil {
					t.Fatalf("Check of an intact pack = %v, %v", bad, err)
				}
				fixed, rep, err := c.Repair(pack, obj)
				if err != nil || rep != nil || !bytes.Equal(fixed, pack) {
					t.Fatalf("Repair of an intact pack: repaired %v, %v", rep, err)
				}
				if n > 0 && &fixed[0] == &pack[0] {
					t.Fatal("Repair returned the input slice")
				}
			})
		}
	}
}

// TestSingleBitFlips flips one bit at many positions, including the first
// and last byte and every byte region of the partial last shard; Repair
// must return the original exactly and name the shard.
func TestSingleBitFlips(t *testing.T) {
	for _, tc := range []struct {
		p Params
		n int
	}{
		{Params{128, 2}, 1<<20 + 12345},
		{Params{255, 1}, 3<<20 + 1},
		{Params{4, 2}, 10},
		{Params{1, 1}, 100},
	} {
		t.Run(fmt.Sprintf("%d+%d %d bytes", tc.p.DataShards, tc.p.ParityShards, tc.n), func(t *testing.T) {
			pack := randomPack(2, tc.n)
			c, err := NewCoder(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := c.Encode(pack)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := Parse(obj)
			S := h.ShardSize
			last := (tc.n - 1) / S
			positions := []int{0, tc.n - 1, last * S, (last*S + tc.n - 1) / 2, S - 1, min(S, tc.n-1)}
			r := rand.New(rand.NewPCG(3, uint64(tc.n)))
			for range 40 {
				positions = append(positions, r.IntN(tc.n))
			}
			for _, pos := range positions {
				bit := r.IntN(8)
				damaged := bytes.Clone(pack)
				damaged[pos] ^= 1 << bit
				bad, err := Check(damaged, obj)
				if err != nil || !slices.Equal(bad, []int{pos / S}) {
					t.Fatalf("flip at %d.%d: Check = %v, %v; want [%d]", pos, bit, bad, err, pos/S)
				}
				fixed, rep, err := c.Repair(damaged, obj)
				if err != nil || !bytes.Equal(fixed, pack) || !slices.Equal(rep, []int{pos / S}) {
					t.Fatalf("flip at %d.%d: Repair repaired %v, %v, equal=%v", pos, bit, rep, err, bytes.Equal(fixed, pack))
				}
			}
		})
	}
}

// damage overwrites a random run inside shard i of the pack (i < d) or of
// the parity object (i >= d).
func damage(r *rand.Rand, h Header, pack, obj []byte, i int) {
	var region []byte
	if i < h.DataShards {
		s, e := h.ShardRange(i)
		region = pack[s:e]
	} else {
		region = h.parityShard(obj, i-h.DataShards)
	}
	start := r.IntN(len(region))
	end := start + 1 + r.IntN(len(region)-start)
	for k := start; k < end; k++ {
		region[k] ^= byte(1 + r.IntN(255))
	}
}

func TestRepairUpToParityShards(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	for _, tc := range []struct {
		p   Params
		n   int
		bad []int
	}{
		{Params{128, 2}, 16 << 20, []int{0, 127}},
		{Params{128, 2}, 16 << 20, []int{5, 6}},
		{Params{128, 2}, 16 << 20, []int{64, 129}},  // a data and a parity shard
		{Params{128, 2}, 16 << 20, []int{128, 129}}, // both parity shards
		{Params{64, 2}, 5<<20 + 7, []int{3, 60}},    // S = 86016: shards 61..63 are all padding
		{Params{10, 4}, 100000, []int{0, 3, 8, 12}},
		{Params{1, 3}, 5000, []int{0, 1, 3}},
		{Params{255, 1}, 16 << 20, []int{240}}, // S = 69632: shard 240 is the last with data
	} {
		t.Run(fmt.Sprintf("%d+%d %v", tc.p.DataShards, tc.p.ParityShards, tc.bad), func(t *testing.T) {
			pack := randomPack(5, tc.n)
			obj := mustEncode(t, tc.p, pack)
			h, _ := Parse(obj)
			damaged, dobj := bytes.Clone(pack), bytes.Clone(obj)
			for _, i := range tc.bad {
				damage(r, h, damaged, dobj, i)
			}
			bad, err := Check(damaged, dobj)
			if err != nil || !slices.Equal(bad, tc.bad) {
				t.Fatalf("Check = %v, %v; want %v", bad, err, tc.bad)
			}
			fixed, rep, err := Repair(damaged, dobj)
			if err != nil || !slices.Equal(rep, tc.bad) || !bytes.Equal(fixed, pack) {
				t.Fatalf("Repair: repaired %v, %v, equal=%v", rep, err, bytes.Equal(fixed, pack))
			}
		})
	}
}

func TestTooDamaged(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 7))
	for _, tc := range []struct {
		p    Params
		n    int
		bad  []int
		want string
	}{
		{Params{128, 2}, 1 << 20, []int{1, 2, 3}, "3 of 130 shards (data 1 at bytes 8192..16384, data 2 at bytes 16384..24576, data 3 at bytes 24576..32768) damaged, only 2 can be rebuilt"},
		{Params{128, 2}, 1 << 20, []int{0, 50, 129}, "3 of 130 shards (data 0 at bytes 0..8192, data 50 at bytes 409600..417792, parity 1) damaged, only 2 can be rebuilt"},
		{Params{255, 1}, 255 * 4096, []int{0, 254}, "2 of 256 shards (data 0 at bytes 0..4096, data 254 at bytes 1040384..1044480) damaged, only 1 can be rebuilt"},
	} {
		t.Run(fmt.Sprint(tc.bad), func(t *testing.T) {
			pack := randomPack(7, tc.n)
			obj := mustEncode(t, tc.p, pack)
			h, _ := Parse(obj)
			for _, i := range tc.bad {
				damage(r, h, pack, obj, i)
			}
			if bad, err := Check(pack, obj); err != nil || !slices.Equal(bad, tc.bad) {
				t.Fatalf("Check = %v, %v; want %v", bad, err, tc.bad)
			}
			_, _, err := Repair(pack, obj)
			if !errors.Is(err, ErrTooDamaged) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Repair err = %v\nwant ErrTooDamaged containing %q", err, tc.want)
			}
		})
	}
}

// TestCorruptObject flips every bit of a small parity object: a flip in
// the header must make Parse (and so Check and Repair) fail, a flip in a
// parity shard must show as that shard being bad, and Repair must still
// return the pack.
func TestCorruptObject(t *testing.T) {
	p := Params{3, 2}
	pack := randomPack(8, 50)
	obj := mustEncode(t, p, pack)
	hs := int(headerSize(p))
	S := 17
	if len(obj) != hs+2*S {
		t.Fatalf("object is %d bytes, want %d", len(obj), hs+2*S)
	}
	for bit := 0; bit < 8*len(obj); bit++ {
		o := bytes.Clone(obj)
		o[bit/8] ^= 1 << (bit % 8)
		bad, err := Check(pack, o)
		if bit/8 < hs {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip of header bit %d: Check = %v, %v; want ErrCorrupt", bit, bad, err)
			}
			if _, _, err := Repair(pack, o); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip of header bit %d: Repair err = %v", bit, err)
			}
			continue
		}
		want := []int{p.DataShards + (bit/8-hs)/S}
		if err != nil || !slices.Equal(bad, want) {
			t.Fatalf("flip of parity bit %d: Check = %v, %v; want %v", bit, bad, err, want)
		}
		fixed, rep, err := Repair(pack, o)
		if err != nil || !slices.Equal(rep, want) || !bytes.Equal(fixed, pack) {
			t.Fatalf("flip of parity bit %d: Repair repaired %v, %v", bit, rep, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	p := Params{4, 2}
	obj := mustEncode(t, p, randomPack(9, 1000))
	resum := func(o []byte) []byte {
		hs := headerSize(p)
		sum := sha256.Sum256(o[:hs-HashSize])
		copy(o[hs-HashSize:], sum[:])
		return o
	}
	edit := func(f func(o []byte) []byte) []byte { return f(bytes.Clone(obj)) }
	for _, tc := range []struct {
		name string
		obj  []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short", obj[:14], "truncated"},
		{"cut", obj[:len(obj)-1], "want"},
		{"extended", append(bytes.Clone(obj), 0), "want"},
		{"version 2", edit(func(o []byte) []byte { o[0] = 2; return resum(o) }), "unknown version 2"},
		{"zero data shards", edit(func(o []byte) []byte { o[1] = 0; return o }), "data shards 0"},
		{"zero parity shards", edit(func(o []byte) []byte { o[2] = 0; return o }), "parity shards 0"},
		{"too many shards", edit(func(o []byte) []byte { o[1] = 255; return o }), "parity shards 2 outside 1..1"},
		{"wrong shard size", edit(func(o []byte) []byte { binary.LittleEndian.PutUint32(o[3:], 251); return resum(o) }), "shard size 251, want 250"},
		{"wrong pack length", edit(func(o []byte) []byte { binary.LittleEndian.PutUint64(o[7:], 1004); return resum(o) }), "shard size 250, want 251"},
		{"huge pack length", edit(func(o []byte) []byte { binary.LittleEndian.PutUint64(o[7:], 1<<63); return resum(o) }), "out of range"},
		{"shard hash changed", edit(func(o []byte) []byte { o[FixedSize+40] ^= 1; return o }), "header checksum mismatch"},
		{"checksum changed", edit(func(o []byte) []byte { o[headerSize(p)-1] ^= 0x80; return o }), "header checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.obj)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse err = %v, want ErrCorrupt containing %q", err, tc.want)
			}
		})
	}
}

// TestLength covers packs of the wrong length: truncated, extended, and
// the cases the shard hashes alone cannot see (zeros cut or appended).
func TestLength(t *testing.T) {
	p := Params{128, 2}
	pack := randomPack(10, 1<<20+5000) // S = 12288, data in shards 0..85
	zeroTail := append(bytes.Clone(pack[:len(pack)-100]), make([]byte, 100)...)
	h, _ := Parse(mustEncode(t, p, pack))
	S := h.ShardSize
	for _, tc := range []struct {
		name     string
		orig     []byte
		damaged  func(b []byte) []byte
		wantBad  []int
		repaired bool
	}{
		{"cut by 1", pack, func(b []byte) []byte { return b[:len(b)-1] }, []int{(len(pack) - 1) / S}, true},
		{"cut by one shard", pack, func(b []byte) []byte { return b[:len(b)-S] }, []int{(len(pack) - S) / S, (len(pack) - 1) / S}, true},
		{"cut by two shards", pack, func(b []byte) []byte { return b[:len(b)-2*S] }, []int{(len(pack) - 2*S) / S, (len(pack)-2*S)/S + 1, (len(pack) - 1) / S}, false},
		{"cut to nothing", pack, func(b []byte) []byte { return nil }, nil, false},
		{"extended by random bytes", pack, func(b []byte) []byte { return append(b, 1, 2, 3) }, []int{(len(pack) - 1) / S}, true},
		{"extended by zeros", pack, func(b []byte) []byte { return append(b, 0, 0) }, []int{(len(pack) - 1) / S}, true},
		{"extended by a megabyte", pack, func(b []byte) []byte { return append(b, make([]byte, 1<<20)...) }, []int{(len(pack) - 1) / S}, true},
		{"trailing zeros cut", zeroTail, func(b []byte) []byte { return b[:len(b)-50] }, []int{(len(zeroTail) - 50) / S}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := mustEncode(t, p, tc.orig)
			d := tc.damaged(bytes.Clone(tc.orig))
			bad, err := Check(d, obj)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantBad != nil && !slices.Equal(bad, tc.wantBad) {
				t.Fatalf("Check = %v, want %v", bad, tc.wantBad)
			}
			if len(bad) == 0 {
				t.Fatal("Check found nothing wrong")
			}
			fixed, _, err := Repair(d, obj)
			if tc.repaired {
				if err != nil || !bytes.Equal(fixed, tc.orig) {
					t.Fatalf("Repair: %v, equal=%v", err, bytes.Equal(fixed, tc.orig))
				}
			} else if !errors.Is(err, ErrTooDamaged) {
				t.Fatalf("Repair err = %v, want ErrTooDamaged", err)
			}
		})
	}
}

func TestTinyPacks(t *testing.T) {
	p := Params{128, 2}
	empty := mustEncode(t, p, nil)
	if h, err := Parse(empty); err != nil || h.ShardSize != 0 || h.PackLength != 0 || len(empty) != int(headerSize(p)) {
		t.Fatalf("empty pack: %+v, %v, %d bytes", h, err, len(empty))
	}
	if bad, err := Check(nil, empty); err != nil || bad != nil {
		t.Fatalf("Check(empty) = %v, %v", bad, err)
	}
	if bad, err := Check([]byte{0}, empty); err != nil || !slices.Equal(bad, []int{0}) {
		t.Fatalf("Check(1 byte) against an empty pack = %v, %v; want [0]", bad, err)
	}
	if fixed, rep, err := Repair([]byte{7, 7}, empty); err != nil || len(fixed) != 0 || !slices.Equal(rep, []int{0}) {
		t.Fatalf("Repair(2 bytes) against an empty pack = %v, %v, %v", fixed, rep, err)
	}

	one := mustEncode(t, p, []byte{0xa5})
	for _, tc := range []struct {
		pack    []byte
		wantBad []int
	}{
		{[]byte{0xa5}, nil},
		{[]byte{0xa4}, []int{0}},
		{nil, []int{0}},
		{[]byte{0xa5, 0}, []int{0}},
	} {
		bad, err := Check(tc.pack, one)
		if err != nil || !slices.Equal(bad, tc.wantBad) {
			t.Fatalf("Check(%x) = %v, %v; want %v", tc.pack, bad, err, tc.wantBad)
		}
		fixed, _, err := Repair(tc.pack, one)
		if err != nil || !bytes.Equal(fixed, []byte{0xa5}) {
			t.Fatalf("Repair(%x) = %x, %v", tc.pack, fixed, err)
		}
	}
}

// TestReferenceEncoding recomputes parity objects with an independent
// GF(2^8) implementation of the code described in the package comment, so
// that a change in the library's code would be caught.
func TestReferenceEncoding(t *testing.T) {
	for _, tc := range []struct {
		p Params
		n int
	}{
		{Params{2, 1}, 13}, {Params{5, 3}, 1000}, {Params{10, 4}, 70000}, {Params{255, 1}, 3000}, {Params{1, 3}, 50}, {Params{17, 17}, 4096*17 + 1},
	} {
		t.Run(fmt.Sprintf("%d+%d", tc.p.DataShards, tc.p.ParityShards), func(t *testing.T) {
			pack := randomPack(11, tc.n)
			got := mustEncode(t, tc.p, pack)
			want := referenceEncode(tc.p, pack)
			if !bytes.Equal(got, want) {
				t.Fatal("Encode differs from the reference")
			}
		})
	}
	// A fixed vector for the spec: "hello, parity" with 2+1 shards.
	obj := mustEncode(t, Params{2, 1}, []byte("hello, parity"))
	sum := sha256.Sum256(obj)
	if got := hex.EncodeToString(sum[:]); got != goldenHelloParity {
		t.Fatalf("SHA-256 of the parity object of %q = %s, want %s", "hello, parity", got, goldenHelloParity)
	}
}

const goldenHelloParity = "e7e00f51b637d78710e887d7fce7d8275921a3079c3c00b79ee694acf82d11d3"

// referenceEncode builds a parity object from the format description.
func referenceEncode(p Params, pack []byte) []byte {
	d, m := p.DataShards, p.ParityShards
	L := len(pack)
	S := (L + d - 1) / d
	if S > 4096 {
		S = (S + 4095) / 4096 * 4096
	}
	padded := make([]byte, d*S)
	copy(padded, pack)
	// Encoding matrix rows d..d+m-1 of V * inverse(V[0:d]).
	V := make([][]byte, d+m)
	for r := range V {
		V[r] = make([]byte, d)
		for c := range V[r] {
			V[r][c] = gfPow(byte(r), c)
		}
	}
	inv := gfInvert(V[:d])
	parity := make([][]byte, m)
	for j := range parity {
		row := make([]byte, d) // V[d+j] * inv
		for c := range d {
			var x byte
			for k := range d {
				x ^= gfMul(V[d+j][k], inv[k][c])
			}
			row[c] = x
		}
		parity[j] = make([]byte, S)
		for c := range d {
			for b := range S {
				parity[j][b] ^= gfMul(row[c], padded[c*S+b])
			}
		}
	}
	out := []byte{1, byte(d), byte(m)}
	out = binary.LittleEndian.AppendUint32(out, uint32(S))
	out = binary.LittleEndian.AppendUint64(out, uint64(L))
	for i := range d {
		h := sha256.Sum256(padded[i*S : (i+1)*S])
		out = append(out, h[:]...)
	}
	for j := range m {
		h := sha256.Sum256(parity[j])
		out = append(out, h[:]...)
	}
	h := sha256.Sum256(out)
	out = append(out, h[:]...)
	for j := range m {
		out = append(out, parity[j]...)
	}
	return out
}

// gfMul multiplies in GF(2^8) with the polynomial 0x11d, bit by bit.
func gfMul(a, b byte) byte {
	var p byte
	for b > 0 {
		if b&1 != 0 {
			p ^= a
		}
		carry := a & 0x80
		a <<= 1
		if carry != 0 {
			a ^= 0x1d
		}
		b >>= 1
	}
	return p
}

func gfPow(a byte, n int) byte {
	r := byte(1)
	for range n {
		r = gfMul(r, a)
	}
	return r
}

func gfInverse(a byte) byte {
	for x := 1; x < 256; x++ {
		if gfMul(a, byte(x)) == 1 {
			return byte(x)
		}
	}
	panic("no inverse")
}

// gfInvert inverts a square matrix by Gauss-Jordan elimination.
func gfInvert(m [][]byte) [][]byte {
	n := len(m)
	a := make([][]byte, n)
	for i := range a {
		a[i] = make([]byte, 2*n)
		copy(a[i], m[i])
		a[i][n+i] = 1
	}
	for col := range n {
		piv := col
		for a[piv][col] == 0 {
			piv++
		}
		a[col], a[piv] = a[piv], a[col]
		inv := gfInverse(a[col][col])
		for k := range a[col] {
			a[col][k] = gfMul(a[col][k], inv)
		}
		for r := range n {
			if r != col && a[r][col] != 0 {
				f := a[r][col]
				for k := range a[r] {
					a[r][k] ^= gfMul(f, a[col][k])
				}
			}
		}
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = a[i][n:]
	}
	return out
}

// TestCoder uses one Coder from many goroutines (meaningful under -race)
// and lets it repair an object made with other Params.
func TestCoder(t *testing.T) {
	c, err := NewCoder(Params{16, 2})
	if err != nil {
		t.Fatal(err)
	}
	if c.Params() != (Params{16, 2}) {
		t.Fatalf("Params() = %+v", c.Params())
	}
	if _, err := NewCoder(Params{0, 2}); err == nil {
		t.Fatal("NewCoder accepted 0 data shards")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 10 {
				pack := randomPack(uint64(g*100+i), 1000+r.IntN(300000))
				obj, err := c.Encode(pack)
				if err != nil {
					errs <- err
					return
				}
				want, _ := Encode(Params{16, 2}, pack)
				if !bytes.Equal(obj, want) {
					errs <- fmt.Errorf("goroutine %d: Coder.Encode differs from Encode", g)
					return
				}
				damaged := bytes.Clone(pack)
				damaged[r.IntN(len(damaged))] ^= 0xff
				damaged[r.IntN(len(damaged))] ^= 0x0f
				fixed, _, err := c.Repair(damaged, obj)
				if err != nil || !bytes.Equal(fixed, pack) {
					errs <- fmt.Errorf("goroutine %d: Repair: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// An object with other Params.
	pack := randomPack(1, 5000)
	obj := mustEncode(t, Params{4, 1}, pack)
	damaged := bytes.Clone(pack)
	damaged[0] ^= 1
	fixed, rep, err := c.Repair(damaged, obj)
	if err != nil || !bytes.Equal(fixed, pack) || !slices.Equal(rep, []int{0}) {
		t.Fatalf("Repair of a 4+1 object with a 16+2 Coder: %v, %v", rep, err)
	}
}
