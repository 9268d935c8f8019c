// Package chunker cuts a byte stream into content-defined chunks for
// Bulwark's backup repository.
//
// # Algorithm
//
// The chunker is FastCDC (Xia et al., "FastCDC: a Fast and Efficient
// Content-Defined Chunking Approach for Data Deduplication", USENIX ATC 2016)
// with normalized chunking at level 2. Its rolling hash is the Gear hash
//
//	h = (h << 1) + gear[b]      (mod 2^64)
//
// over a table of 256 secret 64-bit words derived from the repository's
// 32-byte chunker seed:
//
//	gear[i] = uint64_le(keyed BLAKE3(key = seed, "bulwark gear" || uint32_le(i))[0:8])
//
// Because bit k of h depends only on the last k+1 bytes, the hash needs no
// explicit window: the masks below use bits 16..58, so a boundary depends on
// at most the last 59 bytes.
//
// For the bytes left in a stream, data, and Params{Min, Avg, Max}, the first
// chunk is data[:Cut(data)], defined exactly as follows (this is part of the
// repository format):
//
//	n = min(len(data), Max)
//	if n <= Min: return n
//	h = 0
//	for i = Min; i < n; i++ {              // the first Min bytes are not hashed
//	    h = (h << 1) + gear[data[i]]       // mod 2^64
//	    mask = MaskS if i < Avg else MaskL
//	    if h & mask == 0: return i + 1      // the chunk ends after byte i
//	}
//	return n
//
// Every chunk but the last of a stream is thus longer than Min and at most
// Max bytes long; the last one is 1..Max bytes; an empty stream has no chunks.
// The hash restarts from 0 for each chunk.
//
// # Masks
//
// With a = log2(Avg), MaskS has a+2 one bits and MaskL has a-2 (normalized
// chunking, level 2): a boundary is four times less likely than 1/Avg per
// byte before Avg and four times more likely after it, which narrows the
// size distribution around Avg. The mask with n one bits, M(n), spreads its
// bits over the word as FastCDC's 15-bit mask 0x0000d9f003530000 does:
//
//   - for n <= 15, M(n) is the n highest set bits of 0x0000d9f003530000;
//   - for n > 15, M(n) = 0x0000d9f003530000 | (2^(n-15) - 1) << 48, that is,
//     the 15-bit mask extended with the n-15 bits just above bit 47.
//
// The masks are nested (M(n) ⊂ M(n+1)) and use the high bits of h, which
// depend on the most bytes. The exact constants for the allowed Avg
// (2^8..2^24, so n = 6..26) are:
//
//	n   M(n)                  n   M(n)
//	6   0x0000d98000000000    17  0x0003d9f003530000
//	7   0x0000d9c000000000    18  0x0007d9f003530000  MaskL, Avg = 1 MiB
//	8   0x0000d9e000000000    19  0x000fd9f003530000
//	9   0x0000d9f000000000    20  0x001fd9f003530000
//	10  0x0000d9f002000000    21  0x003fd9f003530000
//	11  0x0000d9f003000000    22  0x007fd9f003530000  MaskS, Avg = 1 MiB
//	12  0x0000d9f003400000    23  0x00ffd9f003530000
//	13  0x0000d9f003500000    24  0x01ffd9f003530000
//	14  0x0000d9f003520000    25  0x03ffd9f003530000
//	15  0x0000d9f003530000    26  0x07ffd9f003530000
//	16  0x0001d9f003530000
//
// # What chunk sizes reveal
//
// The gear table is secret so that chunk boundaries are not a public function
// of the content: without the seed, an observer who learns the lengths of a
// backup's chunks cannot compute the length sequence of a candidate file and
// so cannot confirm that the file is in the backup. (In this repository
// format the storage host sees pack sizes, the blob count of each pack,
// which the clear length of the pack header gives away, and upload volumes;
// exact lengths are in the sealed headers and index, readable only by key
// holders, who also hold the seed.) What lengths still reveal even without
// the seed:
//
//   - A file of at most Min bytes is one chunk of its exact length (before
//     compression), so the sizes of small files show, and a file with a
//     distinctive size can be recognised by size alone. Larger files show their
//     approximate size (chunk count times about Avg) and the exact length of
//     their last chunk.
//   - Lengths are deterministic for a given seed: identical content gives the
//     same length sequence, so repeated content, content shared between
//     backups of one repository, and where in a file an edit happened show as
//     equal or unequal runs of lengths.
//   - The secrecy of the table itself does not survive an attacker who can
//     both choose content that gets backed up (mail a file, plant one in a
//     shared folder) and observe the resulting chunk lengths. The Gear hash is
//     additive and local (a boundary depends on at most 59 bytes), so inputs
//     built from chosen bytes test relations between gear[x] values one
//     boundary at a time. Alexeev, Percival and Zhang ("Chunking Attacks on
//     File Backup Services using Content-Defined Chunking", 2025) and Truong,
//     Merz, Scarlata, Günther and Paterson ("Breaking and Fixing
//     Content-Defined Chunking", 2025) recover the secret chunking parameters
//     of deployed backup tools this way, among them Borg, Restic, Tarsnap,
//     Duplicacy and Bupstash (a keyed Gear table, as here), mostly from
//     chosen and in some settings from known plaintext. Once the table is
//     known, chunk lengths fingerprint known files again. Keying the table
//     raises the bar from "anyone" to "an attacker with a chosen-content
//     channel and a view of sizes"; it does not make lengths confidential.
//
// Operators should therefore treat chunker_seed as a secret with the same
// care as id_key (it is in every key file), use a fresh seed per repository
// (share one with --copy-params-from only between repositories in the same
// trust domain), and not let a party who can inject files into backed-up
// trees also watch the repository storage. Where that cannot be excluded,
// assume chunk lengths identify known content. After a suspected leak of
// the seed, start a new repository with a new seed: the seed cannot be
// rotated in place, because it decides which chunks deduplicate.
//
// # Default parameters
//
// DefaultParams (Min 512 KiB, Avg 1 MiB, Max 8 MiB) was chosen by measurement
// (internal/measure) against Min 256 KiB and smaller averages. On random
// data it gives a mean chunk of 1.19 MiB (5th-95th percentile 661 KiB-1.66
// MiB) and re-stores 1.27 MiB per 100-byte insertion; Min 256 KiB gives 4%
// more chunks and a wider spread (5th percentile 432 KiB) for the same
// re-stored bytes per edit (1.28 MiB), and hashes a larger share of the
// input. Halving Avg halves the cost of an edit in a large file but doubles
// the chunk count (index size, per-blob overhead) of large files. On file
// trees such as a Go installation nearly every file is below Min and is one
// chunk whatever the parameters.
//
// # Performance
//
// The first Min bytes of every chunk are skipped without hashing. The inner
// loop has no bounds checks and advances the hash chain two bytes per
// instruction (see find). A Chunker reuses one buffer and allocates nothing
// per chunk; Reset reuses it for the next stream. The buffer starts at
// 4*Avg bytes (4 MiB with the defaults; at most 2*Max) and doubles only
// when a chunk does not fit in it (to at most 2*Max): on ordinary data
// chunks stay near Avg and the buffer never grows, where a fixed 2*Max
// buffer would hold 16 MiB for a chunker that rarely sees an 8 MiB chunk.
package chunker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/zeebo/blake3"
)

// Bounds checked by Params.Validate. They are part of the repository format:
// a reader refuses a config whose chunker parameters are outside them.
const (
	MinMin = 64      // smallest allowed Params.Min
	MinAvg = 1 << 8  // smallest allowed Params.Avg (256 B)
	MaxAvg = 1 << 24 // largest allowed Params.Avg (16 MiB)
	MaxMax = 1 << 27 // largest allowed Params.Max (128 MiB)
)

// baseMask is FastCDC's 15-bit mask, from which all masks derive.
const baseMask = 0x0000d9f003530000

// Params are the chunk sizes of a repository, in bytes.
type Params struct {
	Min int // every chunk but a stream's last is longer than Min
	Avg int // target chunk size; a power of two
	Max int // no chunk is longer than Max
}

// DefaultParams returns the parameters for new repositories:
// Min 512 KiB, Avg 1 MiB, Max 8 MiB.
func DefaultParams() Params {
	return Params{Min: 512 << 10, Avg: 1 << 20, Max: 8 << 20}
}

// Validate reports whether p is usable: MinMin <= Min < Avg < Max <= MaxMax,
// and Avg is a power of two between MinAvg and MaxAvg. The error names the
// offending field.
func (p Params) Validate() error {
	switch {
	case p.Avg < MinAvg || p.Avg > MaxAvg:
		return fmt.Errorf("chunker params: avg %d: outside %d..%d", p.Avg, MinAvg, MaxAvg)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker params: avg %d: not a power of two", p.Avg)
	case p.Min < MinMin:
		return fmt.Errorf("chunker params: min %d: below %d", p.Min, MinMin)
	case p.Min >= p.Avg:
		return fmt.Errorf("chunker params: min %d: not below avg %d", p.Min, p.Avg)
	case p.Max <= p.Avg:
		return fmt.Errorf("chunker params: max %d: not above avg %d", p.Max, p.Avg)
	case p.Max > MaxMax:
		return fmt.Errorf("chunker params: max %d: above %d", p.Max, MaxMax)
	}
	return nil
}

// masks returns MaskS and MaskL for a valid p.
func (p Params) masks() (small, large uint64) {
	a := bits.TrailingZeros(uint(p.Avg))
	return mask(a + 2), mask(a - 2)
}

// mask returns M(n), the mask with n one bits (see the package comment),
// for 1 <= n <= 31.
func mask(n int) uint64 {
	if n > 15 {
		return baseMask | (1<<(n-15)-1)<<48
	}
	m := uint64(0)
	for b := uint64(baseMask); n > 0; n-- {
		top := uint64(1) << (63 - bits.LeadingZeros64(b))
		m |= top
		b &^= top
	}
	return m
}

// Table is a gear table: one pseudo-random word per byte value.
type Table [256]uint64

// NewTable derives the gear table from a repository's chunker seed.
func NewTable(seed [32]byte) *Table {
	h, err := blake3.NewKeyed(seed[:])
	if err != nil {
		// NewKeyed fails only for a key that is not 32 bytes long.
		panic("chunker: blake3.NewKeyed: " + err.Error())
	}
	var t Table
	var msg [16]byte
	copy(msg[:], "bulwark gear")
	var sum [32]byte
	for i := range t {
		binary.LittleEndian.PutUint32(msg[12:], uint32(i))
		h.Reset()
		h.Write(msg[:])
		t[i] = binary.LittleEndian.Uint64(h.Sum(sum[:0]))
	}
	return &t
}

// find hashes data into h byte by byte and returns the index of the first
// byte after which h&mask == 0, or -1 and the new h if there is none (when
// it finds one, the returned h is meaningless: callers start a new chunk).
//
// The loop is unrolled by two bytes so that the hash chain needs one
// instruction per two bytes: with h1 = 2h + gear[b0] and h2 = 2h1 + gear[b1],
// h2 = 4h + (2gear[b0] + gear[b1]), where the bracket does not depend on h,
// and h1&mask == 0 is tested as (4h + 2gear[b0]) & (mask<<1) == 0, which is
// the same test because bit 63 of every mask is 0.
func (t *Table) find(data []byte, h, mask uint64) (int, uint64) {
	m2 := mask << 1
	i := 0
	for ; i+8 <= len(data); i += 8 {
		d := data[i : i+8 : i+8]
		a0 := t[d[0]] << 1
		x0 := a0 + t[d[1]]
		a1 := t[d[2]] << 1
		x1 := a1 + t[d[3]]
		if (h*4+a0)&m2 == 0 {
			return i, 0
		}
		if h = h*4 + x0; h&mask == 0 {
			return i + 1, 0
		}
		if (h*4+a1)&m2 == 0 {
			return i + 2, 0
		}
		if h = h*4 + x1; h&mask == 0 {
			return i + 3, 0
		}
		a0 = t[d[4]] << 1
		x0 = a0 + t[d[5]]
		a1 = t[d[6]] << 1
		x1 = a1 + t[d[7]]
		if (h*4+a0)&m2 == 0 {
			return i + 4, 0
		}
		if h = h*4 + x0; h&mask == 0 {
			return i + 5, 0
		}
		if (h*4+a1)&m2 == 0 {
			return i + 6, 0
		}
		if h = h*4 + x1; h&mask == 0 {
			return i + 7, 0
		}
	}
	for ; i < len(data); i++ {
		if h = h<<1 + t[data[i]]; h&mask == 0 {
			return i, 0
		}
	}
	return -1, h
}

// scan continues the search for the end of the chunk that starts at data[0]:
// bytes data[from:n] are hashed into h. It returns the chunk length if a
// boundary was found, else 0 and the new h (from is then n).
func (t *Table) scan(data []byte, from, n int, h uint64, p Params, maskS, maskL uint64) (int, uint64) {
	if from < p.Avg {
		end := min(n, p.Avg)
		var i int
		if i, h = t.find(data[from:end], h, maskS); i >= 0 {
			return from + i + 1, h
		}
		from = end
	}
	if from < n {
		var i int
		if i, h = t.find(data[from:n], h, maskL); i >= 0 {
			return from + i + 1, h
		}
	}
	return 0, h
}

// Cut returns the length of the first chunk of data, where data is all that
// is left of a stream: 0 for empty data, else 1..p.Max. It returns -1 if t is
// nil or p is not valid.
func Cut(t *Table, p Params, data []byte) int {
	if t == nil || p.Validate() != nil {
		return -1
	}
	n := min(len(data), p.Max)
	if n <= p.Min {
		return n
	}
	maskS, maskL := p.masks()
	if l, _ := t.scan(data, p.Min, n, 0, p, maskS, maskL); l > 0 {
		return l
	}
	return n
}

// maxEmptyReads is how many consecutive (0, nil) reads Next tolerates before
// failing with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// Chunker cuts the stream of an io.Reader into chunks. It is not safe for
// concurrent use.
type Chunker struct {
	r            io.Reader
	t            *Table
	p            Params
	maskS, maskL uint64
	buf          []byte // initialBuffer(p) bytes, doubled as long chunks need (at most 2*Max)
	start, end   int    // buf[start:end] is buffered; the current chunk starts at start
	pos          int    // next byte to hash, relative to start (>= Min)
	h            uint64 // gear hash of buf[start+Min : start+pos]
	off          int64  // stream offset of buf[start]
	eof          bool   // r returned io.EOF
	err          error  // sticky: returned by every later Next
}

// New returns a Chunker that reads r and cuts it with t and p. It allocates
// a buffer of min(4*p.Avg, 2*p.Max) bytes, which grows up to 2*p.Max when a
// chunk needs it and which Reset reuses. If t is nil or p is not valid, Next
// returns an error.
func New(r io.Reader, t *Table, p Params) *Chunker {
	c := &Chunker{t: t, p: p}
	switch err := p.Validate(); {
	case err != nil:
		c.err = fmt.Errorf("chunker: %w", err)
		return c
	case t == nil:
		c.err = errors.New("chunker: nil gear table")
		return c
	}
	c.maskS, c.maskL = p.masks()
	c.buf = make([]byte, initialBuffer(p))
	c.Reset(r)
	return c
}

// initialBuffer is the size of a new Chunker's buffer: room for a few
// chunks of the average length, never more than 2*Max.
func initialBuffer(p Params) int { return min(4*p.Avg, 2*p.Max) }

// Reset makes c read a new stream from r, keeping its table, parameters and
// buffer. It does nothing to a Chunker whose parameters or table are invalid.
func (c *Chunker) Reset(r io.Reader) {
	if c.buf == nil {
		return
	}
	c.r = r
	c.start, c.end, c.off = 0, 0, 0
	c.pos, c.h = c.p.Min, 0
	c.eof, c.err = false, nil
}

// Next returns the next chunk. The slice aliases c's buffer and is valid until
// the next call to Next or Reset. At the end of the stream Next returns
// io.EOF; an empty stream yields no chunk. If reading fails, Next returns the
// read error (wrapped, with the stream offset; errors.Is sees it) and keeps
// returning it; the bytes after the last returned chunk are then dropped.
func (c *Chunker) Next() ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	for {
		n := c.end - c.start
		lim := min(n, c.p.Max)
		if c.pos < lim {
			l, h := c.t.scan(c.buf[c.start:c.start+lim], c.pos, lim, c.h, c.p, c.maskS, c.maskL)
			if l > 0 {
				return c.emit(l), nil
			}
			c.pos, c.h = lim, h
		}
		switch {
		case n >= c.p.Max:
			return c.emit(c.p.Max), nil
		case c.eof && n > 0:
			return c.emit(n), nil
		case c.eof:
			c.err = io.EOF
			return nil, io.EOF
		}
		if err := c.fill(); err != nil {
			c.err = err
			return nil, err
		}
	}
}

// emit returns the next l buffered bytes as a chunk and starts a new one.
func (c *Chunker) emit(l int) []byte {
	b := c.buf[c.start : c.start+l : c.start+l]
	c.start += l
	c.off += int64(l)
	c.pos, c.h = c.p.Min, 0
	return b
}

// fill reads more of the stream into the buffer, moving the current chunk to
// the front when the buffer's tail is full, or, when the chunk already fills
// the whole buffer, doubling the buffer (up to 2*Max; a buffer of Max bytes
// or more never needs it, since Next cuts a chunk at Max). The bytes a move
// copies belong to the one chunk in progress, which the following Next
// calls either return or find longer than the buffer (which then grows
// instead of moving), so moves copy at most once each byte of the stream.
func (c *Chunker) fill() error {
	switch {
	case c.start == c.end:
		c.start, c.end = 0, 0
	case c.end < len(c.buf):
	case c.start == 0:
		nb := make([]byte, min(2*len(c.buf), 2*c.p.Max))
		c.end = copy(nb, c.buf[:c.end])
		c.buf = nb
	default:
		copy(c.buf, c.buf[c.start:c.end])
		c.end -= c.start
		c.start = 0
	}
	for range maxEmptyReads {
		k, err := c.r.Read(c.buf[c.end:])
		if k < 0 || k > len(c.buf)-c.end {
			return fmt.Errorf("chunker: read at byte %d: invalid count %d", c.off+int64(c.end-c.start), k)
		}
		c.end += k
		switch {
		case err == io.EOF:
			c.eof = true
			return nil
		case err != nil:
			return fmt.Errorf("chunker: read at byte %d: %w", c.off+int64(c.end-c.start), err)
		case k > 0:
			return nil
		}
	}
	return fmt.Errorf("chunker: read at byte %d: %w", c.off+int64(c.end-c.start), io.ErrNoProgress)
}
