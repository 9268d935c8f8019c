package parity

import (
	"fmt"
	"testing"
)

var candidates = []Params{{128, 2}, {64, 2}, {100, 1}, {255, 1}, {254, 2}, {128, 1}}

// BenchmarkEncode encodes a 16 MiB pack with a long-lived Coder and reports
// the parity object's size relative to the pack.
func BenchmarkEncode(b *testing.B) {
	pack := randomPack(1, 16<<20)
	for _, p := range candidates {
		b.Run(fmt.Sprintf("%d+%d", p.DataShards, p.ParityShards), func(b *testing.B) {
			c, err := NewCoder(p)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(pack)))
			var obj []byte
			for b.Loop() {
				if obj, err = c.Encode(pack); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(100*float64(len(obj))/float64(len(pack)), "overhead%")
		})
	}
}

// BenchmarkNewCoder measures setting up the code.
func BenchmarkNewCoder(b *testing.B) {
	for _, p := range candidates {
		b.Run(fmt.Sprintf("%d+%d", p.DataShards, p.ParityShards), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewCoder(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheck checks an intact 16 MiB pack (all shards hashed).
func BenchmarkCheck(b *testing.B) {
	pack := randomPack(1, 16<<20)
	obj, _ := Encode(Params{128, 2}, pack)
	b.SetBytes(int64(len(pack)))
	for b.Loop() {
		if bad, err := Check(pack, obj); err != nil || bad != nil {
			b.Fatal(bad, err)
		}
	}
}

// BenchmarkRepair rebuilds the largest damage each candidate can take in a
// 16 MiB pack: its first ParityShards data shards, with a long-lived Coder.
func BenchmarkRepair(b *testing.B) {
	pack := randomPack(1, 16<<20)
	for _, p := range candidates {
		b.Run(fmt.Sprintf("%d+%d", p.DataShards, p.ParityShards), func(b *testing.B) {
			c, _ := NewCoder(p)
			obj, _ := c.Encode(pack)
			h, _ := Parse(obj)
			damaged := append([]byte(nil), pack...)
			for i := range p.ParityShards {
				damaged[i*h.ShardSize] ^= 1
			}
			b.SetBytes(int64(len(pack)))
			for b.Loop() {
				if _, rep, err := c.Repair(damaged, obj); err != nil || len(rep) != p.ParityShards {
					b.Fatal(rep, err)
				}
			}
		})
	}
}
