package pack

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestCompressRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	half := append(text(r, 300<<10), randomBytes(r, 300<<10)...)
	for _, tc := range []struct {
		name           string
		src            []byte
		wantCompressed bool
	}{
		{"empty", nil, false},
		{"one byte", []byte{'x'}, false},
		{"short text", []byte("hello, hello, hello"), false},
		{"text", text(r, 100<<10), true},
		{"zeros 8 MiB", make([]byte, 8<<20), true},
		{"random", randomBytes(r, 1<<20), false},
		{"half text, half random", half, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, compressed := Compress(nil, tc.src)
			if compressed != tc.wantCompressed {
				t.Fatalf("compressed = %v (%d -> %d bytes), want %v", compressed, len(tc.src), len(out), tc.wantCompressed)
			}
			if !compressed {
				if !bytes.Equal(out, tc.src) {
					t.Fatal("uncompressed output differs from the input")
				}
				return
			}
			if 16*len(out) > 15*len(tc.src) {
				t.Fatalf("compressed %d -> %d bytes, less than 1/16 saved", len(tc.src), len(out))
			}
			var h zstd.Header
			if err := h.Decode(out); err != nil || !h.HasFCS || h.FrameContentSize != uint64(len(tc.src)) {
				t.Fatalf("frame header %+v, %v: want the content size %d", h, err, len(tc.src))
			}
			got, err := Decompress(nil, out, len(tc.src))
			if err != nil || !bytes.Equal(got, tc.src) {
				t.Fatalf("Decompress: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestCompressThreshold pins the 1/16 rule on both sides of the boundary:
// random bytes followed by zeros compress to roughly the random part.
func TestCompressThreshold(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const n = 64 << 10
	random := randomBytes(r, n)
	var sawBoth [2]bool
	for zeros := 0; zeros <= n/8; zeros += 256 {
		src := append(bytes.Clone(random[:n-zeros]), make([]byte, zeros)...)
		out, compressed := Compress(nil, src)
		c := encode(nil, src)
		want := 16*len(c) <= 15*len(src)
		if compressed != want {
			t.Fatalf("%d zeros: %d -> %d bytes, compressed = %v, want %v", zeros, len(src), len(c), compressed, want)
		}
		if compressed && len(out) != len(c) {
			t.Fatalf("%d zeros: returned %d bytes, encoder gave %d", zeros, len(out), len(c))
		}
		if compressed {
			sawBoth[1] = true
		} else {
			sawBoth[0] = true
		}
	}
	if !sawBoth[0] || !sawBoth[1] {
		t.Fatalf("the inputs did not straddle the threshold: %v", sawBoth)
	}
}

func TestDecompressRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	src := text(r, 300000)
	frame, ok := Compress(nil, src)
	if !ok {
		t.Fatal("text did not compress")
	}
	noFCS := streamFrame(t, src, 1)
	bad := bytes.Clone(frame)
	bad[len(bad)/2] ^= 0x55
	for _, tc := range []struct {
		name   string
		src    []byte
		rawLen int
		want   string
	}{
		{"raw length too small", frame, len(src) - 1, "frame announces"},
		{"raw length too large", frame, len(src) + 1, ""},
		{"raw length zero", frame, 0, "frame announces"},
		{"negative raw length", frame, -1, "raw length -1"},
		{"raw length over the limit", frame, MaxBlobLength + 1, "raw length"},
		{"no content size, too small", noFCS, len(src) - 1, ""},
		{"no content size, too large", noFCS, len(src) + 1, "decoded 300000 bytes"},
		{"empty input", nil, 10, "decoded 0 bytes"},
		{"garbage", []byte("not a zstd frame at all"), 10, ""},
		{"damaged frame", bad, len(src), ""},
		{"trailing garbage", append(bytes.Clone(frame), 1, 2, 3), len(src), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Decompress(nil, tc.src, tc.rawLen)
			if err == nil {
				t.Fatalf("accepted: %d bytes", len(out))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	got, err := Decompress(nil, noFCS, len(src))
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("frame without content size: %d bytes, %v", len(got), err)
	}
}

// TestDecompressBomb decodes 256 MiB of zeros compressed to a few KiB, with
// and without a content size, under a 1 MiB raw length: it must fail
// without allocating much more than the raw length.
func TestDecompressBomb(t *testing.T) {
	noFCS := streamFrame(t, make([]byte, 1<<20), 256)
	withFCS := encode(nil, make([]byte, 64<<20))
	for _, tc := range []struct {
		name string
		src  []byte
	}{{"no content size (256 MiB)", noFCS}, {"content size (64 MiB)", withFCS}} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Decompress(nil, tc.src, 1<<20)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("bomb accepted")
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Fatalf("allocated %d bytes decoding a %d-byte bomb under a 1 MiB cap", alloc, len(tc.src))
			}
		})
	}
}

// TestEncoderFrame checks the frames this build's encoder writes (cgo or
// not, see compress.go): they announce their content size, which
// Decompress holds against the blob's raw length, and carry no checksum,
// which the AEAD tag makes redundant. (The Go encoder leaves the size out
// of frames under 256 bytes; Decompress does not need it.)
func TestEncoderFrame(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, n := range []int{1, 100, 64 << 10, 1 << 20, 3<<20 + 7} {
		src := text(r, n)
		var h zstd.Header
		if err := h.Decode(encode(nil, src)); err != nil {
			t.Fatalf("%s, %d bytes: header: %v", EncoderName, n, err)
		}
		if n < 256 && !h.HasFCS && EncoderName != cEncoderName {
			continue // klauspost/compress leaves the size out of frames under 256 bytes
		}
		if !h.HasFCS || h.FrameContentSize != uint64(n) {
			t.Errorf("%s, %d bytes: content size %v %d, want %d", EncoderName, n, h.HasFCS, h.FrameContentSize, n)
		}
		if h.HasCheckSum {
			t.Errorf("%s, %d bytes: frame has a checksum", EncoderName, n)
		}
	}
}

func TestCompressNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	r := rand.New(rand.NewPCG(17, 18))
	src := text(r, 1<<20)
	dst := make([]byte, 0, 2<<20)
	frame, _ := Compress(nil, src)
	plain := make([]byte, 0, len(src)+16)
	Compress(dst, src) // warm the encoder
	if a := testing.AllocsPerRun(5, func() { Compress(dst, src) }); a != 0 {
		t.Errorf("Compress: %v allocations per call, want 0", a)
	}
	if _, err := Decompress(plain, frame, len(src)); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(5, func() { Decompress(plain, frame, len(src)) }); a != 0 {
		t.Errorf("Decompress: %v allocations per call, want 0", a)
	}
	out, _ := Decompress(plain, frame, len(src))
	if &out[0] != &plain[:1][0] || cap(out) != cap(plain) {
		t.Error("Decompress did not return the caller's buffer")
	}
}

// TestCompressConcurrent runs many goroutines through the shared encoder
// and decoder (meaningful under -race).
func TestCompressConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 99))
			var dst, plain []byte
			for i := 0; i < 10; i++ {
				src := text(r, r.IntN(200<<10))
				out, ok := Compress(dst, src)
				if ok {
					dst = out
				}
				if !ok {
					continue
				}
				got, err := Decompress(plain, out, len(src))
				if err != nil || !bytes.Equal(got, src) {
					errs <- "round trip failed"
					return
				}
				plain = got
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// streamFrame compresses n copies of src with zstd's streaming encoder,
// which writes no content size into the frame.
func streamFrame(t testing.TB, src []byte, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := zw.Write(src); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(b.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("streaming frame header %+v, %v: want no content size", h, err)
	}
	return b.Bytes()
}
