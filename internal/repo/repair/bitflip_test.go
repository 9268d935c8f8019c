package repair_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo/repair"
)

func TestFixBitFlip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for _, n := range []int{1, 2, 63, 64, 65, 127, 128, 1000, 4096, repair.MaxFlipSearch} {
		data := randBytes(rng, n)
		want := sha256.Sum256(data)
		var bits []int
		if n <= 128 {
			for b := range 8 * n {
				bits = append(bits, b)
			}
		} else if n < repair.MaxFlipSearch {
			bits = []int{0, 8*n - 1, rng.IntN(8 * n)}
		} else {
			bits = []int{0, rng.IntN(2 * n)} // the last bit costs seconds
		}
		for _, b := range bits {
			damaged := bytes.Clone(data)
			damaged[b/8] ^= 1 << (b % 8)
			before := bytes.Clone(damaged)
			got, ok := repair.FixBitFlip(damaged, want)
			if !ok || !bytes.Equal(got, data) {
				t.Fatalf("%d bytes, bit %d: not corrected (ok %v)", n, b, ok)
			}
			if !bytes.Equal(damaged, before) {
				t.Fatalf("%d bytes, bit %d: the input was modified", n, b)
			}
		}
	}
	data := randBytes(rng, 4096)
	want := sha256.Sum256(data)
	twoFlips := bytes.Clone(data)
	twoFlips[10] ^= 1
	twoFlips[3000] ^= 0x80
	big := randBytes(rng, repair.MaxFlipSearch+1)
	bigWant := sha256.Sum256(big)
	big[5] ^= 4
	tests := []struct {
		name string
		data []byte
		want [32]byte
	}{
		{"intact", data, want},
		{"two bits", twoFlips, want},
		{"wrong name", data, sha256.Sum256([]byte("other"))},
		{"empty", nil, sha256.Sum256(nil)},
		{"too large", big, bigWant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := repair.FixBitFlip(tc.data, tc.want); ok {
				t.Fatalf("corrected to %d bytes; want no correction", len(got))
			}
		})
	}
}

// FuzzFixBitFlip: whatever the bytes and wherever the flipped bit, the
// original comes back.
func FuzzFixBitFlip(f *testing.F) {
	f.Add([]byte("x"), uint(0))
	f.Add([]byte(`{"version":1,"time":"2026-01-01T00:00:00Z","tree":"00"}`), uint(77))
	f.Add(make([]byte, 200), uint(1599))
	f.Fuzz(func(t *testing.T, data []byte, bit uint) {
		if len(data) == 0 || len(data) > 2048 {
			return
		}
		want := sha256.Sum256(data)
		b := int(bit % uint(8*len(data)))
		damaged := bytes.Clone(data)
		damaged[b/8] ^= 1 << (b % 8)
		got, ok := repair.FixBitFlip(damaged, want)
		if !ok || !bytes.Equal(got, data) {
			t.Fatalf("bit %d of %d bytes not corrected", b, len(data))
		}
	})
}

func BenchmarkFixBitFlip(b *testing.B) {
	for _, n := range []int{1 << 10, 4 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			data := randBytes(rand.New(rand.NewPCG(1, 2)), n)
			want := sha256.Sum256(data)
			data[n/2] ^= 1 // the average case: half the candidates tried
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, ok := repair.FixBitFlip(data, want); !ok {
					b.Fatal("not corrected")
				}
			}
		})
	}
}
