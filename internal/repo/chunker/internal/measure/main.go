// Command measure compares chunker parameter sets on a corpus directory, to
// justify the repository's default chunk sizes.
//
// Usage:
//
//	go run ./internal/repo/chunker/internal/measure [-trials N] [-frac F] DIR...
//
// For each directory (separately) and each parameter set it reports:
//
//   - files, and how many of them are a single chunk (at most Min bytes, or
//     cut nowhere before their end);
//   - chunks, unique chunks, mean and median chunk size, chunks cut at Max;
//   - the 1% edit: a second version of the corpus in which a random fraction
//     F of the files (the same files for every parameter set) has 100 bytes
//     inserted in the middle; the bytes to store for version 2 given version
//     1 (mean over N random choices of files) and the dedup ratio
//     (logical bytes of both versions / unique bytes stored);
//   - the large-file edit cost: for every file larger than 256 KiB, the
//     bytes of new chunks after inserting 100 bytes in its middle (mean per
//     file); this is where the parameters matter, since small files are
//     re-stored whole whatever they are;
//   - the same per-edit cost and the chunk size distribution on 256 MiB of
//     pseudo-random data with 64 random insertions.
//
// The chunker seed is fixed; the figures do not depend on it beyond noise.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/bulwarkhq/bulwark/internal/repo/chunker"
	"github.com/zeebo/blake3"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
)

var candidates = []chunker.Params{
	{Min: 512 * KiB, Avg: 1 * MiB, Max: 8 * MiB},
	{Min: 256 * KiB, Avg: 1 * MiB, Max: 8 * MiB},
	{Min: 256 * KiB, Avg: 512 * KiB, Max: 4 * MiB},
	{Min: 128 * KiB, Avg: 512 * KiB, Max: 4 * MiB},
	{Min: 64 * KiB, Avg: 256 * KiB, Max: 2 * MiB},
}

type id [16]byte

func sum(b []byte) id {
	s := blake3.Sum256(b)
	return id(s[:16])
}

type file struct {
	path string
	data []byte
}

func main() {
	trials := flag.Int("trials", 20, "random choices of edited files to average over")
	frac := flag.Float64("frac", 0.01, "fraction of files edited in version 2")
	synth := flag.Bool("synthetic", true, "also measure 256 MiB of pseudo-random data")
	flag.Parse()
	var seed [32]byte
	copy(seed[:], "bulwark chunker measurement seed")
	t := chunker.NewTable(seed)
	for _, dir := range flag.Args() {
		files, err := load(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		corpus(t, dir, files, *trials, *frac)
	}
	if *synth {
		synthetic(t)
	}
}

func load(dir string) ([]file, error) {
	var files []file
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable entries are skipped
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		files = append(files, file{path, b})
		return nil
	})
	return files, err
}

// chunkFile appends the chunk lengths and ids of data to the given slices.
func chunkFile(c *chunker.Chunker, data []byte, visit func(chunk []byte)) {
	c.Reset(bytes.NewReader(data))
	for {
		b, err := c.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			panic(err)
		}
		visit(b)
	}
}

func edit(data []byte, rng *rand.Rand) []byte {
	ins := make([]byte, 100)
	for i := range ins {
		ins[i] = byte(rng.Uint32())
	}
	mid := len(data) / 2
	out := make([]byte, 0, len(data)+len(ins))
	return append(append(append(out, data[:mid]...), ins...), data[mid:]...)
}

func corpus(t *chunker.Table, dir string, files []file, trials int, frac float64) {
	var total int64
	large := 0
	for _, f := range files {
		total += int64(len(f.data))
		if len(f.data) > 256*KiB {
			large++
		}
	}
	fmt.Printf("\n## %s: %d files, %.1f MiB, %d files > 256 KiB\n\n", dir, len(files), float64(total)/MiB, large)
	// The same edited files for every parameter set.
	choices := make([][]int, trials)
	for k := range choices {
		rng := rand.New(rand.NewPCG(uint64(k), 1))
		for i := range files {
			if rng.Float64() < frac {
				choices[k] = append(choices[k], i)
			}
		}
	}
	fmt.Println("| min / avg / max | single-chunk files | chunks | unique | mean | median | at max | v2 new (1% edit, mean) | dedup ratio | new per large-file edit |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range candidates {
		c := chunker.New(nil, t, p)
		seen := map[id]bool{}
		var sizes []int
		var stored int64
		single, atMax := 0, 0
		for _, f := range files {
			n := 0
			chunkFile(c, f.data, func(b []byte) {
				n++
				sizes = append(sizes, len(b))
				if len(b) == p.Max {
					atMax++
				}
				k := sum(b)
				if !seen[k] {
					seen[k] = true
					stored += int64(len(b))
				}
			})
			if n <= 1 {
				single++
			}
		}
		// newBytes returns the bytes of chunks of the edited files that
		// version 1 does not have.
		newBytes := func(idx []int, rng *rand.Rand) int64 {
			fresh := map[id]bool{}
			var nb int64
			for _, i := range idx {
				chunkFile(c, edit(files[i].data, rng), func(b []byte) {
					k := sum(b)
					if !seen[k] && !fresh[k] {
						fresh[k] = true
						nb += int64(len(b))
					}
				})
			}
			return nb
		}
		var v2new, v2edited float64
		for k, idx := range choices {
			v2new += float64(newBytes(idx, rand.New(rand.NewPCG(uint64(k), 2))))
			v2edited += float64(len(idx))
		}
		v2new /= float64(trials)
		ratio := float64(2*total) / (float64(stored) + v2new)
		var largeNew float64
		for i, f := range files {
			if len(f.data) > 256*KiB {
				largeNew += float64(newBytes([]int{i}, rand.New(rand.NewPCG(uint64(i), 3))))
			}
		}
		if large > 0 {
			largeNew /= float64(large)
		}
		slices.Sort(sizes)
		var sumSizes int64
		for _, s := range sizes {
			sumSizes += int64(s)
		}
		fmt.Printf("| %s | %d | %d | %d | %s | %s | %d | %s (%.2f%%, %.0f files) | %.4f | %s |\n",
			ps(p), single, len(sizes), len(seen), size(float64(sumSizes)/float64(len(sizes))),
			size(float64(sizes[len(sizes)/2])), atMax,
			size(v2new), 100*v2new/float64(total), v2edited/float64(trials), ratio, size(largeNew))
	}
}

func synthetic(t *chunker.Table) {
	const n = 256 * MiB
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(42, 42))
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	fmt.Printf("\n## 256 MiB pseudo-random data, 64 single insertions of 100 bytes\n\n")
	fmt.Println("| min / avg / max | chunks | mean | median | p5 | p95 | at max | new per edit |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, p := range candidates {
		var sizes []int
		seen := map[id]bool{}
		for d := data; len(d) > 0; {
			k := chunker.Cut(t, p, d)
			sizes = append(sizes, k)
			d = d[k:]
		}
		off := 0
		for _, s := range sizes {
			seen[sum(data[off:off+s])] = true
			off += s
		}
		var nb float64
		erng := rand.New(rand.NewPCG(7, 7))
		for range 64 {
			at := erng.IntN(n)
			ins := make([]byte, 100)
			for i := range ins {
				ins[i] = byte(erng.Uint32())
			}
			// Chunk only a window around the edit: boundaries before it
			// are unchanged, and 4*Max after it they have resynchronised.
			lo := 0
			for _, s := range sizes {
				if lo+s > at {
					break
				}
				lo += s
			}
			hi := min(n, at+4*p.Max)
			w := append(append(append([]byte{}, data[lo:at]...), ins...), data[at:hi]...)
			for d := w; len(d) > 0; {
				k := chunker.Cut(t, p, d)
				if len(d) == k && hi < n {
					break // the window's last chunk is cut by the window
				}
				if !seen[sum(d[:k])] {
					nb += float64(k)
				}
				d = d[k:]
			}
		}
		slices.Sort(sizes)
		var s int64
		atMax := 0
		for _, v := range sizes {
			s += int64(v)
			if v == p.Max {
				atMax++
			}
		}
		q := func(f float64) string { return size(float64(sizes[int(f*float64(len(sizes)-1))])) }
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %d | %s |\n", ps(p), len(sizes),
			size(float64(s)/float64(len(sizes))), q(0.5), q(0.05), q(0.95), atMax, size(nb/64))
	}
}

func ps(p chunker.Params) string {
	return size(float64(p.Min)) + " / " + size(float64(p.Avg)) + " / " + size(float64(p.Max))
}

func size(b float64) string {
	switch {
	case b >= MiB:
		return fmt.Sprintf("%.2f MiB", b/MiB)
	case b >= KiB:
		return fmt.Sprintf("%.0f KiB", b/KiB)
	}
	return fmt.Sprintf("%.0f B", b)
}
