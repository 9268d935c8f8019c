package integrity

// The baseline file.
//
//	magic      "BULWARK INTEGRITY BASELINE 1\n"
//	header     uvarint length, then that many bytes of JSON (Header)
//	records    uvarint length (1 to maxRecord), then the record; paths
//	           strictly increasing by bytes
//	end        uvarint 0
//	signature  64 bytes: ed25519 over "bulwark integrity baseline v1\x00"
//	           followed by SHA-512 of every byte before the signature
//
// A record is the entry's path (bytes), its attribute set (uvarint) and
// then, in the order of the attribute bits and only for the bits set: type
// (one byte, a find -type letter), mode, owner, group, size (uvarints),
// mtime, ctime (zig-zag varints of Unix nanoseconds), inode, links
// (uvarints), target (bytes), xattrs (uvarint count, then name and value
// bytes each), acl, caps and hash (optional bytes); and last, always, the
// read error (optional bytes). "bytes" is a uvarint length and the bytes;
// "optional bytes" a uvarint that is 0 when absent and length+1 otherwise.
//
// The signature covers everything, so an intruder who edits the baseline
// to hide a change (or swaps in one from before the change) needs the
// signing key too: keep a copy of integrity.pub apart from the host and
// check with --public-key, and the audit trail records each baseline's
// digest. Read verifies before it decodes, and the decoder checks every
// length against fixed limits, so a damaged or hostile file is an error,
// never a crash or a huge allocation (FuzzDecodeBody).

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/signkey"
)

const (
	magic     = "BULWARK INTEGRITY BASELINE 1\n"
	sigDomain = "bulwark integrity baseline v1\x00"

	maxHeader    = 1 << 20
	maxRecord    = 1 << 20
	maxPath      = 4096
	maxXattrs    = 1024
	maxXattrName = 255
	maxValue     = 64 << 10
	maxHash      = 64
	maxError     = 4096
	// MaxBaseline bounds the file Read accepts (about 10 million entries).
	MaxBaseline = 2 << 30
)

// Header describes a baseline.
type Header struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	KeyID   string    `json:"key_id"`
	Policy  Policy    `json:"policy"`
	Entries int       `json:"entries"`
	// Accepted says what the last accept folded in, when it made this one.
	Accepted *Acceptance `json:"accepted,omitempty"`
}

// NewHeader is the header of a baseline of p recorded now, on this host.
func NewHeader(p Policy) Header {
	h, _ := os.Hostname()
	return Header{Created: time.Now().UTC(), Host: h, Policy: p}
}

// Acceptance records an accept: who, when, and how many changes of which
// paths.
type Acceptance struct {
	By    string    `json:"by"`
	Time  time.Time `json:"time"`
	Paths []string  `json:"paths,omitempty"` // empty: every change (every finding when Exact)
	// Exact: each path itself only, in the state its finding reported;
	// otherwise each covers everything below it.
	Exact   bool   `json:"exact,omitempty"`
	Changes int    `json:"changes"`
	Comment string `json:"comment,omitempty"`
}

// Baseline is a verified baseline file.
type Baseline struct {
	Header  Header
	Entries []Entry // sorted by path
	// Digest is SHA-512 of the signed bytes, hex: what the audit trail
	// records.
	Digest string
}

// Encode writes the signed baseline file of h and entries (sorted, unique
// paths) with key. It streams: what it holds is one record at a time.
func Encode(w io.Writer, h Header, entries []Entry, key ed25519.PrivateKey) (digest string, err error) {
	h.Version = 1
	h.KeyID = signkey.ID(key.Public().(ed25519.PublicKey))
	h.Entries = len(entries)
	hj, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	sum := sha512.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 256<<10)
	b := append([]byte(magic), binary.AppendUvarint(nil, uint64(len(hj)))...)
	bw.Write(append(b, hj...))
	var rec, n []byte
	for i := range entries {
		if i > 0 && entries[i].Path <= entries[i-1].Path {
			return "", fmt.Errorf("baseline: entries not sorted at %q", entries[i].Path)
		}
		rec = appendRecord(rec[:0], &entries[i])
		if len(rec) > maxRecord {
			return "", fmt.Errorf("baseline: %s: record of %d bytes, more than %d", entries[i].Path, len(rec), maxRecord)
		}
		n = binary.AppendUvarint(n[:0], uint64(len(rec)))
		bw.Write(n)
		bw.Write(rec)
	}
	bw.WriteByte(0)
	if err := bw.Flush(); err != nil { // the first write error, kept by bufio
		return "", err
	}
	d := sum.Sum(nil)
	if _, err := w.Write(ed25519.Sign(key, append([]byte(sigDomain), d...))); err != nil {
		return "", err
	}
	return hex.EncodeToString(d), nil
}

// WriteFile writes the baseline to path atomically (mode 0600).
func WriteFile(path string, h Header, entries []Entry, key ed25519.PrivateKey) (digest string, err error) {
	err = signkey.WriteAtomic(path, 0o600, func(w io.Writer) error {
		digest, err = Encode(w, h, entries, key)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("baseline: %w", err)
	}
	return digest, nil
}

// ErrTampered is a baseline whose signature does not verify.
var ErrTampered = errors.New("signature does not verify: the baseline was altered, or signed by another key")

// ReadFile reads and verifies a baseline with pub.
func ReadFile(path string, pub ed25519.PublicKey) (*Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > MaxBaseline {
		return nil, fmt.Errorf("baseline %s: not a regular file of at most %d bytes", path, MaxBaseline)
	}
	// Read at its size in one piece (io.ReadAll would grow a buffer by
	// doubling: twice the file at the peak).
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", path, err)
	}
	b, err := Decode(data, pub)
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w", path, err)
	}
	return b, nil
}

// Decode verifies data with pub and decodes it.
func Decode(data []byte, pub ed25519.PublicKey) (*Baseline, error) {
	if !bytes.HasPrefix(data, []byte(magic)) {
		return nil, errors.New("not a bulwark integrity baseline")
	}
	if len(data) < len(magic)+1+ed25519.SignatureSize {
		return nil, errors.New("truncated")
	}
	body, sig := data[:len(data)-ed25519.SignatureSize], data[len(data)-ed25519.SignatureSize:]
	sum := sha512.Sum512(body)
	if !ed25519.Verify(pub, append([]byte(sigDomain), sum[:]...), sig) {
		return nil, ErrTampered
	}
	b, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	if b.Header.KeyID != signkey.ID(pub) {
		return nil, fmt.Errorf("header names key %s, signed by %s", b.Header.KeyID, signkey.ID(pub))
	}
	b.Digest = hex.EncodeToString(sum[:])
	return b, nil
}

// decodeBody decodes the bytes before the signature, trusting none of
// them.
func decodeBody(body []byte) (*Baseline, error) {
	if !bytes.HasPrefix(body, []byte(magic)) {
		return nil, errors.New("not a bulwark integrity baseline")
	}
	d := &dec{b: body}
	d.take(len(magic))
	hlen := d.uvarint(maxHeader, "header length")
	hj := d.take(int(hlen))
	if d.err != nil {
		return nil, d.err
	}
	var bl Baseline
	if err := json.Unmarshal(hj, &bl.Header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if bl.Header.Version != 1 {
		return nil, fmt.Errorf("header: version %d, this build reads 1", bl.Header.Version)
	}
	if bl.Header.Entries < 0 || bl.Header.Entries > len(body)/4 {
		return nil, fmt.Errorf("header: %d entries in %d bytes", bl.Header.Entries, len(body))
	}
	bl.Entries = make([]Entry, 0, bl.Header.Entries)
	for {
		n := d.uvarint(maxRecord, "record length")
		if d.err != nil {
			return nil, d.err
		}
		if n == 0 {
			break
		}
		rec := d.take(int(n))
		if d.err != nil {
			return nil, d.err
		}
		e, err := decodeRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", len(bl.Entries), err)
		}
		if k := len(bl.Entries); k > 0 && e.Path <= bl.Entries[k-1].Path {
			return nil, fmt.Errorf("entry %d %q: not after %q", k, e.Path, bl.Entries[k-1].Path)
		}
		bl.Entries = append(bl.Entries, e)
	}
	if d.i != len(body) {
		return nil, fmt.Errorf("%d bytes after the last entry", len(body)-d.i)
	}
	if len(bl.Entries) != bl.Header.Entries {
		return nil, fmt.Errorf("header counts %d entries, the file holds %d", bl.Header.Entries, len(bl.Entries))
	}
	return &bl, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendOptional(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(v))+1)
	return append(b, v...)
}

func appendRecord(b []byte, e *Entry) []byte {
	b = appendBytes(b, []byte(e.Path))
	b = binary.AppendUvarint(b, uint64(e.Attrs))
	a := e.Attrs
	if a&AttrType != 0 {
		b = append(b, byte(e.Type))
	}
	for _, f := range []struct {
		bit Attr
		v   uint64
	}{{AttrMode, uint64(e.Mode)}, {AttrOwner, uint64(e.UID)}, {AttrGroup, uint64(e.GID)}, {AttrSize, e.Size}} {
		if a&f.bit != 0 {
			b = binary.AppendUvarint(b, f.v)
		}
	}
	if a&AttrMtime != 0 {
		b = binary.AppendVarint(b, e.Mtime)
	}
	if a&AttrCtime != 0 {
		b = binary.AppendVarint(b, e.Ctime)
	}
	if a&AttrInode != 0 {
		b = binary.AppendUvarint(b, e.Inode)
	}
	if a&AttrLinks != 0 {
		b = binary.AppendUvarint(b, e.Links)
	}
	r := e.rare()
	if a&AttrTarget != 0 {
		b = appendBytes(b, []byte(r.Target))
	}
	if a&AttrXattrs != 0 {
		b = binary.AppendUvarint(b, uint64(len(r.Xattrs)))
		for _, x := range r.Xattrs {
			b = appendBytes(b, []byte(x.Name))
			b = appendBytes(b, x.Value)
		}
	}
	if a&AttrACL != 0 {
		b = appendOptional(b, r.ACL)
	}
	if a&AttrCaps != 0 {
		b = appendOptional(b, r.Caps)
	}
	if a&AttrHash != 0 {
		b = appendOptional(b, e.Hash)
	}
	var errb []byte
	if r.Error != "" {
		errb = []byte(r.Error)
	}
	return appendOptional(b, errb)
}

// dec reads a record or the file; the first error sticks.
type dec struct {
	b   []byte
	i   int
	err error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.i {
		d.fail("truncated at offset %d (want %d more bytes)", d.i, n)
		return nil
	}
	v := d.b[d.i : d.i+n]
	d.i += n
	return v
}

func (d *dec) uvarint(max uint64, what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.fail("%s: bad varint at offset %d", what, d.i)
		return 0
	}
	d.i += n
	if v > max {
		d.fail("%s: %d, more than %d", what, v, max)
		return 0
	}
	return v
}

func (d *dec) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.fail("%s: bad varint at offset %d", what, d.i)
		return 0
	}
	d.i += n
	return v
}

func (d *dec) bytes(max int, what string) []byte {
	n := d.uvarint(uint64(max), what)
	return d.take(int(n))
}

func (d *dec) optional(max int, what string) []byte {
	n := d.uvarint(uint64(max)+1, what)
	if d.err != nil || n == 0 {
		return nil
	}
	return bytes.Clone(d.take(int(n - 1)))
}

func decodeRecord(rec []byte) (Entry, error) {
	d := &dec{b: rec}
	var e Entry
	e.Path = string(d.bytes(maxPath, "path"))
	e.Attrs = Attr(d.uvarint(uint64(AllAttrs), "attributes"))
	if d.err != nil {
		return e, d.err
	}
	if !strings.HasPrefix(e.Path, "/") || strings.IndexByte(e.Path, 0) >= 0 {
		return e, fmt.Errorf("path %q: not absolute, or holds a NUL", e.Path)
	}
	a := e.Attrs
	if a&AttrType != 0 {
		if t := d.take(1); t != nil {
			e.Type = FileType(t[0])
			if !e.Type.valid() {
				d.fail("%s: unknown type %q", e.Path, t[0])
			}
		}
	}
	if a&AttrMode != 0 {
		e.Mode = uint32(d.uvarint(0o7777, "mode"))
	}
	if a&AttrOwner != 0 {
		e.UID = uint32(d.uvarint(math.MaxUint32, "owner"))
	}
	if a&AttrGroup != 0 {
		e.GID = uint32(d.uvarint(math.MaxUint32, "group"))
	}
	if a&AttrSize != 0 {
		e.Size = d.uvarint(math.MaxInt64, "size")
	}
	if a&AttrMtime != 0 {
		e.Mtime = d.varint("mtime")
	}
	if a&AttrCtime != 0 {
		e.Ctime = d.varint("ctime")
	}
	if a&AttrInode != 0 {
		e.Inode = d.uvarint(math.MaxUint64, "inode")
	}
	if a&AttrLinks != 0 {
		e.Links = d.uvarint(math.MaxUint64, "links")
	}
	var r Rare
	if a&AttrTarget != 0 {
		r.Target = string(d.bytes(maxPath, "target"))
	}
	if a&AttrXattrs != 0 {
		n := d.uvarint(maxXattrs, "xattr count")
		for i := uint64(0); i < n && d.err == nil; i++ {
			name := string(d.bytes(maxXattrName, "xattr name"))
			v := bytes.Clone(d.bytes(maxValue, "xattr value"))
			if v == nil {
				v = []byte{}
			}
			if i > 0 && name <= r.Xattrs[i-1].Name {
				d.fail("xattr %q: not after %q", name, r.Xattrs[i-1].Name)
			}
			r.Xattrs = append(r.Xattrs, Xattr{Name: name, Value: v})
		}
	}
	if a&AttrACL != 0 {
		r.ACL = d.optional(2*maxValue+16, "acl")
	}
	if a&AttrCaps != 0 {
		r.Caps = d.optional(maxValue, "caps")
	}
	if a&AttrHash != 0 {
		e.Hash = d.optional(maxHash, "hash")
	}
	if v := d.optional(maxError, "error"); v != nil {
		if !utf8.Valid(v) || len(v) == 0 {
			d.fail("error text: empty or not UTF-8")
		}
		r.Error = string(v)
	}
	e.setRare(&r)
	if d.err != nil {
		return e, fmt.Errorf("%s: %w", e.Path, d.err)
	}
	if d.i != len(rec) {
		return e, fmt.Errorf("%s: %d bytes after the record", e.Path, len(rec)-d.i)
	}
	return e, nil
}
