// Tree blob codec.
//
// A tree blob's id is the keyed hash of its bytes, so two equal trees must
// encode to the same bytes or an unchanged directory would be stored again on
// every backup. Encode therefore writes one canonical form, by hand, with
// strconv-style appends into one buffer (no reflection, no map iteration):
//
//	{"nodes":[NODE,...]}
//
// with no white space, and each NODE's members in this order, absent ones
// omitted:
//
//	name | name_b64     always (name_b64 exactly when the name is not UTF-8)
//	type, mode, uid, gid
//	user, group        when not empty
//	size, mtime, ctime, inode, dev, links
//	content            files with at least one ref
//	subtree            dirs (always)
//	target | target_b64 symlinks (always; target_b64 exactly when not UTF-8)
//	xattrs             when there are any: [{"name"|"name_b64":…,"value":"<b64>"}]
//	rdev               chardev and blockdev (always)
//
// Numbers are unsigned decimal without leading zeros. Times are UTC with
// exactly nine fractional digits, "2006-01-02T15:04:05.000000000Z". Ids are
// 64 lower-case hex digits; base64 is standard with padding. Strings escape
// only '"', '\\' and bytes below 0x20 (as \b \f \n \r \t or \u00xx, lower
// case); all other UTF-8 is written as is.
//
// Decode is a small hand-written JSON parser for exactly this schema. It
// accepts any valid JSON spelling of a tree (white space, member order, string
// escapes), but it is strict about meaning: unknown or repeated members,
// wrong value kinds, invalid UTF-8, non-canonical values (upper-case hex,
// fractional numbers, times not in the form above, name_b64 holding UTF-8)
// and everything Tree.Validate refuses are errors that name the node. It
// never panics and allocates in proportion to its input, so it is safe on
// untrusted bytes; decoding what Encode wrote and encoding it again gives the
// same bytes.

package tree

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

const timeLayout = "2006-01-02T15:04:05.000000000Z"

var b64 = base64.StdEncoding.Strict()

// Encode returns the canonical JSON encoding of t. It refuses a tree that
// Validate refuses, or with a time outside years 0000 to 9999.
func (t *Tree) Encode() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	size := 16
	for i := range t.Nodes {
		size += estimate(&t.Nodes[i])
	}
	b := make([]byte, 0, size)
	b = append(b, `{"nodes":[`...)
	for i := range t.Nodes {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		b, err = appendNode(b, &t.Nodes[i])
		if err != nil {
			return nil, nodeErr(i, t.Nodes[i].Name, err)
		}
	}
	b = append(b, "]}"...)
	return b, nil
}

// estimate is a close upper bound of a node's encoded size for typical
// nodes, so Encode allocates once.
func estimate(n *Node) int {
	s := 300 + 2*len(n.Name) + len(n.User) + len(n.Group) + 2*len(n.Target) + 70*len(n.Content)
	for _, x := range n.Xattrs {
		s += 30 + 2*len(x.Name) + base64.StdEncoding.EncodedLen(len(x.Value))
	}
	return s
}

func appendNode(b []byte, n *Node) ([]byte, error) {
	b = append(b, '{')
	b = appendRaw(b, "name", n.Name)
	b = append(b, `,"type":"`...)
	b = append(b, n.Type...)
	b = append(b, `","mode":`...)
	b = strconv.AppendUint(b, uint64(n.Mode), 10)
	b = append(b, `,"uid":`...)
	b = strconv.AppendUint(b, uint64(n.UID), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendUint(b, uint64(n.GID), 10)
	if n.User != "" {
		b = append(b, `,"user":`...)
		b = appendString(b, n.User)
	}
	if n.Group != "" {
		b = append(b, `,"group":`...)
		b = appendString(b, n.Group)
	}
	b = append(b, `,"size":`...)
	b = strconv.AppendUint(b, n.Size, 10)
	var err error
	if b, err = appendTime(b, `,"mtime":"`, n.ModTime); err != nil {
		return nil, fmt.Errorf("mtime: %w", err)
	}
	if b, err = appendTime(b, `,"ctime":"`, n.ChangeTime); err != nil {
		return nil, fmt.Errorf("ctime: %w", err)
	}
	b = append(b, `,"inode":`...)
	b = strconv.AppendUint(b, n.Inode, 10)
	b = append(b, `,"dev":`...)
	b = strconv.AppendUint(b, n.Device, 10)
	b = append(b, `,"links":`...)
	b = strconv.AppendUint(b, n.Links, 10)
	if len(n.Content) > 0 {
		b = append(b, `,"content":[`...)
		for j, r := range n.Content {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			if r.IsHole() {
				b = append(b, "z:"...)
				b = strconv.AppendUint(b, r.Hole, 10)
			} else {
				b = appendHex(b, &r.ID)
			}
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if n.Subtree != nil {
		b = append(b, `,"subtree":"`...)
		b = appendHex(b, n.Subtree)
		b = append(b, '"')
	}
	if n.Target != "" {
		b = append(b, ',')
		b = appendRaw(b, "target", n.Target)
	}
	if len(n.Xattrs) > 0 {
		b = append(b, `,"xattrs":[`...)
		for j, x := range n.Xattrs {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendRaw(b, "name", x.Name)
			b = append(b, `,"value":"`...)
			b = b64.AppendEncode(b, x.Value)
			b = append(b, `"}`...)
		}
		b = append(b, ']')
	}
	if n.Type == TypeCharDev || n.Type == TypeBlockDev {
		b = append(b, `,"rdev":`...)
		b = strconv.AppendUint(b, n.Rdev, 10)
	}
	return append(b, '}'), nil
}

// appendRaw writes a raw-bytes string as "key":"s", or as "key_b64":"…"
// when s is not valid UTF-8.
func appendRaw(b []byte, key, s string) []byte {
	b = append(b, '"')
	b = append(b, key...)
	if utf8.ValidString(s) {
		b = append(b, `":`...)
		return appendString(b, s)
	}
	b = append(b, `_b64":"`...)
	b = b64.AppendEncode(b, []byte(s))
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

func appendHex(b []byte, id *ID) []byte {
	for _, c := range id {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

// appendString writes s, which must be valid UTF-8, as a JSON string with
// the minimal escaping described above.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTime writes t in timeLayout (by hand: time.AppendFormat was half of
// Encode's time).
func appendTime(b []byte, prefix string, t time.Time) ([]byte, error) {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return nil, fmt.Errorf("year %d outside 0000 to 9999", year)
	}
	hour, minute, sec := t.Clock()
	b = append(b, prefix...)
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond(), 9)
	return append(b, 'Z', '"'), nil
}

// appendDigits writes v (>= 0) as exactly width decimal digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

// Decode parses and validates a tree blob. See the file comment for what it
// accepts.
func Decode(data []byte) (*Tree, error) {
	d := decoder{b: data}
	t, err := d.tree()
	if err != nil {
		return nil, err
	}
	return t, nil
}

type decoder struct {
	b       []byte
	i       int
	scratch []byte       // unescaped strings
	refs    []ContentRef // content being parsed, copied out at the end
	// The last user and group names, shared by the nodes that repeat them
	// (nearly all do) instead of allocated for each.
	user, group string
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{d.i}, args...)...)
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte without consuming it,
// or 0 at the end of input.
func (d *decoder) next() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *decoder) expect(c byte) error {
	if d.next() != c {
		return d.errorf("expected %q", c)
	}
	d.i++
	return nil
}

// more is called after an element of an array or object: it consumes ',' and
// reports true, or consumes the closing byte and reports false.
func (d *decoder) more(closing byte) (bool, error) {
	switch d.next() {
	case ',':
		d.i++
		return true, nil
	case closing:
		d.i++
		return false, nil
	}
	return false, d.errorf("expected ',' or %q", closing)
}

// open consumes the opening byte and reports whether the container has any
// elements (consuming the closing byte if it has none).
func (d *decoder) open(opening, closing byte) (bool, error) {
	if err := d.expect(opening); err != nil {
		return false, err
	}
	if d.next() == closing {
		d.i++
		return false, nil
	}
	return true, nil
}

// key reads an object member's name and the colon after it. The result is
// valid until the next string is read.
func (d *decoder) key() ([]byte, error) {
	k, err := d.str()
	if err != nil {
		return nil, err
	}
	return k, d.expect(':')
}

// str reads a JSON string and returns its unescaped bytes, which are valid
// UTF-8. The result aliases the input or the scratch buffer: it is valid
// until the next call.
func (d *decoder) str() ([]byte, error) {
	if d.next() != '"' {
		return nil, d.errorf("expected a string")
	}
	d.i++
	start := d.i
	// Fast path, one pass: nearly every string in a tree (member names,
	// ids, times, ASCII file names) is short, printable ASCII without
	// escapes.
	for i := start; i < len(d.b); i++ {
		c := d.b[i]
		if c == '"' {
			d.i = i + 1
			return d.b[start:i], nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
	}
	return d.strSlow(start)
}

// strSlow is str for a string with escapes, control characters or
// non-ASCII bytes, or unterminated; start is just past its opening quote.
func (d *decoder) strSlow(start int) ([]byte, error) {
	rest := d.b[start:]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		d.i = len(d.b)
		return nil, d.errorf("unterminated string")
	}
	s := rest[:q]
	if e := bytes.IndexByte(s, '\\'); e >= 0 {
		d.i = start + e
		return d.strEscaped(start)
	}
	for k, c := range s {
		if c < 0x20 || c >= 0x80 { // rare: check the whole string
			for _, c := range s[k:] {
				if c < 0x20 {
					return nil, d.errorf("control character in string")
				}
			}
			if !utf8.Valid(s[k:]) {
				return nil, d.errorf("string is not valid UTF-8")
			}
			break
		}
	}
	d.i = start + q + 1
	return s, nil
}

// strEscaped continues str from the first backslash.
func (d *decoder) strEscaped(start int) ([]byte, error) {
	out := append(d.scratch[:0], d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			d.scratch = out
			if !utf8.Valid(out) {
				return nil, d.errorf("string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return nil, d.errorf("control character in string")
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			break
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, d.errorf("bad \\u escape")
			}
			if 0xd800 <= r && r < 0xdc00 {
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					d.i += 2
					lo, ok := d.hex4()
					if !ok || lo < 0xdc00 || lo >= 0xe000 {
						return nil, d.errorf("bad surrogate pair")
					}
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
				} else {
					return nil, d.errorf("lone surrogate")
				}
			} else if 0xdc00 <= r && r < 0xe000 {
				return nil, d.errorf("lone surrogate")
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, d.errorf("bad escape \\%c", e)
		}
	}
	return nil, d.errorf("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	d.i += 4
	return r, true
}

// uint reads an unsigned decimal integer no larger than max.
func (d *decoder) uint(max uint64) (uint64, error) {
	d.ws()
	start := d.i
	var v uint64
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		c := uint64(d.b[d.i] - '0')
		if v > (math.MaxUint64-c)/10 {
			return 0, d.errorf("number overflows")
		}
		v = v*10 + c
		d.i++
	}
	switch {
	case d.i == start:
		return 0, d.errorf("expected an unsigned integer")
	case d.i-start > 1 && d.b[start] == '0':
		return 0, d.errorf("number with a leading zero")
	case d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E'):
		return 0, d.errorf("expected an unsigned integer")
	case v > max:
		return 0, d.errorf("%d is more than %d", v, max)
	}
	return v, nil
}

// raw reads a raw-bytes string member (name, target): a plain string, or
// base64 for the _b64 form, where bytes that are valid UTF-8 are refused as
// non-canonical.
func (d *decoder) raw(isB64 bool, limit int) (string, error) {
	s, err := d.str()
	if err != nil {
		return "", err
	}
	if !isB64 {
		if len(s) > limit {
			return "", d.errorf("%d bytes, more than %d", len(s), limit)
		}
		return string(s), nil
	}
	if b64.DecodedLen(len(s)) > limit+2 {
		return "", d.errorf("%d bytes, more than %d", b64.DecodedLen(len(s)), limit)
	}
	v := make([]byte, b64.DecodedLen(len(s)))
	n, err := b64.Decode(v, s)
	if err != nil {
		return "", d.errorf("bad base64: %v", err)
	}
	if utf8.Valid(v[:n]) {
		return "", d.errorf("base64 form of a UTF-8 string (must be plain)")
	}
	return string(v[:n]), nil
}

func (d *decoder) id(id *ID) error {
	s, err := d.str()
	if err != nil {
		return err
	}
	if err := parseHexID(id, s); err != nil {
		return d.errorf("id: %v", err)
	}
	return nil
}

func (d *decoder) tree() (*Tree, error) {
	t := &Tree{}
	seen := false
	more, err := d.open('{', '}')
	if err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	for more {
		k, err := d.key()
		if err != nil {
			return nil, fmt.Errorf("tree: %w", err)
		}
		if string(k) != "nodes" {
			return nil, fmt.Errorf("tree: %w", d.errorf("unknown member %q", truncate(string(k))))
		}
		if seen {
			return nil, fmt.Errorf("tree: %w", d.errorf("repeated member \"nodes\""))
		}
		seen = true
		if err := d.nodes(t); err != nil {
			return nil, err
		}
		if more, err = d.more('}'); err != nil {
			return nil, fmt.Errorf("tree: %w", err)
		}
	}
	if !seen {
		return nil, errors.New(`tree: no "nodes" member`)
	}
	if d.ws(); d.i != len(d.b) {
		return nil, fmt.Errorf("tree: %w", d.errorf("data after the tree"))
	}
	return t, nil
}

// minNodeLen is the length of the shortest node JSON can spell (every
// required member, one-byte values, canonical times); it bounds how many
// nodes an input can hold, so Decode can size the slice once.
const minNodeLen = 170

func (d *decoder) nodes(t *Tree) error {
	more, err := d.open('[', ']')
	if err != nil {
		return fmt.Errorf("tree: nodes: %w", err)
	}
	if more {
		t.Nodes = make([]Node, 0, min(MaxNodes, (len(d.b)-d.i)/minNodeLen+1))
	}
	for more {
		i := len(t.Nodes)
		if i == MaxNodes {
			return fmt.Errorf("tree: more than %d nodes", MaxNodes)
		}
		t.Nodes = append(t.Nodes, Node{})
		n := &t.Nodes[i]
		if err := d.node(n); err != nil {
			return nodeErr(i, n.Name, err)
		}
		if err := t.validateNode(i); err != nil {
			return err
		}
		if more, err = d.more(']'); err != nil {
			return fmt.Errorf("tree: nodes: %w", err)
		}
	}
	return nil
}

// Node members, as bits for the repeated-member check.
const (
	fName = 1 << iota
	fType
	fMode
	fUID
	fGID
	fUser
	fGroup
	fSize
	fMtime
	fCtime
	fInode
	fDev
	fLinks
	fContent
	fSubtree
	fTarget
	fXattrs
	fRdev

	fRequired = fName | fType | fMode | fUID | fGID | fSize | fMtime | fCtime | fInode | fDev | fLinks
)

// memberNames lists the node members in encoding order.
var memberNames = []string{"name", "type", "mode", "uid", "gid", "user", "group", "size",
	"mtime", "ctime", "inode", "dev", "links", "content", "subtree", "target", "xattrs", "rdev"}

func memberName(bit int, isB64 bool) string {
	for i, name := range memberNames {
		if bit == 1<<i {
			if isB64 {
				return name + "_b64"
			}
			return name
		}
	}
	return "?"
}

func (d *decoder) node(n *Node) error {
	more, err := d.open('{', '}')
	if err != nil {
		return err
	}
	seen := 0
	for more {
		k, err := d.key()
		if err != nil {
			return err
		}
		var bit int
		switch string(k) {
		case "name", "name_b64":
			bit = fName
		case "type":
			bit = fType
		case "mode":
			bit = fMode
		case "uid":
			bit = fUID
		case "gid":
			bit = fGID
		case "user":
			bit = fUser
		case "group":
			bit = fGroup
		case "size":
			bit = fSize
		case "mtime":
			bit = fMtime
		case "ctime":
			bit = fCtime
		case "inode":
			bit = fInode
		case "dev":
			bit = fDev
		case "links":
			bit = fLinks
		case "content":
			bit = fContent
		case "subtree":
			bit = fSubtree
		case "target", "target_b64":
			bit = fTarget
		case "xattrs":
			bit = fXattrs
		case "rdev":
			bit = fRdev
		default:
			return d.errorf("unknown member %q", truncate(string(k)))
		}
		if seen&bit != 0 {
			return d.errorf("repeated member %q (or both plain and _b64 forms)", k)
		}
		seen |= bit
		isB64 := len(k) > 4 && string(k[len(k)-4:]) == "_b64" // k is overwritten by the value's string
		if err := d.member(n, bit, isB64); err != nil {
			return fmt.Errorf("%s: %w", memberName(bit, isB64), err)
		}
		if more, err = d.more('}'); err != nil {
			return err
		}
	}
	if missing := fRequired &^ seen; missing != 0 {
		for i, name := range memberNames {
			if missing&(1<<i) != 0 {
				return fmt.Errorf("missing member %q", name)
			}
		}
	}
	return nil
}

func (d *decoder) member(n *Node, bit int, isB64 bool) error {
	var err error
	switch bit {
	case fName:
		n.Name, err = d.raw(isB64, MaxNameLen)
	case fType:
		var s []byte
		if s, err = d.str(); err != nil {
			return err
		}
		if n.Type = parseType(s); n.Type == "" {
			return d.errorf("unknown type %q", truncate(string(s)))
		}
	case fMode:
		var v uint64
		v, err = d.uint(maxMode)
		n.Mode = uint32(v)
	case fUID:
		var v uint64
		v, err = d.uint(math.MaxUint32)
		n.UID = uint32(v)
	case fGID:
		var v uint64
		v, err = d.uint(math.MaxUint32)
		n.GID = uint32(v)
	case fUser:
		n.User, err = d.owner(&d.user)
	case fGroup:
		n.Group, err = d.owner(&d.group)
	case fSize:
		n.Size, err = d.uint(math.MaxUint64)
	case fMtime:
		n.ModTime, err = d.time()
	case fCtime:
		n.ChangeTime, err = d.time()
	case fInode:
		n.Inode, err = d.uint(math.MaxUint64)
	case fDev:
		n.Device, err = d.uint(math.MaxUint64)
	case fLinks:
		n.Links, err = d.uint(math.MaxUint64)
	case fRdev:
		n.Rdev, err = d.uint(math.MaxUint64)
	case fContent:
		err = d.content(n)
	case fSubtree:
		n.Subtree = new(ID)
		err = d.id(n.Subtree)
	case fTarget:
		n.Target, err = d.raw(isB64, MaxNameLen)
		if err == nil && n.Target == "" {
			err = errors.New("empty")
		}
	case fXattrs:
		err = d.xattrs(n)
	}
	return err
}

// owner reads a user or group name, reusing *last when it is the same.
func (d *decoder) owner(last *string) (string, error) {
	s, err := d.str()
	if err != nil {
		return "", err
	}
	if len(s) > MaxOwnerLen {
		return "", d.errorf("%d bytes, more than %d", len(s), MaxOwnerLen)
	}
	if string(s) != *last {
		*last = string(s)
	}
	return *last, nil
}

// time parses exactly the canonical form "2006-01-02T15:04:05.000000000Z".
func (d *decoder) time() (time.Time, error) {
	s, err := d.str()
	if err != nil {
		return time.Time{}, err
	}
	t, ok := parseTime(s)
	if !ok {
		return time.Time{}, d.errorf("time %q is not of the form %s", truncate(string(s)), timeLayout)
	}
	return t, nil
}

func parseTime(s []byte) (time.Time, bool) {
	if len(s) != len(timeLayout) {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		v := 0
		for _, c := range s[from:to] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	for i, c := range []byte(timeLayout) {
		if (c < '0' || c > '9') && s[i] != c {
			return time.Time{}, false
		}
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	nsec, ok7 := num(20, 29)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) ||
		month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // day beyond the end of the month
		return time.Time{}, false
	}
	return t, true
}

func (d *decoder) content(n *Node) error {
	more, err := d.open('[', ']')
	if err != nil {
		return err
	}
	refs := d.refs[:0]
	defer func() {
		if len(refs) > 0 {
			n.Content = append([]ContentRef(nil), refs...)
		}
		d.refs = refs
	}()
	for more {
		j := len(refs)
		if j == MaxContent {
			return fmt.Errorf("more than %d refs", MaxContent)
		}
		s, err := d.str()
		if err != nil {
			return fmt.Errorf("[%d]: %w", j, err)
		}
		var r ContentRef
		if len(s) >= 2 && s[0] == 'z' && s[1] == ':' {
			h, ok := parseHole(s[2:])
			if !ok {
				return fmt.Errorf("[%d]: %w", j, d.errorf("hole %q: want z:N with 0 < N < 2^63, no leading zeros", truncate(string(s))))
			}
			r.Hole = h
		} else if err := parseHexID(&r.ID, s); err != nil {
			return fmt.Errorf("[%d]: %w", j, d.errorf("chunk id: %v", err))
		}
		refs = append(refs, r)
		if more, err = d.more(']'); err != nil {
			return err
		}
	}
	return nil
}

func parseHole(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0') // 19 digits cannot overflow uint64
	}
	return v, v <= maxHole
}

func (d *decoder) xattrs(n *Node) error {
	more, err := d.open('[', ']')
	if err != nil {
		return err
	}
	for more {
		j := len(n.Xattrs)
		if j == MaxXattrs {
			return fmt.Errorf("more than %d", MaxXattrs)
		}
		var x Xattr
		if err := d.xattr(&x); err != nil {
			return fmt.Errorf("[%d]: %w", j, err)
		}
		n.Xattrs = append(n.Xattrs, x)
		if more, err = d.more(']'); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) xattr(x *Xattr) error {
	more, err := d.open('{', '}')
	if err != nil {
		return err
	}
	var hasName, hasValue bool
	for more {
		k, err := d.key()
		if err != nil {
			return err
		}
		switch string(k) {
		case "name", "name_b64":
			if hasName {
				return d.errorf("repeated name")
			}
			hasName = true
			if x.Name, err = d.raw(string(k) == "name_b64", MaxXattrName); err != nil {
				return fmt.Errorf("name: %w", err)
			}
		case "value":
			if hasValue {
				return d.errorf("repeated value")
			}
			hasValue = true
			s, err := d.str()
			if err != nil {
				return fmt.Errorf("value: %w", err)
			}
			if b64.DecodedLen(len(s)) > MaxXattrValue+2 {
				return d.errorf("value: more than %d bytes", MaxXattrValue)
			}
			v := make([]byte, b64.DecodedLen(len(s)))
			m, err := b64.Decode(v, s)
			if err != nil {
				return d.errorf("value: bad base64: %v", err)
			}
			x.Value = v[:m]
		default:
			return d.errorf("unknown member %q", truncate(string(k)))
		}
		if more, err = d.more('}'); err != nil {
			return err
		}
	}
	if !hasName || !hasValue {
		return errors.New("xattr needs name and value")
	}
	return nil
}

// parseType returns the node type spelled s, or "" (without allocating).
func parseType(s []byte) NodeType {
	switch string(s) {
	case "file":
		return TypeFile
	case "dir":
		return TypeDir
	case "symlink":
		return TypeSymlink
	case "fifo":
		return TypeFIFO
	case "chardev":
		return TypeCharDev
	case "blockdev":
		return TypeBlockDev
	case "socket":
		return TypeSocket
	}
	return ""
}

// validUTF8NoNUL reports whether s is UTF-8 without NUL bytes.
func validUTF8NoNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return false
		}
	}
	return utf8.ValidString(s)
}
