package integrity

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fsmeta"
	"golang.org/x/sys/unix"
)

// FileType is an entry's type, one letter as in find -type.
type FileType byte

// The file types.
const (
	TypeFile    FileType = 'f'
	TypeDir     FileType = 'd'
	TypeSymlink FileType = 'l'
	TypeFIFO    FileType = 'p'
	TypeChar    FileType = 'c'
	TypeBlock   FileType = 'b'
	TypeSocket  FileType = 's'
)

func (t FileType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeChar:
		return "chardev"
	case TypeBlock:
		return "blockdev"
	case TypeSocket:
		return "socket"
	}
	return "unknown"
}

func (t FileType) valid() bool { return t.String() != "unknown" }

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is what a scan recorded of one path. Only the attributes in Attrs
// are meaningful; the others are zero.
type Entry struct {
	Path  string
	Attrs Attr
	Type  FileType
	Mode  uint32 // low 12 bits of st_mode
	UID   uint32
	GID   uint32
	Size  uint64
	Mtime int64 // Unix nanoseconds
	Ctime int64
	Inode uint64
	Links uint64
	Hash  []byte
	// Rare holds what most entries lack; nil when every field of it is
	// empty. Apart, it keeps an entry at 112 bytes instead of 200: a
	// scan of /usr holds 150,000 of them.
	*Rare
}

// Rare is the part of an Entry that few entries have.
type Rare struct {
	Target string
	Xattrs []Xattr // sorted by name; ACLs and capabilities apart
	ACL    []byte  // "access" and "default" ACLs in the kernel's encoding, each length-prefixed
	Caps   []byte  // security.capability as the kernel holds it
	// Error says why an attribute could not be read (an unreadable file's
	// hash); such an entry compares as changed until it can be read.
	Error string
}

var noRare Rare

// rare returns e's Rare part for reading (empty when there is none).
func (e *Entry) rare() *Rare {
	if e.Rare == nil {
		return &noRare
	}
	return e.Rare
}

func (r *Rare) empty() bool {
	return r.Target == "" && r.Xattrs == nil && r.ACL == nil && r.Caps == nil && r.Error == ""
}

// setRare sets e's Rare part to a copy of r, or to nil when r is empty.
func (e *Entry) setRare(r *Rare) {
	if r.empty() {
		e.Rare = nil
		return
	}
	c := *r
	e.Rare = &c
}

const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
	xattrCaps       = "security.capability"
)

// fromStat fills the stat attributes of e.
func (e *Entry) fromStat(st *syscall.Stat_t) {
	e.Mode = st.Mode & 0o7777
	e.UID, e.GID = st.Uid, st.Gid
	e.Mtime = st.Mtim.Sec*1e9 + st.Mtim.Nsec
	e.Ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	e.Inode, e.Links = st.Ino, uint64(st.Nlink)
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		e.Type, e.Size = TypeFile, uint64(st.Size)
	case syscall.S_IFDIR:
		e.Type = TypeDir
	case syscall.S_IFLNK:
		e.Type, e.Size = TypeSymlink, uint64(st.Size)
	case syscall.S_IFIFO:
		e.Type = TypeFIFO
	case syscall.S_IFCHR:
		e.Type = TypeChar
	case syscall.S_IFBLK:
		e.Type = TypeBlock
	default:
		e.Type = TypeSocket
	}
}

// keep clears what a's attributes do not record.
func (e *Entry) keep(a Attr) {
	e.Attrs = a
	if a&AttrType == 0 {
		e.Type = 0
	}
	if a&AttrMode == 0 {
		e.Mode = 0
	}
	if a&AttrOwner == 0 {
		e.UID = 0
	}
	if a&AttrGroup == 0 {
		e.GID = 0
	}
	if a&AttrSize == 0 {
		e.Size = 0
	}
	if a&AttrMtime == 0 {
		e.Mtime = 0
	}
	if a&AttrCtime == 0 {
		e.Ctime = 0
	}
	if a&AttrInode == 0 {
		e.Inode = 0
	}
	if a&AttrLinks == 0 {
		e.Links = 0
	}
}

// readXattrs fills r's Xattrs, ACL and Caps as a asks for e. A file system
// without extended attributes has none.
func (e *Entry) readXattrs(a Attr, r *Rare) error {
	names, err := fsmeta.Llistxattrs(e.Path)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("llistxattr: %w", err)
	}
	var acl [2][]byte
	for _, name := range names {
		var slot *[]byte
		switch name {
		case xattrACLAccess:
			slot = &acl[0]
		case xattrACLDefault:
			slot = &acl[1]
		case xattrCaps:
			slot = &r.Caps
		}
		want := AttrXattrs
		if name == xattrCaps {
			want = AttrCaps
		} else if slot != nil {
			want = AttrACL
		}
		if a&want == 0 {
			continue
		}
		v, err := fsmeta.Lgetxattr(e.Path, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since the listing
		}
		if err != nil {
			return fmt.Errorf("lgetxattr %s: %w", name, err)
		}
		if slot != nil {
			*slot = v
		} else {
			r.Xattrs = append(r.Xattrs, Xattr{Name: name, Value: v})
		}
	}
	if acl[0] != nil || acl[1] != nil {
		r.ACL = packACL(acl[0], acl[1])
	}
	return nil
}

// packACL joins the access and default ACLs into one value.
func packACL(access, def []byte) []byte {
	b := strconv.AppendInt(nil, int64(len(access)), 10)
	b = append(b, ':')
	b = append(b, access...)
	return append(b, def...)
}

// A Change is one attribute that differs, with both values as text.
type Change struct {
	Attribute string `json:"attribute"`
	Old       string `json:"old"`
	New       string `json:"new"`
}

// compare lists the attributes recorded in both old and cur that differ.
func compare(old, cur *Entry) []Change {
	both := old.Attrs & cur.Attrs
	ro, rc := old.rare(), cur.rare()
	var out []Change
	add := func(a Attr, o, n string) {
		if both&a != 0 && o != n {
			out = append(out, Change{Attribute: attrNames[bitIndex(a)], Old: o, New: n})
		}
	}
	add(AttrType, old.Type.String(), cur.Type.String())
	add(AttrMode, fmtMode(old.Mode), fmtMode(cur.Mode))
	add(AttrOwner, strconv.FormatUint(uint64(old.UID), 10), strconv.FormatUint(uint64(cur.UID), 10))
	add(AttrGroup, strconv.FormatUint(uint64(old.GID), 10), strconv.FormatUint(uint64(cur.GID), 10))
	add(AttrSize, strconv.FormatUint(old.Size, 10), strconv.FormatUint(cur.Size, 10))
	add(AttrMtime, fmtTime(old.Mtime), fmtTime(cur.Mtime))
	add(AttrCtime, fmtTime(old.Ctime), fmtTime(cur.Ctime))
	add(AttrInode, strconv.FormatUint(old.Inode, 10), strconv.FormatUint(cur.Inode, 10))
	add(AttrLinks, strconv.FormatUint(old.Links, 10), strconv.FormatUint(cur.Links, 10))
	add(AttrTarget, ro.Target, rc.Target)
	add(AttrXattrs, fmtXattrs(ro.Xattrs), fmtXattrs(rc.Xattrs))
	add(AttrACL, b64(ro.ACL), b64(rc.ACL))
	add(AttrCaps, b64(ro.Caps), b64(rc.Caps))
	if both&AttrHash != 0 && (!bytes.Equal(old.Hash, cur.Hash) || rc.Error != "") {
		n := hex.EncodeToString(cur.Hash)
		if rc.Error != "" {
			n = "unreadable: " + rc.Error
		}
		out = append(out, Change{Attribute: "hash", Old: hex.EncodeToString(old.Hash), New: n})
	}
	return out
}

func bitIndex(a Attr) int {
	for i := range attrCount {
		if a == 1<<i {
			return i
		}
	}
	return 0
}

func fmtMode(m uint32) string { return fmt.Sprintf("%04o", m) }

func fmtTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func b64(b []byte) string {
	if b == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

func fmtXattrs(xs []Xattr) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Quote(x.Name) + "=" + b64(x.Value)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
