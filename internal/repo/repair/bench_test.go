package repair_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
	"github.com/bulwarkhq/bulwark/internal/repo/repair"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// BenchmarkRepair measures repair throughput (bytes of packs per second)
// on 96 MiB of incompressible files in 16 MiB packs: a healthy repository
// (every pack read and hashed, parity recomputed and compared), and one
// with a flipped bit in one pack per run (rebuilt and written back).
func BenchmarkRepair(b *testing.B) {
	for _, par := range []*parity.Params{nil, parity128} {
		for _, damage := range []bool{false, true} {
			if damage && par == nil {
				continue
			}
			name := fmt.Sprintf("parity=%v/damaged=%v", par != nil, damage)
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				src := filepath.Join(b.TempDir(), "src")
				rng := rand.New(rand.NewPCG(7, 7))
				for i := range 12 {
					write(b, filepath.Join(src, fmt.Sprintf("f%02d", i)), randBytes(rng, 8<<20))
				}
				r, dir := repotest.New(b, repotest.Options{Parity: par})
				_, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{NoParent: true})
				must(b, err)
				ps := ofType(packs(b, dir), repo.DataBlob)
				var total int64
				for _, p := range ps {
					total += p.size
				}
				r = open(b, dir)
				b.SetBytes(total)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if damage {
						b.StopTimer()
						p := ps[i%len(ps)]
						flipBit(b, packFile(dir, p.id), rng.Int64N(p.size), 1)
						b.StartTimer()
					}
					rep, err := repair.Repair(ctx, r, repair.Options{})
					must(b, err)
					if damage && len(rep.Packs.Repaired) != 1 || rep.Changed() && !damage {
						b.Fatalf("report %+v", rep)
					}
				}
			})
		}
	}
}
