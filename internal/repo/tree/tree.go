// Package tree is the directory model of a Bulwark repository: a Tree is one
// directory's listing, a Node one entry with its metadata, and a tree blob is
// the canonical JSON encoding of a Tree (docs/repository-format.md, "Trees").
//
// The package also moves metadata between that model and a Linux filesystem:
// NodeFromPath and DataExtents capture it (capture.go), CreateSpecial,
// RestoreMetadata and SparseWriter put it back (restore.go). File content
// itself (chunking, storage) belongs to the archiver and the restorer; this
// package only carries the Content list they fill and read.
//
// Names and symlink targets are raw bytes held in Go strings: they need not
// be UTF-8, and they are never normalised.
package tree

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// IDSize is the size of a blob id.
const IDSize = 32

// ID names a blob: keyed BLAKE3 of its plaintext (see the format spec).
type ID [IDSize]byte

// String returns the id as 64 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether every byte of the id is zero.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses 64 lower-case hex digits, the only spelling the format uses.
func ParseID(s string) (ID, error) {
	var id ID
	if err := parseHexID(&id, s); err != nil {
		return ID{}, fmt.Errorf("id %q: %w", truncate(s), err)
	}
	return id, nil
}

// MarshalText returns the id's hex form.
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, 2*IDSize)
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText parses the id's hex form (see ParseID).
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// parseHexID parses 64 lower-case hex digits into id.
func parseHexID[T string | []byte](id *ID, s T) error {
	if len(s) != 2*IDSize {
		return fmt.Errorf("want %d hex digits, have %d characters", 2*IDSize, len(s))
	}
	for i := 0; i < IDSize; i++ {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return fmt.Errorf("not lower-case hex at offset %d", 2*i)
		}
		id[i] = hi<<4 | lo
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// NodeType is the kind of a directory entry.
type NodeType string

// The node types of the format.
const (
	TypeFile     NodeType = "file"
	TypeDir      NodeType = "dir"
	TypeSymlink  NodeType = "symlink"
	TypeFIFO     NodeType = "fifo"
	TypeCharDev  NodeType = "chardev"
	TypeBlockDev NodeType = "blockdev"
	TypeSocket   NodeType = "socket"
)

// Valid reports whether t is one of the format's node types.
func (t NodeType) Valid() bool {
	switch t {
	case TypeFile, TypeDir, TypeSymlink, TypeFIFO, TypeCharDev, TypeBlockDev, TypeSocket:
		return true
	}
	return false
}

// ContentRef is one piece of a file's content: a chunk, or a hole of Hole
// zero bytes when Hole > 0 (then ID is ignored and must be zero).
type ContentRef struct {
	ID   ID
	Hole uint64
}

// Chunk returns a reference to the chunk id.
func Chunk(id ID) ContentRef { return ContentRef{ID: id} }

// Hole returns a reference to n zero bytes stored as a hole (n > 0).
func Hole(n uint64) ContentRef { return ContentRef{Hole: n} }

// IsHole reports whether r is a hole.
func (r ContentRef) IsHole() bool { return r.Hole > 0 }

// String returns the ref as in the JSON encoding: hex id or "z:N".
func (r ContentRef) String() string {
	if r.IsHole() {
		return fmt.Sprintf("z:%d", r.Hole)
	}
	return r.ID.String()
}

// Xattr is one extended attribute, name with its namespace ("user.x").
type Xattr struct {
	Name  string
	Value []byte
}

// Node is one directory entry.
type Node struct {
	Name       string   // raw bytes of the entry's name
	Type       NodeType //
	Mode       uint32   // low 12 bits of st_mode: permissions, setuid, setgid, sticky
	UID, GID   uint32   //
	User       string   // owner's name on the backup host, "" if unknown
	Group      string   // group's name on the backup host, "" if unknown
	Size       uint64   // st_size for files and symlinks, 0 for other types
	ModTime    time.Time
	ChangeTime time.Time
	Inode      uint64
	Device     uint64 // st_dev of the file system holding the entry
	Links      uint64 // st_nlink
	Rdev       uint64 // device number (Linux dev_t) of chardev and blockdev nodes
	Content    []ContentRef
	Subtree    *ID    // the directory's own tree blob (dirs only, required)
	Target     string // symlink target, raw bytes (symlinks only, required)
	Xattrs     []Xattr
}

// Equal reports whether n and o encode to the same bytes: every field alike,
// times as instants (Encode writes them in UTC).
func (n *Node) Equal(o *Node) bool {
	if n.Name != o.Name || n.Type != o.Type || n.Mode != o.Mode || n.UID != o.UID || n.GID != o.GID ||
		n.User != o.User || n.Group != o.Group || n.Size != o.Size || !n.ModTime.Equal(o.ModTime) ||
		!n.ChangeTime.Equal(o.ChangeTime) || n.Inode != o.Inode || n.Device != o.Device ||
		n.Links != o.Links || n.Rdev != o.Rdev || n.Target != o.Target ||
		!slices.Equal(n.Content, o.Content) || len(n.Xattrs) != len(o.Xattrs) {
		return false
	}
	if (n.Subtree == nil) != (o.Subtree == nil) || n.Subtree != nil && *n.Subtree != *o.Subtree {
		return false
	}
	for i := range n.Xattrs {
		if n.Xattrs[i].Name != o.Xattrs[i].Name || !bytes.Equal(n.Xattrs[i].Value, o.Xattrs[i].Value) {
			return false
		}
	}
	return true
}

// Tree is a directory listing: its nodes sorted by the bytes of their names,
// with no two alike.
type Tree struct {
	Nodes []Node
}

// Sort orders t's nodes by name bytes. It does not remove duplicates.
func (t *Tree) Sort() {
	sort.SliceStable(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
}

// Limits of a tree blob. They bound what Decode accepts and Encode writes;
// a tree beyond them is refused by both.
const (
	MaxNodes      = 1 << 24 // nodes in one tree
	MaxContent    = 1 << 24 // content refs of one file
	MaxXattrs     = 1 << 14 // extended attributes of one node
	MaxNameLen    = 4096    // bytes of a node name or symlink target
	MaxOwnerLen   = 256     // bytes of a user or group name
	MaxXattrName  = 255     // bytes of an xattr name (Linux XATTR_NAME_MAX)
	MaxXattrValue = 65536   // bytes of an xattr value (Linux XATTR_SIZE_MAX)
	maxMode       = 0o7777
	maxHole       = 1<<63 - 1 // file offsets are int64
)

// Validate checks t against the rules Decode enforces, so that what Encode
// writes can always be read back. Errors name the node by index and name.
func (t *Tree) Validate() error {
	if len(t.Nodes) > MaxNodes {
		return fmt.Errorf("tree: %d nodes, more than %d", len(t.Nodes), MaxNodes)
	}
	for i := range t.Nodes {
		if err := t.validateNode(i); err != nil {
			return err
		}
	}
	return nil
}

func nodeErr(i int, name string, err error) error {
	return fmt.Errorf("tree: node %d %q: %w", i, truncate(name), err)
}

// truncate keeps error messages short when names are long.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// validate checks one node on its own (not its place in the tree).
func (n *Node) validate() error {
	if err := checkName(n.Name); err != nil {
		return err
	}
	if !n.Type.Valid() {
		return fmt.Errorf("type %q: unknown", truncate(string(n.Type)))
	}
	if n.Mode > maxMode {
		return fmt.Errorf("mode %#o: more than the low 12 bits", n.Mode)
	}
	if err := checkOwner("user", n.User); err != nil {
		return err
	}
	if err := checkOwner("group", n.Group); err != nil {
		return err
	}
	if len(n.Content) > 0 && n.Type != TypeFile {
		return fmt.Errorf("content on a %s", n.Type)
	}
	if len(n.Content) > MaxContent {
		return fmt.Errorf("content: %d refs, more than %d", len(n.Content), MaxContent)
	}
	for j, r := range n.Content {
		if r.Hole > maxHole {
			return fmt.Errorf("content[%d]: hole of %d bytes is too large", j, r.Hole)
		}
		if r.Hole > 0 && !r.ID.IsZero() {
			return fmt.Errorf("content[%d]: both a hole and a chunk id", j)
		}
	}
	switch {
	case n.Type == TypeDir && n.Subtree == nil:
		return errors.New("dir without subtree")
	case n.Type != TypeDir && n.Subtree != nil:
		return fmt.Errorf("subtree on a %s", n.Type)
	case n.Type == TypeSymlink && n.Target == "":
		return errors.New("symlink without target")
	case n.Type != TypeSymlink && n.Target != "":
		return fmt.Errorf("target on a %s", n.Type)
	case len(n.Target) > MaxNameLen:
		return fmt.Errorf("target: %d bytes, more than %d", len(n.Target), MaxNameLen)
	case strings.IndexByte(n.Target, 0) >= 0:
		return errors.New("target contains NUL")
	case n.Rdev != 0 && n.Type != TypeCharDev && n.Type != TypeBlockDev:
		return fmt.Errorf("rdev on a %s", n.Type)
	}
	if len(n.Xattrs) > MaxXattrs {
		return fmt.Errorf("xattrs: %d, more than %d", len(n.Xattrs), MaxXattrs)
	}
	for j, x := range n.Xattrs {
		switch {
		case x.Name == "":
			return fmt.Errorf("xattr %d: empty name", j)
		case len(x.Name) > MaxXattrName:
			return fmt.Errorf("xattr %d: name of %d bytes, more than %d", j, len(x.Name), MaxXattrName)
		case strings.IndexByte(x.Name, 0) >= 0:
			return fmt.Errorf("xattr %q: name contains NUL", truncate(x.Name))
		case len(x.Value) > MaxXattrValue:
			return fmt.Errorf("xattr %q: value of %d bytes, more than %d", truncate(x.Name), len(x.Value), MaxXattrValue)
		case j > 0 && n.Xattrs[j-1].Name >= x.Name:
			return fmt.Errorf("xattr %q: not sorted or duplicate", truncate(x.Name))
		}
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return errors.New("name is . or ..")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes, more than %d", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return errors.New("name contains '/' or NUL")
		}
	}
	return nil
}

func checkOwner(what, s string) error {
	if len(s) > MaxOwnerLen {
		return fmt.Errorf("%s: %d bytes, more than %d", what, len(s), MaxOwnerLen)
	}
	if !validUTF8NoNUL(s) {
		return fmt.Errorf("%s %q: not UTF-8 or contains NUL", what, truncate(s))
	}
	return nil
}

// Warning reports metadata that could not be read or applied because the
// file system or the caller's privileges do not allow it; everything else
// was. NodeFromPath and RestoreMetadata return Warnings, joined with
// errors.Join when there are several; IsWarning tells them from failures.
type Warning struct {
	Path string
	Op   string // what was skipped, e.g. "lsetxattr security.capability"
	Err  error
}

func (w *Warning) Error() string { return fmt.Sprintf("%q: %s: %v", w.Path, w.Op, w.Err) }

func (w *Warning) Unwrap() error { return w.Err }

// IsWarning reports whether err is not nil and consists of Warnings only,
// possibly joined: the operation did everything else it was asked to do.
func IsWarning(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case *Warning:
		return true
	case interface{ Unwrap() []error }:
		list := e.Unwrap()
		for _, x := range list {
			if !IsWarning(x) {
				return false
			}
		}
		return len(list) > 0
	}
	return false
}

// validateNode checks node i on its own and against node i-1 (order,
// uniqueness).
func (t *Tree) validateNode(i int) error {
	n := &t.Nodes[i]
	if err := n.validate(); err != nil {
		return nodeErr(i, n.Name, err)
	}
	if i > 0 {
		switch prev := t.Nodes[i-1].Name; {
		case prev == n.Name:
			return nodeErr(i, n.Name, errors.New("duplicate name"))
		case prev > n.Name:
			return nodeErr(i, n.Name, fmt.Errorf("not sorted: follows %q", truncate(prev)))
		}
	}
	return nil
}
