package pack

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// testAEAD stands in for the sealing step: the pack key depends on a secret
// and on E, so a damaged E yields the wrong key, as it does for real.
func testAEAD(t testing.TB, secret string, e [32]byte) cipher.AEAD {
	t.Helper()
	k := sha256.Sum256(append([]byte(secret), e[:]...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

func testE(seed byte) (e [32]byte) {
	for i := range e {
		e[i] = seed + byte(i)
	}
	return e
}

type plainBlob struct {
	t    BlobType
	id   ID
	data []byte // plaintext
}

// text returns n bytes of compressible text.
func text(r *rand.Rand, n int) []byte {
	words := strings.Fields("the quick brown fox jumps over a lazy dog while packs and blobs and trees are stored in a repository")
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// build writes blobs into a pack, compressing where it helps.
func build(t testing.TB, aead cipher.AEAD, e [32]byte, blobs []plainBlob) ([]byte, []Blob) {
	t.Helper()
	w := NewWriter(aead, e)
	for i, pb := range blobs {
		body, compressed := Compress(nil, pb.data)
		b, err := w.Add(pb.t, pb.id, body, compressed, len(pb.data))
		if err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
		if w.Count() != i+1 {
			t.Fatalf("Count = %d after %d adds", w.Count(), i+1)
		}
		if int(b.StoredLength) != len(body)+TagSize || b.Compressed != compressed || int(b.RawLength) != len(pb.data) {
			t.Fatalf("Add %d returned %+v", i, b)
		}
	}
	size := w.Size()
	p, recs, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if size != len(p) {
		t.Fatalf("Size() before Finish = %d, pack is %d bytes", size, len(p))
	}
	return bytes.Clone(p), recs
}

// readAll reads a pack the way a client does: tail, trailer, key from E,
// header, then every blob, decompressed. secret names the key.
func readAll(t testing.TB, secret string, p []byte) ([]Blob, [][]byte, error) {
	t.Helper()
	size := int64(len(p))
	tail := p[max(0, len(p)-TailHint):]
	e, hl, err := ReadTrailer(tail, size)
	if err != nil {
		return nil, nil, err
	}
	hct, ok := HeaderFromTail(tail, hl)
	if !ok {
		hct = p[len(p)-TrailerSize-hl : len(p)-TrailerSize]
	}
	aead := testAEAD(t, secret, e)
	recs, err := ParseHeader(aead, hct, size)
	if err != nil {
		return nil, nil, err
	}
	var out [][]byte
	for i, b := range recs {
		body, err := OpenBlob(aead, int(b.Offset), p[b.Offset:b.Offset+b.StoredLength])
		if err != nil {
			return nil, nil, err
		}
		if b.Compressed {
			if body, err = Decompress(nil, body, int(b.RawLength)); err != nil {
				return nil, nil, fmt.Errorf("blob %d: %w", i, err)
			}
		}
		if len(body) != int(b.RawLength) {
			return nil, nil, fmt.Errorf("blob %d: %d bytes, record says %d", i, len(body), b.RawLength)
		}
		out = append(out, body)
	}
	return recs, out, nil
}

func mixedBlobs(r *rand.Rand, n, maxLen int) []plainBlob {
	blobs := make([]plainBlob, n)
	for i := range blobs {
		l := r.IntN(maxLen + 1)
		if i < 3 {
			l = i // 0, 1 and 2 bytes
		}
		var data []byte
		if r.IntN(2) == 0 {
			data = text(r, l)
		} else {
			data = randomBytes(r, l)
		}
		blobs[i] = plainBlob{t: BlobType(r.IntN(2)), id: sha256.Sum256(data), data: data}
	}
	return blobs
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n, max int
	}{
		{"empty pack", 0, 0},
		{"one blob", 1, 100},
		{"small blobs", 300, 300},
		{"header longer than TailHint", 2000, 40},
		{"large blobs", 40, 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.max)))
			e := testE(7)
			in := mixedBlobs(r, tc.n, tc.max)
			p, written := build(t, testAEAD(t, "k", e), e, in)
			if tc.n == 0 && len(p) != MinHeaderLen+TrailerSize {
				t.Fatalf("empty pack is %d bytes, want %d", len(p), MinHeaderLen+TrailerSize)
			}
			recs, out, err := readAll(t, "k", p)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tc.n || len(out) != tc.n {
				t.Fatalf("read %d records, %d blobs; wrote %d", len(recs), len(out), tc.n)
			}
			var compressed, plain, types [2]int
			for i := range in {
				if recs[i] != written[i] {
					t.Errorf("record %d: read %+v, wrote %+v", i, recs[i], written[i])
				}
				if recs[i].Type != in[i].t || recs[i].ID != in[i].id || !bytes.Equal(out[i], in[i].data) {
					t.Errorf("blob %d differs", i)
				}
				types[in[i].t]++
				if recs[i].Compressed {
					compressed[in[i].t]++
				} else {
					plain[in[i].t]++
				}
			}
			if tc.max >= 300 && (compressed[0] == 0 || compressed[1] == 0 || plain[0] == 0 || plain[1] == 0) {
				t.Errorf("test data did not cover all cases: compressed %v, plain %v", compressed, plain)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	e := testE(1)
	p, recs := build(t, testAEAD(t, "right", e), e, mixedBlobs(r, 5, 1000))
	if _, _, err := readAll(t, "wrong", p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("header with wrong key: err = %v, want ErrCorrupt", err)
	}
	wrong := testAEAD(t, "wrong", e)
	b := recs[3]
	if _, err := OpenBlob(wrong, int(b.Offset), p[b.Offset:b.Offset+b.StoredLength]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("blob with wrong key: err = %v, want ErrCorrupt", err)
	}
	// The right key at the wrong offset (nonce) fails too: a blob moved
	// within its pack does not open.
	right := testAEAD(t, "right", e)
	if _, err := OpenBlob(right, int(recs[2].Offset), p[b.Offset:b.Offset+b.StoredLength]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("blob 3 opened at blob 2's offset: err = %v, want ErrCorrupt", err)
	}
	if _, err := OpenBlob(right, int(b.Offset), p[b.Offset:b.Offset+b.StoredLength]); err != nil {
		t.Fatalf("blob 3 with the right key: %v", err)
	}
}

// TestEveryBitFlip flips each bit of a small pack in turn; the reader must
// fail every time, whether the bit is in a blob, the header, E or the length.
func TestEveryBitFlip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	e := testE(9)
	in := []plainBlob{
		{Data, sha256.Sum256([]byte("a")), text(r, 200)},
		{Tree, sha256.Sum256([]byte("b")), randomBytes(r, 30)},
		{Data, sha256.Sum256([]byte("c")), nil},
	}
	p, _ := build(t, testAEAD(t, "k", e), e, in)
	if _, _, err := readAll(t, "k", p); err != nil {
		t.Fatal(err)
	}
	for bit := 0; bit < 8*len(p); bit++ {
		q := bytes.Clone(p)
		q[bit/8] ^= 1 << (bit % 8)
		if _, _, err := readAll(t, "k", q); err == nil {
			t.Fatalf("flip of bit %d (byte %d of %d) went unnoticed", bit, bit/8, len(p))
		}
	}
}

func TestTruncated(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	e := testE(2)
	p, _ := build(t, testAEAD(t, "k", e), e, mixedBlobs(r, 4, 500))
	for n := 0; n < len(p); n++ {
		if _, _, err := readAll(t, "k", p[:n]); err == nil {
			t.Fatalf("pack cut to %d of %d bytes was accepted", n, len(p))
		}
		if _, _, err := readAll(t, "k", p[len(p)-n:]); err == nil {
			t.Fatalf("pack missing its first %d bytes was accepted", len(p)-n)
		}
	}
}

// sealHeader seals a hand-made header plaintext and assembles a pack around
// it with dataLen bytes of blob area.
func sealHeader(aead cipher.AEAD, e [32]byte, dataLen int, header []byte) []byte {
	p := make([]byte, dataLen)
	p = aead.Seal(p, headerNonce[:], header, nil)
	p = append(p, e[:]...)
	return binary.LittleEndian.AppendUint32(p, uint32(len(header)+TagSize))
}

func record(t BlobType, flags byte, stored, raw uint32) []byte {
	r := []byte{byte(t), flags}
	r = binary.LittleEndian.AppendUint32(r, stored)
	r = binary.LittleEndian.AppendUint32(r, raw)
	return append(r, make([]byte, 32)...)
}

func header(version byte, recs ...[]byte) []byte {
	return append([]byte{version}, bytes.Join(recs, nil)...)
}

func TestParseHeaderRejects(t *testing.T) {
	e := testE(4)
	aead := testAEAD(t, "k", e)
	for _, tc := range []struct {
		name    string
		dataLen int
		header  []byte
		want    string
	}{
		{"valid", 116, header(1, record(Data, 0, 16, 0), record(Tree, 1, 100, 5000)), ""},
		{"version 0", 0, header(0), "unknown version 0"},
		{"version 2", 0, header(2), "unknown version 2"},
		{"offsets beyond the pack", 100, header(1, record(Data, 0, 16, 0), record(Data, 1, 100, 10)), "extends past the header"},
		{"length near 4 GiB", 100, header(1, record(Data, 1, 0xffffffff, 10)), "exceeds the maximum"},
		{"gap before the header", 116, header(1, record(Data, 0, 16, 0), record(Data, 1, 90, 10)), "cover 106 bytes"},
		{"no records but data", 10, header(1), "cover 0 bytes"},
		{"stored shorter than tag", 15, header(1, record(Data, 1, 15, 0)), "shorter than the 16-byte tag"},
		{"unknown type", 16, header(1, record(2, 0, 16, 0)), "unknown type 2"},
		{"unknown flag", 16, header(1, record(Data, 2, 16, 0)), "unknown flags"},
		{"plain raw mismatch", 20, header(1, record(Data, 0, 20, 5)), "raw length 5"},
		{"raw too large", 20, header(1, record(Data, 1, 20, MaxBlobLength+1)), "raw length 1073741825 exceeds"},
		{"record cut short", 0, header(1, record(Data, 0, 16, 0)[:41]), "not 17 + a multiple of 42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sealHeader(aead, e, tc.dataLen, tc.header)
			_, _, err := readAll(t, "k", p)
			if tc.want == "" {
				if err != nil && !strings.Contains(err.Error(), "blob at offset 0: authentication failed") {
					// The blob area is zeros, so OpenBlob fails; the header passed.
					t.Fatalf("valid header rejected: %v", err)
				}
				if _, err := ParseHeader(aead, p[tc.dataLen:len(p)-TrailerSize], int64(len(p))); err != nil {
					t.Fatalf("valid header rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt containing %q", err, tc.want)
			}
		})
	}
}

func TestParseHeaderPackSize(t *testing.T) {
	e := testE(4)
	aead := testAEAD(t, "k", e)
	p := sealHeader(aead, e, 50, header(1, record(Tree, 1, 50, 99)))
	hct := p[50 : len(p)-TrailerSize]
	for _, size := range []int64{int64(len(p)) - 1, int64(len(p)) + 1, 0, -1, int64(len(hct)) + TrailerSize - 1, 1 << 40} {
		if _, err := ParseHeader(aead, hct, size); !errors.Is(err, ErrCorrupt) {
			t.Errorf("pack size %d: err = %v, want ErrCorrupt", size, err)
		}
	}
	blobs, err := ParseHeader(aead, hct, int64(len(p)))
	if err != nil || len(blobs) != 1 || blobs[0] != (Blob{Type: Tree, Compressed: true, StoredLength: 50, RawLength: 99}) {
		t.Fatalf("ParseHeader = %+v, %v", blobs, err)
	}
}

func TestReadTrailer(t *testing.T) {
	e := testE(5)
	trailer := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(e[:], n) }
	for _, tc := range []struct {
		name string
		tail []byte
		size int64
		hl   int
		want string
	}{
		{"empty pack", trailer(17), 53, 17, ""},
		{"one blob", trailer(59), 200, 59, ""},
		{"max header", trailer(MaxHeaderLen), MaxHeaderLen + 36, MaxHeaderLen, ""},
		{"short tail", trailer(17)[:35], 53, 0, "truncated"},
		{"pack too small", trailer(17), 52, 0, "shorter than the smallest pack"},
		{"tail longer than pack", append(make([]byte, 24), trailer(17)...), 53, 0, "longer than the pack"},
		{"header below minimum", trailer(16), 100, 0, "below the minimum"},
		{"header above maximum", trailer(MaxHeaderLen + 42), 1 << 30, 0, "exceeds the maximum"},
		{"header does not fit", trailer(59), 94, 0, "does not fit"},
		{"header misaligned", trailer(60), 200, 0, "not 17 + a multiple"},
		{"length field all ones", trailer(0xffffffff), 1 << 40, 0, "exceeds the maximum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotE, hl, err := ReadTrailer(tc.tail, tc.size)
			if tc.want == "" {
				if err != nil || gotE != e || hl != tc.hl {
					t.Fatalf("ReadTrailer = %x, %d, %v; want E, %d", gotE[:4], hl, err, tc.hl)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt containing %q", err, tc.want)
			}
		})
	}
}

func TestHeaderFromTail(t *testing.T) {
	tail := make([]byte, 100)
	for i := range tail {
		tail[i] = byte(i)
	}
	h, ok := HeaderFromTail(tail, 64)
	if !ok || len(h) != 64 || h[0] != 0 || h[63] != 63 {
		t.Fatalf("HeaderFromTail(100-byte tail, 64) = %v, %v", h, ok)
	}
	if _, ok := HeaderFromTail(tail, 65); ok {
		t.Fatal("HeaderFromTail claimed a header longer than the tail holds")
	}
	if _, ok := HeaderFromTail(tail, -1); ok {
		t.Fatal("HeaderFromTail accepted a negative length")
	}
}

func TestOpenBlobRejects(t *testing.T) {
	e := testE(6)
	aead := testAEAD(t, "k", e)
	for _, tc := range []struct {
		name   string
		index  int
		stored []byte
		want   string
	}{
		{"short", 0, make([]byte, 15), "truncated"},
		{"negative offset", -1, make([]byte, 16), "offset outside"},
		{"offset too large", MaxDataLength + 1, make([]byte, 16), "offset outside"},
		{"zeros", 0, make([]byte, 16), "authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenBlob(aead, tc.index, tc.stored)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt containing %q", err, tc.want)
			}
		})
	}
}

func TestWriterMisuse(t *testing.T) {
	e := testE(7)
	aead := testAEAD(t, "k", e)
	for _, tc := range []struct {
		name string
		w    *Writer
		add  func(w *Writer) error
		want string
	}{
		{"nil aead", NewWriter(nil, e), func(w *Writer) error { _, err := w.Add(Data, ID{}, nil, false, 0); return err }, "nil AEAD"},
		{"unknown type", NewWriter(aead, e), func(w *Writer) error { _, err := w.Add(3, ID{}, nil, false, 0); return err }, "unknown blob type"},
		{"raw mismatch", NewWriter(aead, e), func(w *Writer) error { _, err := w.Add(Data, ID{}, []byte("ab"), false, 3); return err }, "raw length 3"},
		{"negative raw", NewWriter(aead, e), func(w *Writer) error { _, err := w.Add(Data, ID{}, []byte("ab"), true, -1); return err }, "raw length -1"},
		{"raw too large", NewWriter(aead, e), func(w *Writer) error { _, err := w.Add(Data, ID{}, []byte("ab"), true, MaxBlobLength+1); return err }, "raw length"},
		{"add after finish", NewWriter(aead, e), func(w *Writer) error {
			if _, _, err := w.Finish(); err != nil {
				return err
			}
			_, err := w.Add(Data, ID{}, nil, false, 0)
			return err
		}, "Add after Finish"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.add(tc.w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, _, err := NewWriter(nil, e).Finish(); err == nil {
		t.Fatal("Finish with a nil AEAD succeeded")
	}
}

// TestWriterFull fills a pack to MaxBlobs: the next Add reports ErrFull and
// leaves the pack intact, and the largest possible header parses.
func TestWriterFull(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 131,072 blobs")
	}
	e := testE(8)
	aead := testAEAD(t, "k", e)
	w := NewWriter(aead, e)
	for i := 0; i < MaxBlobs; i++ {
		var id ID
		binary.LittleEndian.PutUint32(id[:], uint32(i))
		if _, err := w.Add(Tree, id, nil, false, 0); err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
	}
	size := w.Size()
	if _, err := w.Add(Data, ID{}, nil, false, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("Add past MaxBlobs: err = %v, want ErrFull", err)
	}
	if w.Size() != size || w.Count() != MaxBlobs {
		t.Fatal("a refused Add changed the Writer")
	}
	p, recs, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	_, hl, err := ReadTrailer(p[len(p)-TrailerSize:], int64(len(p)))
	if err != nil || hl != MaxHeaderLen {
		t.Fatalf("ReadTrailer: header length %d, %v; want %d", hl, err, MaxHeaderLen)
	}
	got, err := ParseHeader(aead, p[len(p)-TrailerSize-hl:len(p)-TrailerSize], int64(len(p)))
	if err != nil || len(got) != MaxBlobs || got[MaxBlobs-1] != recs[MaxBlobs-1] {
		t.Fatalf("ParseHeader of a full pack: %d blobs, %v", len(got), err)
	}
}

// TestWriterReuse checks that Reset starts a clean pack and that a warm
// Writer does not allocate.
func TestWriterReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	in := mixedBlobs(r, 20, 5000)
	e1, e2 := testE(1), testE(2)
	w := NewWriter(testAEAD(t, "one", e1), e1)
	for _, b := range in {
		if _, err := w.Add(b.t, b.id, b.data, false, len(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	a2 := testAEAD(t, "two", e2)
	w.Reset(a2, e2)
	if w.Count() != 0 || w.Size() != MinHeaderLen+TrailerSize {
		t.Fatalf("after Reset: Count %d, Size %d", w.Count(), w.Size())
	}
	fill := func() {
		w.Reset(a2, e2)
		for _, b := range in[:10] {
			if _, err := w.Add(b.t, b.id, b.data, false, len(b.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill()
	p, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := readAll(t, "two", bytes.Clone(p))
	if err != nil || len(out) != 10 || !bytes.Equal(out[9], in[9].data) {
		t.Fatalf("pack after Reset: %d blobs, %v", len(out), err)
	}
	if allocs := testing.AllocsPerRun(20, fill); allocs != 0 && !raceEnabled {
		t.Errorf("Reset+Add on a warm Writer: %v allocations, want 0", allocs)
	}
}

func TestBlobNonce(t *testing.T) {
	for _, tc := range []struct {
		i    int
		want string
	}{
		{0, "000000000000000000000001"},
		{1, "000000000000000000000002"},
		{255, "000000000000000000000100"},
		{MaxDataLength, "000000000000000100000000"},
	} {
		n := blobNonce(tc.i)
		if got := fmt.Sprintf("%x", n); got != tc.want {
			t.Errorf("blobNonce(%d) = %s, want %s", tc.i, got, tc.want)
		}
	}
}

// TestWriterTake streams packs the way a repository with a backend.Stager
// does: whatever the points at which the bytes are taken, the pieces and
// Finish's rest join into exactly the pack a Writer builds in one buffer,
// Size counts what was taken, and a Writer that takes into the buffer it
// gave back last time does not allocate once warm.
func TestWriterTake(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	in := mixedBlobs(r, 60, 20000)
	e := testE(5)
	aead := testAEAD(t, "k", e)
	want, wantRecs := build(t, aead, e, in)
	for _, every := range []int{1, 2, 7, 59, 60} {
		w := NewWriter(aead, e)
		var got []byte
		var spare []byte
		for i, pb := range in {
			body, compressed := Compress(nil, pb.data)
			if _, err := w.Add(pb.t, pb.id, body, compressed, len(pb.data)); err != nil {
				t.Fatal(err)
			}
			if (i+1)%every == 0 {
				size, n := w.Size(), w.Buffered()
				piece := w.Take(spare)
				if len(piece) != n || w.Buffered() != 0 || w.Size() != size {
					t.Fatalf("every %d, blob %d: took %d of %d buffered bytes, Buffered %d, Size %d -> %d",
						every, i, len(piece), n, w.Buffered(), size, w.Size())
				}
				got = append(got, piece...)
				spare = piece
			}
		}
		rest, recs, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if w.Take(nil) != nil {
			t.Fatalf("every %d: Take after Finish returned bytes", every)
		}
		got = append(got, rest...)
		if !bytes.Equal(got, want) || fmt.Sprint(recs) != fmt.Sprint(wantRecs) {
			t.Fatalf("every %d: streamed pack (%d bytes) differs from the pack built whole (%d bytes)", every, len(got), len(want))
		}
		if _, out, err := readAll(t, "k", got); err != nil || len(out) != len(in) {
			t.Fatalf("every %d: streamed pack reads %d blobs, %v", every, len(out), err)
		}
	}

	w := NewWriter(aead, e)
	buf := make([]byte, 0, 64<<10)
	fill := func() {
		w.Reset(aead, e)
		for _, pb := range in[:10] {
			if _, err := w.Add(pb.t, pb.id, pb.data, false, len(pb.data)); err != nil {
				t.Fatal(err)
			}
			buf = w.Take(buf)
		}
	}
	fill()
	if allocs := testing.AllocsPerRun(20, fill); allocs != 0 && !raceEnabled {
		t.Errorf("Add+Take on a warm Writer: %v allocations, want 0", allocs)
	}
}
