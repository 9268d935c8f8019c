package pack

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkWriter measures Add+Finish for a 16 MiB pack of 1 MiB blobs
// (encryption and header; no compression).
func BenchmarkWriter(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	body := randomBytes(r, 1<<20)
	e := testE(1)
	aead := testAEAD(b, "bench", e)
	w := NewWriter(aead, e)
	b.SetBytes(16 << 20)
	b.ReportAllocs()
	for b.Loop() {
		w.Reset(aead, e)
		for i := range 16 {
			if _, err := w.Add(Data, ID{byte(i)}, body, false, len(body)); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := w.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead measures ReadTrailer+ParseHeader+OpenBlob over the same pack.
func BenchmarkRead(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	body := randomBytes(r, 1<<20)
	e := testE(1)
	aead := testAEAD(b, "bench", e)
	w := NewWriter(aead, e)
	for i := range 16 {
		w.Add(Data, ID{byte(i)}, body, false, len(body))
	}
	p, _, _ := w.Finish()
	buf := make([]byte, 0, 1<<20)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		_, hl, err := ReadTrailer(p[len(p)-TailHint:], int64(len(p)))
		if err != nil {
			b.Fatal(err)
		}
		hct, _ := HeaderFromTail(p[len(p)-TailHint:], hl)
		blobs, err := ParseHeader(aead, hct, int64(len(p)))
		if err != nil {
			b.Fatal(err)
		}
		for _, bl := range blobs {
			if _, err := AppendOpenBlob(buf[:0], aead, int(bl.Offset), p[bl.Offset:bl.Offset+bl.StoredLength]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// corpus returns blobs for the compression benchmarks: "gosrc" is every .go
// file under GOROOT/src as one blob each (small files are single chunks),
// "text" is GOROOT's prose (.txt, .html, .md) cut into 1 MiB blobs, and
// "random" is 32 MiB of random bytes in 1 MiB blobs.
func corpus(b *testing.B, name string) [][]byte {
	b.Helper()
	if name == "random" {
		r := rand.New(rand.NewPCG(3, 4))
		var out [][]byte
		for range 32 {
			out = append(out, randomBytes(r, 1<<20))
		}
		return out
	}
	root := runtime.GOROOT()
	var out [][]byte
	var prose []byte
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		ext := filepath.Ext(p)
		switch {
		case name == "gosrc" && ext == ".go" && strings.HasPrefix(p, filepath.Join(root, "src")+string(filepath.Separator)):
			data, err := os.ReadFile(p)
			for err == nil && len(data) > 0 {
				n := min(len(data), 1<<20)
				out = append(out, data[:n])
				data = data[n:]
			}
		case name == "text" && (ext == ".txt" || ext == ".html" || ext == ".md"):
			data, err := os.ReadFile(p)
			if err == nil {
				prose = append(prose, data...)
			}
		}
		return nil
	})
	if err != nil {
		b.Skip(err)
	}
	for len(prose) >= 1<<20 {
		out = append(out, prose[:1<<20])
		prose = prose[1<<20:]
	}
	if len(out) == 0 {
		b.Skipf("no %s corpus under GOROOT %q", name, root)
	}
	return out
}

// BenchmarkCompress runs the package's Compress over each corpus and
// reports the stored/raw ratio (after the 1/16 rule) next to MB/s.
func BenchmarkCompress(b *testing.B) {
	for _, name := range []string{"gosrc", "text", "random"} {
		b.Run(name, func(b *testing.B) {
			blobs := corpus(b, name)
			benchEncode(b, blobs, func(dst, src []byte) int {
				out, _ := Compress(dst, src)
				return len(out)
			})
		})
	}
}

// BenchmarkLevels compares zstd encoders on one goroutine: this build's
// (EncoderName), klauspost/compress at SpeedFastest (the encoder without
// cgo) and SpeedBetterCompression, and restic's (SpeedDefault, 512 KiB
// window, no checksum).
func BenchmarkLevels(b *testing.B) {
	goEnc := func(opts ...zstd.EOption) func(dst, src []byte) []byte {
		enc, err := zstd.NewWriter(nil, append(opts, zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1))...)
		if err != nil {
			b.Fatal(err)
		}
		return func(dst, src []byte) []byte { return enc.EncodeAll(src, dst[:0]) }
	}
	configs := []struct {
		name string
		enc  func(dst, src []byte) []byte
	}{
		{"ours", encode},
		{"fastest", goEnc(zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(CompressionWindow))},
		{"restic", goEnc(zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(512<<10))},
		{"better", goEnc(zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithWindowSize(CompressionWindow))},
	}
	for _, name := range []string{"gosrc", "text", "random"} {
		for _, c := range configs {
			b.Run(name+"/"+c.name, func(b *testing.B) {
				blobs := corpus(b, name)
				benchEncode(b, blobs, func(dst, src []byte) int {
					out := c.enc(dst, src)
					if 16*len(out) <= 15*len(src) {
						return len(out)
					}
					return len(src)
				})
			})
		}
	}
}

func benchEncode(b *testing.B, blobs [][]byte, enc func(dst, src []byte) int) {
	var raw, stored int
	for _, bl := range blobs {
		raw += len(bl)
	}
	dst := make([]byte, 0, 2<<20)
	b.SetBytes(int64(raw))
	for b.Loop() {
		stored = 0
		for _, bl := range blobs {
			stored += enc(dst, bl)
		}
	}
	b.ReportMetric(float64(stored)/float64(raw), "ratio")
}

// BenchmarkDecompress decodes the text corpus.
func BenchmarkDecompress(b *testing.B) {
	blobs := corpus(b, "text")
	var frames [][]byte
	var raw int
	for _, bl := range blobs {
		c, _ := Compress(nil, bl)
		frames = append(frames, c)
		raw += len(bl)
	}
	dst := make([]byte, 0, 2<<20)
	b.SetBytes(int64(raw))
	for b.Loop() {
		for i, f := range frames {
			if _, err := Decompress(dst, f, len(blobs[i])); err != nil {
				b.Fatal(err)
			}
		}
	}
}
