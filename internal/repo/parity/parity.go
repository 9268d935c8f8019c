// Package parity computes, checks and uses Reed-Solomon parity objects, the
// files under parity/ that let a damaged pack be repaired without a second
// copy (docs/repository-format.md, "Parity").
//
// A pack of L bytes is cut into DataShards data shards of S bytes each,
// the last ones zero-padded, and ParityShards parity shards of S bytes are
// computed over GF(2^8) with klauspost/reedsolomon's default code:
// polynomial x^8+x^4+x^3+x^2+1 (0x11d), encoding matrix V * inverse(V[0:d])
// where V is the (d+p) x d Vandermonde matrix V[r][c] = r^c, so the data
// shards stay as they are and any d of the d+p shards determine the rest.
// (parity_test.go recomputes this independently of the library.)
//
// Shard size:
//
//	S = ceil(L / d), rounded up to a multiple of 4096 when it exceeds 4096
//
// Rounding puts every shard boundary of a large pack on a 4 KiB boundary of
// the file, so a bad disk block damages one shard, never two. Small packs
// keep exact shards so their parity stays proportionally small.
//
// Parity object, integers little-endian:
//
//	version (1 byte, = 1) || data_shards (1) || parity_shards (1) ||
//	uint32(S) || uint64(L) ||
//	SHA-256 of each shard, data shards 0..d-1 then parity shards 0..p-1 (32 each) ||
//	SHA-256 of everything above (32) ||
//	parity shards 0..p-1 (S bytes each)
//
// The header checksum vouches for the fields and the shard hashes; each
// parity shard is vouched for by its own hash. A damaged parity shard is
// then one more erasure rather than a reason to distrust the whole object,
// and a pack and its parity object damaged at the same time can still be
// repaired as long as at most p shards are bad in total. Together the
// checksums cover every byte of the object, so damage anywhere in it is
// detected.
//
// A pack is judged shard by shard: data shard i is bytes [i*S, (i+1)*S) of
// the pack cut or zero-extended to L bytes and padded to d*S. A shard whose
// SHA-256 differs is bad. A pack of the wrong length is bad even where the
// hashes happen to agree (truncated zeros, appended bytes): the data shard
// holding byte min(len(pack), L) (the last data-bearing one when that is L)
// is counted as bad too. So Check finds nothing exactly when the pack is
// byte for byte the one encoded. Repair treats bad shards as erasures,
// rebuilds them from the good ones when there are at most p, and verifies
// every rebuilt shard against its hash.
package parity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/reedsolomon"
)

// Format constants.
const (
	Version    = 1
	FixedSize  = 15 // version, data_shards, parity_shards, S, L
	HashSize   = sha256.Size
	ShardAlign = 4096 // shard sizes above this are multiples of it
	MaxShards  = 256  // data + parity shards
)

// Params are the shard counts of a parity scheme.
type Params struct {
	DataShards   int // 1..255
	ParityShards int // 1..256-DataShards
}

// Validate reports whether the counts fit the format and the code.
func (p Params) Validate() error {
	if p.DataShards < 1 || p.DataShards > 255 {
		return fmt.Errorf("parity: data shards %d outside 1..255", p.DataShards)
	}
	if p.ParityShards < 1 || p.ParityShards > MaxShards-p.DataShards {
		return fmt.Errorf("parity: parity shards %d outside 1..%d for %d data shards", p.ParityShards, MaxShards-p.DataShards, p.DataShards)
	}
	return nil
}

func (p Params) total() int { return p.DataShards + p.ParityShards }

// Header is a decoded parity object header.
type Header struct {
	Params
	ShardSize   int        // S
	PackLength  int64      // L
	ShardHashes [][32]byte // data shards then parity shards
}

// ErrCorrupt is wrapped by errors about a parity object that cannot be
// trusted: malformed, or failing its header checksum.
var ErrCorrupt = errors.New("corrupt parity object")

// ErrTooDamaged is wrapped by Repair's error when more shards are bad than
// there are parity shards.
var ErrTooDamaged = errors.New("too many damaged shards")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("parity object: "+format+": %w", append(args, ErrCorrupt)...)
}

// ShardSize returns S for a pack of packLen bytes and d data shards, or -1
// when S would not fit the format's 32-bit field.
func ShardSize(packLen int64, d int) int64 {
	if packLen < 0 || d < 1 {
		return -1
	}
	s := packLen / int64(d)
	if packLen%int64(d) != 0 {
		s++
	}
	if s > ShardAlign {
		s = (s + ShardAlign - 1) / ShardAlign * ShardAlign
	}
	if s > 1<<32-1 {
		return -1
	}
	return s
}

// ObjectSize returns the length of the parity object of a pack of packLen
// bytes, or -1 when the pack is too large for the format.
func ObjectSize(p Params, packLen int64) int64 {
	s := ShardSize(packLen, p.DataShards)
	if s < 0 {
		return -1
	}
	return headerSize(p) + int64(p.ParityShards)*s
}

// headerSize is the length of everything before the parity shards.
func headerSize(p Params) int64 { return FixedSize + int64(p.total())*HashSize + HashSize }

// Coder encodes and repairs with one Params. Setting up the Reed-Solomon
// code costs milliseconds (about 20 ms for 128+2 and 230 ms for 255+1 on a
// 2-core Xeon), more than encoding a 16 MiB pack, so a writer keeps one
// Coder per repository. A Coder is safe for concurrent use.
type Coder struct {
	p   Params
	enc reedsolomon.Encoder
}

// NewCoder sets up the code for p.
func NewCoder(p Params) (*Coder, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	enc, err := reedsolomon.New(p.DataShards, p.ParityShards)
	if err != nil {
		return nil, fmt.Errorf("parity: %w", err)
	}
	return &Coder{p: p, enc: enc}, nil
}

// Params returns the coder's shard counts.
func (c *Coder) Params() Params { return c.p }

// Encode returns the parity object of pack using a one-off Coder; see
// Coder for why a long-lived one is faster.
func Encode(p Params, pack []byte) ([]byte, error) {
	c, err := NewCoder(p)
	if err != nil {
		return nil, err
	}
	return c.Encode(pack)
}

// Encode returns the parity object of pack.
func (c *Coder) Encode(pack []byte) ([]byte, error) {
	p := c.p
	L := int64(len(pack))
	s := ShardSize(L, p.DataShards)
	if s < 0 {
		return nil, fmt.Errorf("parity: pack of %d bytes is too large for %d data shards", L, p.DataShards)
	}
	S := int(s)
	hs := headerSize(p)
	obj := make([]byte, hs+int64(p.ParityShards)*s)
	obj[0], obj[1], obj[2] = Version, byte(p.DataShards), byte(p.ParityShards)
	binary.LittleEndian.PutUint32(obj[3:], uint32(S))
	binary.LittleEndian.PutUint64(obj[7:], uint64(L))

	shards := dataShards(pack, p.DataShards, S, nil)
	for j := range p.ParityShards {
		off := hs + int64(j)*s
		shards = append(shards, obj[off:off+s])
	}
	if S > 0 {
		if err := c.enc.Encode(shards); err != nil {
			return nil, fmt.Errorf("parity: %w", err)
		}
	}
	hashShards(shards, obj[FixedSize:])
	sum := sha256.Sum256(obj[:hs-HashSize])
	copy(obj[hs-HashSize:hs], sum[:])
	return obj, nil
}

// dataShards returns the d data shards of pack, zero-padded to d*S bytes.
// Without buf, whole shards alias pack and only the partial shard and one
// shared all-zero shard are allocated. With buf (d*S bytes), pack is copied
// into it and the shards are slices of buf, ready to be rebuilt in place.
func dataShards(pack []byte, d, S int, buf []byte) [][]byte {
	shards := make([][]byte, d, d+MaxShards)
	if buf != nil {
		copy(buf, pack)
		for i := range d {
			shards[i] = buf[i*S : (i+1)*S : (i+1)*S]
		}
		return shards
	}
	var zero []byte
	for i := range d {
		start, end := i*S, (i+1)*S
		switch {
		case end <= len(pack):
			shards[i] = pack[start:end:end]
		case start < len(pack):
			sh := make([]byte, S)
			copy(sh, pack[start:])
			shards[i] = sh
		default:
			if zero == nil {
				zero = make([]byte, S)
			}
			shards[i] = zero
		}
	}
	return shards
}

// Parse decodes and validates a parity object's header: the version, the
// shard counts, S against L, the object's length, and the header checksum.
// It does not hash the parity shards; Check and Repair do.
func Parse(obj []byte) (Header, error) {
	if len(obj) < FixedSize {
		return Header{}, corrupt("truncated: %d bytes, the fixed header is %d", len(obj), FixedSize)
	}
	if obj[0] != Version {
		return Header{}, corrupt("unknown version %d", obj[0])
	}
	p := Params{DataShards: int(obj[1]), ParityShards: int(obj[2])}
	if err := p.Validate(); err != nil {
		return Header{}, corrupt("%s", strings.TrimPrefix(err.Error(), "parity: "))
	}
	S := int64(binary.LittleEndian.Uint32(obj[3:]))
	L64 := binary.LittleEndian.Uint64(obj[7:])
	if L64 > 1<<62 {
		return Header{}, corrupt("pack length %d out of range", L64)
	}
	L := int64(L64)
	if want := ShardSize(L, p.DataShards); S != want {
		return Header{}, corrupt("shard size %d, want %d for a %d-byte pack and %d data shards", S, want, L, p.DataShards)
	}
	hs := headerSize(p)
	if want := hs + int64(p.ParityShards)*S; int64(len(obj)) != want {
		return Header{}, corrupt("%d bytes, want %d for %d+%d shards of %d bytes", len(obj), want, p.DataShards, p.ParityShards, S)
	}
	if sum := sha256.Sum256(obj[:hs-HashSize]); !bytes.Equal(sum[:], obj[hs-HashSize:hs]) {
		return Header{}, corrupt("header checksum mismatch")
	}
	h := Header{Params: p, ShardSize: int(S), PackLength: L, ShardHashes: make([][32]byte, p.total())}
	for i := range h.ShardHashes {
		copy(h.ShardHashes[i][:], obj[FixedSize+i*HashSize:])
	}
	if S == 0 {
		empty := sha256.Sum256(nil)
		for i, sh := range h.ShardHashes {
			if sh != empty {
				return Header{}, corrupt("shard %d of an empty pack has a non-empty hash", i)
			}
		}
	}
	return h, nil
}

// parityShard returns parity shard j of obj.
func (h *Header) parityShard(obj []byte, j int) []byte {
	off := headerSize(h.Params) + int64(j)*int64(h.ShardSize)
	return obj[off : off+int64(h.ShardSize)]
}

// badShards hashes the data shards (the view of pack) and the parity
// shards of obj and returns the bad ones, in order.
func (h *Header) badShards(pack, obj []byte, data [][]byte) []int {
	all := append(data[:h.DataShards:h.DataShards], make([][]byte, h.ParityShards)...)
	for j := range h.ParityShards {
		all[h.DataShards+j] = h.parityShard(obj, j)
	}
	sums := make([]byte, len(all)*HashSize)
	hashShards(all, sums)
	var bad []int
	for i := range all {
		if !bytes.Equal(sums[i*HashSize:(i+1)*HashSize], h.ShardHashes[i][:]) {
			bad = append(bad, i)
		}
	}
	if int64(len(pack)) != h.PackLength {
		// A length mismatch the hashes cannot see (zeros cut off or bytes
		// appended) still makes the pack differ: blame the shard where the
		// difference starts.
		var i int
		if h.ShardSize > 0 {
			at := min(int64(len(pack)), h.PackLength-1)
			i = int(max(at, 0) / int64(h.ShardSize))
		}
		if !slices.Contains(bad, i) {
			bad = append(bad, i)
			slices.Sort(bad)
		}
	}
	return bad
}

// hashShards writes the SHA-256 of each shard to sums, 32 bytes apart,
// spreading large jobs over GOMAXPROCS goroutines.
func hashShards(shards [][]byte, sums []byte) {
	total := 0
	for _, sh := range shards {
		total += len(sh)
	}
	workers := min(runtime.GOMAXPROCS(0), len(shards), total/(1<<20)+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(shards) {
					return
				}
				sum := sha256.Sum256(shards[i])
				copy(sums[i*HashSize:], sum[:])
			}
		})
	}
	wg.Wait()
}

// viewShards returns the data shards of pack as recorded in h: cut or
// zero-extended to PackLength and padded.
func (h *Header) viewShards(pack []byte, buf []byte) [][]byte {
	if int64(len(pack)) > h.PackLength {
		pack = pack[:h.PackLength]
	}
	return dataShards(pack, h.DataShards, h.ShardSize, buf)
}

// Check compares pack with the parity object and returns the bad shards:
// indices 0..d-1 are data shards (a range of the pack, see ShardRange),
// d..d+p-1 parity shards. None means the pack is intact. The error is
// non-nil only when the parity object's header cannot be trusted.
func Check(pack []byte, parityObj []byte) (badShards []int, err error) {
	h, err := Parse(parityObj)
	if err != nil {
		return nil, err
	}
	return h.badShards(pack, parityObj, h.viewShards(pack, nil)), nil
}

// Repair returns the original pack, rebuilt from pack and its parity
// object, and the shards it rebuilt (as Check numbers them; a rebuilt
// parity shard means the parity object should be written anew with
// Encode). fixed never aliases pack. It fails when the parity object's
// header is corrupt, or, wrapping ErrTooDamaged and naming the shards, when
// more than ParityShards shards are bad. It allocates about the recorded
// pack length (see Parse for it). Repair sets up the code afresh; a Coder
// with the same Params saves that.
func Repair(pack []byte, parityObj []byte) (fixed []byte, repaired []int, err error) {
	return repair(nil, pack, parityObj)
}

// Repair is the package's Repair, using c's code when the parity object
// has c's Params.
func (c *Coder) Repair(pack []byte, parityObj []byte) (fixed []byte, repaired []int, err error) {
	return repair(c, pack, parityObj)
}

func repair(c *Coder, pack []byte, parityObj []byte) (fixed []byte, repaired []int, err error) {
	h, err := Parse(parityObj)
	if err != nil {
		return nil, nil, err
	}
	d, S := h.DataShards, h.ShardSize
	buf := make([]byte, d*S)
	shards := h.viewShards(pack, buf)
	bad := h.badShards(pack, parityObj, shards)
	if len(bad) == 0 {
		return buf[:h.PackLength], nil, nil
	}
	if len(bad) > h.ParityShards {
		return nil, nil, fmt.Errorf("parity: %s damaged, only %d can be rebuilt: %w", h.Describe(bad), h.ParityShards, ErrTooDamaged)
	}
	if S == 0 {
		return buf[:0], bad, nil // all shards are empty: nothing to rebuild
	}
	for j := range h.ParityShards {
		shards = append(shards, h.parityShard(parityObj, j))
	}
	for _, i := range bad {
		if i < d {
			shards[i] = shards[i][:0] // rebuilt in place, in buf
		} else {
			shards[i] = nil // rebuilt into a new buffer; parityObj is not written
		}
	}
	if c == nil || c.p != h.Params {
		if c, err = NewCoder(h.Params); err != nil {
			return nil, nil, err
		}
	}
	if err := c.enc.Reconstruct(shards); err != nil {
		return nil, nil, fmt.Errorf("parity: rebuilding %s: %w", h.Describe(bad), err)
	}
	for _, i := range bad {
		if sha256.Sum256(shards[i]) != h.ShardHashes[i] {
			return nil, nil, fmt.Errorf("parity: rebuilt shard %d does not match its hash (more damage than the hashes show)", i)
		}
	}
	return buf[:h.PackLength], bad, nil
}

// ShardRange returns the byte range [start, end) of the pack that data
// shard i covers, clipped to the pack length.
func (h Header) ShardRange(i int) (start, end int64) {
	start = min(int64(i)*int64(h.ShardSize), h.PackLength)
	end = min(start+int64(h.ShardSize), h.PackLength)
	return start, end
}

// Describe names shards for a message: "3 of 130 shards (data 0 at bytes
// 0..4096, data 7 at bytes ..., parity 1)".
func (h *Header) Describe(bad []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d shards (", len(bad), h.DataShards+h.ParityShards)
	for k, i := range bad {
		if k > 0 {
			b.WriteString(", ")
		}
		if i < h.DataShards {
			s, e := h.ShardRange(i)
			fmt.Fprintf(&b, "data %d at bytes %d..%d", i, s, e)
		} else {
			fmt.Fprintf(&b, "parity %d", i-h.DataShards)
		}
	}
	b.WriteString(")")
	return b.String()
}
